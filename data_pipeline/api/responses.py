"""JSON schemas of the task endpoints' `data` blocks, for the OpenAPI document.

The status and error-code lists are taken from their one definition (tasks/statuses.py,
tasks/failures.py), so the document cannot drift from what the service sends.
"""
from __future__ import annotations

from data_pipeline.tasks.failures import FAILURE_CODES
from data_pipeline.tasks.statuses import STEP_NAMES, ExecutionStatus, StepStatus, TaskStatus

_TEXT = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(name: str) -> dict:
    return {"anyOf": [_ref(name), {"type": "null"}]}


ERROR_CODE_DESCRIPTION = "Why a failed task (or execution) failed; null unless failed.\n\n" + "\n".join(
    f"- `{code}`: {meaning}" for code, meaning in FAILURE_CODES.items())

RESPONSE_SCHEMAS: dict[str, dict] = {
    "TaskStatus": {"type": "string", "enum": [str(s) for s in TaskStatus],
                   "description": "`queued`: accepted, waiting for a free run slot (local executor) or a worker."},
    "StepStatus": {"type": "string", "enum": [str(s) for s in StepStatus]},
    "ExecutionStatus": {"type": "string", "enum": [str(s) for s in ExecutionStatus]},
    "TaskErrorCode": {"type": ["string", "null"], "enum": [*FAILURE_CODES, None],
                      "description": ERROR_CODE_DESCRIPTION},
    "Execution": {"type": "object", "properties": {
        "execution_id": {"type": "string"}, "execution_mode": {"type": "string", "enum": ["complete", "step"]},
        "step_name": _TEXT, "status": _ref("ExecutionStatus"), "options": {"type": ["object", "null"]},
        "started_at": _TIME, "completed_at": _TIME,
        "worker": {"type": ["string", "null"], "description": "the Celery worker that ran it (null: local executor)"},
        "hostname": {"type": ["string", "null"], "description": "host of the process that ran it"},
        "pid": {"type": ["integer", "null"], "description": "pid of the executor process"},
        "exit_code": {"type": ["integer", "null"]}, "error_message": _TEXT, "error_code": _ref("TaskErrorCode")}},
    "TaskStatusBody": {"type": "object", "properties": {
        "task_id": {"type": "string"}, "task_name": _TEXT, "status": _ref("TaskStatus"),
        "step_status": {"type": "object", "properties": {name: _ref("StepStatus") for name in STEP_NAMES}},
        "created_at": _TIME, "started_at": _TIME, "completed_at": _TIME, "updated_at": _TIME,
        "created_by": _TEXT, "db_name": _TEXT, "business_context": _TEXT,
        "error_message": _TEXT, "error_code": _ref("TaskErrorCode"), "directory_exists": {"type": "boolean"},
        "parameters": {"type": "object"}, "current_step": {"type": ["object", "null"]},
        "total_steps": {"type": "integer"}, "steps": {"type": "array", "items": {"type": "object"}},
        "execution": _nullable("Execution"),
        "queue_position": {"type": ["integer", "null"], "minimum": 1,
                           "description": "a queued task's place in the run queue (1: next to start)"}}},
    "ExecutionStarted": {"type": "object", "properties": {
        "task_id": {"type": "string"}, "execution_id": {"type": "string"},
        "execution_mode": {"type": "string", "enum": ["complete", "step"]}, "step_name": _TEXT,
        "backup_vector_tables": {"type": "boolean"}, "truncate_vector_tables": {"type": "boolean"},
        "status": {"type": "string", "enum": [str(TaskStatus.QUEUED), str(TaskStatus.IN_PROGRESS)]},
        "queue_position": {"type": ["integer", "null"], "minimum": 1}, "message": {"type": "string"}}},
    "ExecutionHistory": {"type": "object", "properties": {
        "task_id": {"type": "string"}, "executions": {"type": "array", "items": _ref("Execution")},
        "total": {"type": "integer"}}},
}
