"""Task logs (reading the executor's `data_pipeline.log`) and the API's own system logs."""
from data_pipeline.logs.entries import LogEntry, parse_time
from data_pipeline.logs.query import LogQuery, query_log
from data_pipeline.logs.tail import read_last_entries

__all__ = ["LogEntry", "LogQuery", "parse_time", "query_log", "read_last_entries"]
