"""Task and step statuses, the four step names, and which status may follow which."""
from __future__ import annotations

from enum import Enum

STEP_NAMES: tuple[str, ...] = ("ddl_generation", "qa_generation", "sql_validation", "training_load")


class TaskStatus(str, Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    PARTIAL_COMPLETED = "partial_completed"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_running(self) -> bool:
        return self is TaskStatus.IN_PROGRESS


class StepStatus(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class ExecutionStatus(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A task leaves in_progress only through the end of its execution; every other status may start
# a new execution. The store enforces "claim only when not in_progress" in one conditional UPDATE.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.IN_PROGRESS}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.COMPLETED, TaskStatus.PARTIAL_COMPLETED,
                                       TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.PARTIAL_COMPLETED: frozenset({TaskStatus.IN_PROGRESS}),
    TaskStatus.COMPLETED: frozenset({TaskStatus.IN_PROGRESS}),
    TaskStatus.FAILED: frozenset({TaskStatus.IN_PROGRESS}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.IN_PROGRESS}),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.SKIPPED}),
    StepStatus.RUNNING: frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED}),
    StepStatus.COMPLETED: frozenset({StepStatus.RUNNING, StepStatus.PENDING, StepStatus.SKIPPED}),
    StepStatus.FAILED: frozenset({StepStatus.RUNNING, StepStatus.PENDING, StepStatus.SKIPPED}),
    StepStatus.SKIPPED: frozenset({StepStatus.RUNNING, StepStatus.PENDING}),
    StepStatus.CANCELLED: frozenset({StepStatus.RUNNING, StepStatus.PENDING, StepStatus.SKIPPED}),
}

# Task flags that disable a step in complete mode.
STEP_ENABLE_FLAGS: dict[str, str] = {
    "sql_validation": "enable_sql_validation",
    "training_load": "enable_training_data_load",
}


def task_status_values() -> list[str]:
    return [s.value for s in TaskStatus]
