"""`python -m data_pipeline`: the command line over the API, and `run`, which needs no server."""
from data_pipeline.cli.commands import main

__all__ = ["main"]
