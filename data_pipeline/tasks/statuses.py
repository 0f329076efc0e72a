"""Task, step and execution statuses, the four step names, and which status may follow which.

This is the one place a status is named: the store, the workflow, the API schemas, the client
types and the CLI all take their status names from these enumerations. They are StrEnums, so a
member is the very string the store holds and the API sends (`TaskStatus.FAILED == "failed"`).
"""
from __future__ import annotations

from enum import StrEnum

STEP_NAMES: tuple[str, ...] = ("ddl_generation", "qa_generation", "sql_validation", "training_load")


class TaskStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    PARTIAL_COMPLETED = "partial_completed"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# The store's conditional UPDATEs are built from these tables (see `statuses_before`): a task is
# queued only from a status that may become queued, started only from queued, a step finished only
# from one that may become its final status. An accepted execute queues the task; it becomes
# in_progress when a run slot (local executor) or a worker takes it.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.QUEUED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.CANCELLED, TaskStatus.FAILED}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.COMPLETED, TaskStatus.PARTIAL_COMPLETED,
                                       TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.PARTIAL_COMPLETED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.COMPLETED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.FAILED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.QUEUED}),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.SKIPPED}),
    StepStatus.RUNNING: frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED}),
    StepStatus.COMPLETED: frozenset({StepStatus.RUNNING, StepStatus.PENDING, StepStatus.SKIPPED}),
    StepStatus.FAILED: frozenset({StepStatus.RUNNING, StepStatus.PENDING, StepStatus.SKIPPED}),
    StepStatus.SKIPPED: frozenset({StepStatus.RUNNING, StepStatus.PENDING}),
    StepStatus.CANCELLED: frozenset({StepStatus.RUNNING, StepStatus.PENDING, StepStatus.SKIPPED}),
}

# A task in one of these statuses has no execution under way: a client waiting for it can stop.
FINISHED_TASK_STATUSES: frozenset[TaskStatus] = frozenset({
    TaskStatus.COMPLETED, TaskStatus.PARTIAL_COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

# A task in one of these statuses has an execution waiting or under way: it cannot be executed
# again, and its files cannot change, until that ends.
ACTIVE_TASK_STATUSES: frozenset[TaskStatus] = frozenset({TaskStatus.QUEUED, TaskStatus.IN_PROGRESS})

# Task flags that disable a step in complete mode.
STEP_ENABLE_FLAGS: dict[str, str] = {
    "sql_validation": "enable_sql_validation",
    "training_load": "enable_training_data_load",
}


def statuses_before(target: TaskStatus | StepStatus) -> list[TaskStatus] | list[StepStatus]:
    """The statuses a task (or step) may leave for `target`, sorted: what a conditional UPDATE requires."""
    table = TASK_TRANSITIONS if isinstance(target, TaskStatus) else STEP_TRANSITIONS
    return sorted(status for status, following in table.items() if target in following)
