"""Logs: writing the task log and the API's system logs (with the secret scrubber), and reading the
executor's `data_pipeline.log` from its end (§5.1) and querying it (§5.2)."""
from data_pipeline.logs.entries import LogEntry
from data_pipeline.logs.query import LogQuery, query_log
from data_pipeline.logs.tail import read_last_entries

__all__ = ["LogEntry", "LogQuery", "query_log", "read_last_entries"]
