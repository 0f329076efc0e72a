"""Why a run failed, as a code a program can act on: `error_code` beside `error_message`.

A failed task's status body and its execution record carry one of these. Codes raised by a step
are the service's own error codes (the guide's §9.1 where one applies: DATABASE_CONNECTION_ERROR,
VECTOR_BACKUP_FAILED, ...); the rest say what became of the process that ran the task.
"""
from __future__ import annotations

from data_pipeline.errors import PipelineError, is_disk_full

# code -> what it means (the OpenAPI document lists these)
FAILURE_CODES: dict[str, str] = {
    "STEP_FAILED": "a step could not do its work (see error_message)",
    "DATABASE_CONNECTION_ERROR": "the business database (or the store) could not be reached or failed",
    "LLM_ERROR": "the LLM gave no usable answer after retries",
    "EMBEDDING_ERROR": "the embedding service failed",
    "EMBEDDING_DIMENSION_MISMATCH": "the embeddings' dimension differs from the vector table's",
    "PGVECTOR_NOT_AVAILABLE": "the vector database has no pgvector extension",
    "VECTOR_STORE_ERROR": "the vector store failed",
    "VECTOR_BACKUP_FAILED": "the vector tables could not be backed up (nothing was truncated)",
    "VECTOR_TRUNCATE_FAILED": "the vector tables could not be truncated",
    "TABLE_LIST_MISSING": "the task has no table list",
    "INSUFFICIENT_STORAGE": "the disk holding the task directory is full",
    "INTERNAL_ERROR": "an unexpected error in the executor (the traceback is in the task log)",
    "EXECUTOR_KILLED": "the executor process was killed by a signal",
    "EXECUTOR_CRASHED": "the executor process exited with an error code before recording an outcome",
    "EXECUTOR_LOST": "the executor process is gone (found at a status read or at start)",
    "EXECUTOR_NOT_STARTED": "the executor process could not be started, or never reported",
    "HEARTBEAT_LOST": "the executor on another host stopped sending heartbeats",
    "BROKER_UNAVAILABLE": "the API could not put the run on the broker (DATA_PIPELINE_EXECUTOR=celery)",
    "WORKER_LOST": "the worker running the task stopped sending heartbeats; the task can be executed again",
}


def failure_code(exc: BaseException) -> str:
    """The code of an exception that failed a step or a run."""
    if isinstance(exc, PipelineError):
        return exc.error_code if exc.error_code in FAILURE_CODES else "STEP_FAILED"
    if is_disk_full(exc):
        return "INSUFFICIENT_STORAGE"
    return "INTERNAL_ERROR"
