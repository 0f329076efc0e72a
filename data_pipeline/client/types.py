"""The shapes of the API's `data` blocks, as the Python client returns them.

TypedDicts, so a result stays the plain dict the server sent (print it, dump it to JSON) while an
editor or type checker knows its fields. Fields the server may leave out are not required
(`total=False`); field names are the guide's.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, TypedDict

from data_pipeline.tasks.statuses import STEP_NAMES, ExecutionStatus, StepStatus, TaskStatus

# Statuses arrive as plain strings, each equal to the enum member of that name (they are StrEnums):
# `task["status"] == TaskStatus.COMPLETED` and `task["status"] in FINISHED_TASK_STATUSES` work.
StepName = Literal[STEP_NAMES]  # type: ignore[valid-type]


class Health(TypedDict, total=False):
    status: str
    version: str
    store: dict[str, Any]
    llm: dict[str, Any]
    embedding_provider: str


class CreatedTask(TypedDict):
    task_id: str
    task_name: Optional[str]
    status: TaskStatus
    created_at: str


class Progress(TypedDict):
    """How far the running step is: `done` of `total` `unit`s (tables, themes, pairs, documents)."""
    done: int
    total: int
    unit: str


class CurrentStep(TypedDict, total=False):
    execution_id: str
    step: StepName
    status: StepStatus
    started_at: Optional[str]
    completed_at: Optional[str]
    progress: Optional[Progress]


class StepInfo(TypedDict, total=False):
    step_name: StepName
    step_status: StepStatus
    started_at: Optional[str]
    completed_at: Optional[str]
    error_message: Optional[str]
    execution_id: Optional[str]
    progress: Optional[Progress]
    result: Optional[dict[str, Any]]


class Execution(TypedDict, total=False):
    execution_id: str
    execution_mode: Literal["complete", "step"]
    step_name: Optional[StepName]
    status: ExecutionStatus
    options: dict[str, Any]
    started_at: Optional[str]
    completed_at: Optional[str]
    hostname: Optional[str]
    worker: Optional[str]   # the Celery worker that ran it; None for the local executor
    pid: Optional[int]
    exit_code: Optional[int]
    error_message: Optional[str]
    error_code: Optional[str]


class TaskSummary(TypedDict, total=False):
    """One task of a list (guide §3.4)."""
    task_id: str
    task_name: Optional[str]
    status: TaskStatus
    step_status: dict[StepName, StepStatus]
    created_at: str
    started_at: Optional[str]
    completed_at: Optional[str]
    created_by: str
    db_name: Optional[str]
    business_context: Optional[str]
    error_message: Optional[str]
    error_code: Optional[str]   # why a failed task failed (data_pipeline.tasks.failures)
    directory_exists: bool
    updated_at: str


class TaskDetail(TaskSummary, total=False):
    """The status body of one task (guide §3.3, with progress, step results and the execution)."""
    parameters: dict[str, Any]
    current_step: Optional[CurrentStep]
    total_steps: int
    steps: list[StepInfo]
    execution: Optional[Execution]
    queue_position: Optional[int]   # a queued task's place in the run queue (1: next to start)


class TaskList(TypedDict):
    tasks: list[TaskSummary]
    total: int
    limit: int
    offset: int


class Pagination(TypedDict):
    page: int
    page_size: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool


class TaskQueryResult(TypedDict, total=False):
    tasks: list[TaskSummary]
    pagination: Pagination
    filters_applied: dict[str, Any]
    sort: dict[str, str]
    query_time: str


class ExecutionStarted(TypedDict, total=False):
    task_id: str
    execution_id: str
    execution_mode: Literal["complete", "step"]
    step_name: Optional[StepName]
    backup_vector_tables: bool
    truncate_vector_tables: bool
    status: TaskStatus   # queued, or in_progress when it started at once
    queue_position: Optional[int]
    message: str


class ExecutionHistory(TypedDict):
    task_id: str
    executions: list[Execution]
    total: int


class FileInfo(TypedDict, total=False):
    file_name: str
    file_type: str
    file_size: int
    file_size_human: str
    created_at: str
    modified_at: str
    is_primary: bool
    description: str
    download_url: str


class FileList(TypedDict, total=False):
    task_id: str
    files: list[FileInfo]
    total_files: int
    total_size: int
    total_size_human: str


class TableListInfo(TypedDict, total=False):
    task_id: str
    has_table_list: bool
    file_name: str
    file_size: int
    file_path: str
    table_count: int
    tables: list[str]
    uploaded_at: str


class LogEntry(TypedDict, total=False):
    timestamp: str
    level: str
    logger: str
    step: Optional[str]
    message: str
    line_number: int


class LogList(TypedDict, total=False):
    task_id: str
    logs: list[LogEntry]
    total: int
    source: str
    log_file: str


class LogQueryResult(TypedDict, total=False):
    logs: list[LogEntry]
    pagination: Pagination
    log_file_info: dict[str, Any]
    query_time: str


class DatabaseTables(TypedDict, total=False):
    tables: list[str]
    total: int
    schemas: list[str]
    table_name_pattern: Optional[str]
    db_connection_info: dict[str, Any]


class TableDocument(TypedDict, total=False):
    ddl: str
    types_ddl: str          # what must run before `ddl` on an empty database, when the table needs it
    md: str
    table_info: dict[str, Any]
    fields: list[dict[str, Any]]
    generation_info: dict[str, Any]


class VectorBackup(TypedDict, total=False):
    timestamp: str
    collection_file: str
    embedding_file: str
    collection_size: str
    embedding_size: str
    backup_date: str
    has_log: bool
    has_manifest: bool      # only a set with a manifest that verifies can be restored


class VectorBackupLocation(TypedDict, total=False):
    type: Literal["global", "task"]
    relative_path: str
    task_id: str
    backups: list[VectorBackup]


class VectorBackupList(TypedDict, total=False):
    backup_locations: list[VectorBackupLocation]
    summary: dict[str, Any]
