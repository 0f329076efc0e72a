"""The store's rows as typed records: a Task with its Steps and its current Execution.

Frozen: a record is what the store held when it was read; a change goes through TaskStore.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, Mapping

from data_pipeline.tasks.statuses import ExecutionStatus, StepStatus, TaskStatus


def _values(cls, row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {f.name: row[prefix + f.name] for f in fields(cls) if prefix + f.name in row}


@dataclass(frozen=True)
class Step:
    task_id: str
    step_name: str
    step_order: int
    status: StepStatus
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    error_message: str | None
    result: dict | None
    progress: dict | None
    execution_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], prefix: str = "") -> "Step":
        values = _values(cls, row, prefix)
        return cls(**{**values, "status": StepStatus(values["status"])})


@dataclass(frozen=True)
class Execution:
    """One run of a task (complete or one step), with the executor process that works on it."""
    execution_id: str
    task_id: str
    execution_mode: str
    step_name: str | None
    status: ExecutionStatus
    options: dict | None
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    pid: int | None
    hostname: str | None
    heartbeat_at: dt.datetime | None
    exit_code: int | None
    error_message: str | None
    error_code: str | None = None
    queue_seq: int | None = None
    worker: str | None = None   # the Celery worker that runs it (None: the local executor)
    run_queue: str | None = None  # which executor's queue it waits in (TaskService.run_queue)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], prefix: str = "") -> "Execution":
        values = _values(cls, row, prefix)
        return cls(**{**values, "status": ExecutionStatus(values["status"])})


@dataclass(frozen=True)
class Task:
    """A task with its steps (in order). `execution`, the current execution, is read by
    TaskStore.get_task only; task lists leave it None."""
    task_id: str
    task_name: str | None
    status: TaskStatus
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    updated_at: dt.datetime | None
    created_by: str | None
    db_name: str | None
    business_context: str | None
    db_connection: str | None
    parameters: dict
    error_message: str | None
    current_execution_id: str | None
    error_code: str | None = None
    steps: tuple[Step, ...] = ()
    execution: Execution | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], steps: tuple[Step, ...] = (),
                 execution: Execution | None = None) -> "Task":
        values = _values(cls, row, "")
        return cls(**{**values, "status": TaskStatus(values["status"]), "parameters": values["parameters"] or {},
                      "steps": steps, "execution": execution})

    def running_step_name(self, execution_id: str | None = None) -> str | None:
        """The step that is running (for `execution_id`, when given), if any."""
        return next((step.step_name for step in self.steps if step.status is StepStatus.RUNNING
                     and (execution_id is None or step.execution_id == execution_id)), None)
