"""Data Pipeline: turns a business database into training data for text-to-SQL assistants."""

__version__ = "0.1.0"
