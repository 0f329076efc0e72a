"""Log operations on a task (guide §5), behind the HTTP layer."""
from __future__ import annotations

from data_pipeline.logs.query import LogQuery, query_log
from data_pipeline.logs.tail import read_last_entries
from data_pipeline.tasks.directory import TASK_LOG_FILE
from data_pipeline.tasks.service import TaskService


class TaskLogs:
    def __init__(self, tasks: TaskService):
        self.tasks = tasks

    def recent(self, task_id: str, limit: int, level: str | None) -> dict:
        """The last `limit` entries (of exactly `level`), oldest first (§5.1)."""
        self.tasks.require_task(task_id)
        path = self.tasks.directory(task_id) / TASK_LOG_FILE
        entries = read_last_entries(path, limit, level)
        return {"task_id": task_id, "logs": [entry.to_dict(with_line_number=False) for entry in entries],
                "total": len(entries), "source": "file", "log_file": str(path), "exists": path.is_file()}

    def query(self, task_id: str, query: LogQuery) -> dict:
        """Filtered, sorted, paginated entries (§5.2)."""
        self.tasks.require_task(task_id)
        return {"task_id": task_id, **query_log(self.tasks.directory(task_id) / TASK_LOG_FILE, query)}
