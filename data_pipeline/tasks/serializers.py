"""Store records as the guide's JSON bodies (§3.3 status, §3.4 list items). Never shows a password."""
from __future__ import annotations

from data_pipeline.db.connection import mask_url
from data_pipeline.store import Execution, Step, Task
from data_pipeline.tasks.statuses import STEP_NAMES, StepStatus
from data_pipeline.timeutil import iso


def public_parameters(task: Task) -> dict:
    parameters = dict(task.parameters)
    if parameters.get("db_connection"):
        parameters["db_connection"] = mask_url(parameters["db_connection"])
    return parameters


def step_status_map(task: Task) -> dict[str, StepStatus]:
    statuses = {step.step_name: step.status for step in task.steps}
    return {name: statuses.get(name, StepStatus.PENDING) for name in STEP_NAMES}


def step_view(step: Step) -> dict:
    return {
        "step_name": step.step_name,
        "step_status": step.status,
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
        "error_message": step.error_message,
        "execution_id": step.execution_id,
        "progress": step.progress,
        "result": step.result,
    }


def current_step_view(task: Task) -> dict | None:
    """The running step, else the step that ran last (with its progress)."""
    started = [s for s in task.steps if s.started_at is not None]
    if not started:
        return None
    running = [s for s in started if s.status is StepStatus.RUNNING]
    step = running[0] if running else max(started, key=lambda s: (s.started_at, s.step_order))
    return {
        "execution_id": step.execution_id,
        "step": step.step_name,
        "status": step.status,
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
        "progress": step.progress,
    }


def execution_view(execution: Execution | None) -> dict | None:
    if execution is None:
        return None
    return {
        "execution_id": execution.execution_id,
        "execution_mode": execution.execution_mode,
        "step_name": execution.step_name,
        "status": execution.status,
        "options": execution.options,
        "started_at": iso(execution.started_at),
        "completed_at": iso(execution.completed_at),
        "worker": execution.worker,
        "hostname": execution.hostname,
        "pid": execution.pid,
        "exit_code": execution.exit_code,
        "error_message": execution.error_message,
        "error_code": execution.error_code,
    }


def task_summary(task: Task, directory_exists: bool) -> dict:
    """A task as an item of the task list (§3.4)."""
    return {
        "task_id": task.task_id,
        "task_name": task.task_name,
        "status": task.status,
        "step_status": step_status_map(task),
        "created_at": iso(task.created_at),
        "started_at": iso(task.started_at),
        "completed_at": iso(task.completed_at),
        "created_by": task.created_by,
        "db_name": task.db_name,
        "business_context": task.business_context,
        "error_message": task.error_message,
        "error_code": task.error_code,
        "directory_exists": directory_exists,
        "updated_at": iso(task.updated_at),
    }


def task_status_body(task: Task, directory_exists: bool, queue_position: int | None = None) -> dict:
    """The full status body (§3.3) with our additions: progress, results, execution, error, and the
    place of a queued task in the run queue (1: next to start)."""
    body = task_summary(task, directory_exists)
    body.update({
        "queue_position": queue_position,
        "parameters": public_parameters(task),
        "current_step": current_step_view(task),
        "total_steps": len(STEP_NAMES),
        "steps": [step_view(step) for step in task.steps],
        "execution": execution_view(task.execution),
    })
    return body
