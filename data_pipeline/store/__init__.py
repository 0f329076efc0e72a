"""The task store: tasks, their steps and their executions in PostgreSQL, read as typed records."""
from data_pipeline.store.records import Execution, Step, Task
from data_pipeline.store.tasks import SORTABLE_COLUMNS, TaskStore

__all__ = ["Execution", "SORTABLE_COLUMNS", "Step", "Task", "TaskStore"]
