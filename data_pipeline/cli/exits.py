"""Exit codes of `python -m data_pipeline` (listed in data_pipeline.cli.commands' docstring)."""
from __future__ import annotations

from data_pipeline.tasks.statuses import TaskStatus

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_API_ERROR = 3
EXIT_CONNECTION = 4
EXIT_TIMEOUT = 5
EXIT_CANCELLED = 130

TASK_EXIT_CODES = {TaskStatus.FAILED: EXIT_TASK_FAILED, TaskStatus.CANCELLED: EXIT_CANCELLED}


def task_exit_code(task: dict) -> int:
    return TASK_EXIT_CODES.get(task.get("status"), EXIT_OK)
