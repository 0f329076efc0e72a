"""The service's errors: one small hierarchy that the HTTP layer maps to the envelope in one place.

Every error carries the HTTP status, the envelope `type`, the `error_code` of the guide (§9.1) or
one of ours in the same style, a human `details` text and the parameters it concerns. Steps and
services raise these; nothing below the HTTP layer builds a response.
"""
from __future__ import annotations

import errno


class PipelineError(Exception):
    status = 500
    type = "InternalError"
    error_code = "INTERNAL_ERROR"
    message = "服务器内部错误"

    def __init__(self, details: str, *, error_code: str | None = None,
                 invalid_params: list[str] | None = None, message: str | None = None,
                 status: int | None = None):
        super().__init__(details)
        self.details = details
        if error_code:
            self.error_code = error_code
        if message:
            self.message = message
        if status:
            self.status = status
        self.invalid_params = list(invalid_params or [])


class ValidationError(PipelineError):
    status = 400
    type = "ValidationError"
    error_code = "VALIDATION_ERROR"
    message = "请求参数错误"


class AuthenticationError(PipelineError):
    status = 401
    type = "AuthenticationError"
    error_code = "UNAUTHORIZED"
    message = "未授权"


class ForbiddenError(PipelineError):
    """The request is understood but refused by policy (its Host, its Origin, its target)."""
    status = 403
    type = "AuthenticationError"
    error_code = "FORBIDDEN"
    message = "禁止访问"


class ConnectionNotAllowedError(ForbiddenError):
    """A db_connection that points at the service's own store, or outside DATA_PIPELINE_ALLOWED_DB_HOSTS."""
    error_code = "CONNECTION_NOT_ALLOWED"
    message = "不允许连接该数据库"


class UnsupportedMediaTypeError(PipelineError):
    status = 415
    type = "ValidationError"
    error_code = "UNSUPPORTED_MEDIA_TYPE"
    message = "不支持的内容类型"


class NotFoundError(PipelineError):
    status = 404
    type = "NotFoundError"
    error_code = "NOT_FOUND"
    message = "资源不存在"


class TaskNotFoundError(NotFoundError):
    error_code = "TASK_NOT_FOUND"
    message = "任务不存在"

    def __init__(self, task_id: str):
        super().__init__(f"任务不存在: {task_id}", invalid_params=["task_id"])


class ConflictError(PipelineError):
    status = 409
    type = "ConflictError"
    error_code = "CONFLICT"
    message = "请求与当前状态冲突"


class PayloadTooLargeError(PipelineError):
    status = 413
    type = "PayloadTooLarge"
    error_code = "PAYLOAD_TOO_LARGE"
    message = "请求体过大"


class InsufficientStorageError(PipelineError):
    """The disk holding the task directories is full: nothing was written."""
    status = 507
    type = "InternalError"
    error_code = "INSUFFICIENT_STORAGE"
    message = "服务器磁盘空间不足"


class BrokerUnavailable(PipelineError):
    """DATA_PIPELINE_EXECUTOR=celery and the broker does not take the run."""
    status = 503
    type = "InternalError"
    error_code = "BROKER_UNAVAILABLE"
    message = "任务队列不可用"


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_details(exc: OSError) -> str:
    """What a user reads when a write failed for lack of space (the file's name, not its path)."""
    name = str(exc.filename).rsplit("/", 1)[-1] if exc.filename else ""
    return f"磁盘空间不足，无法写入{' ' + name if name else '任务目录'}（{exc.strerror}），请清理磁盘后重试"


class DatabaseError(PipelineError):
    """The business database (or the store) could not be reached or answered with an error."""
    status = 500
    type = "DatabaseError"
    error_code = "DATABASE_CONNECTION_ERROR"
    message = "数据库连接失败"


class ServiceBusyError(PipelineError):
    """A bounded pool is full: the caller may retry later."""
    status = 503
    type = "ServiceUnavailable"
    error_code = "SERVICE_BUSY"
    message = "服务繁忙，请稍后重试"


class DeadlineExceededError(PipelineError):
    """The work did not finish within its deadline (it may still end on its own)."""
    status = 504
    type = "GatewayTimeout"
    error_code = "DEADLINE_EXCEEDED"
    message = "处理超时"


class VectorStoreError(PipelineError):
    status = 500
    type = "VectorStoreError"
    error_code = "VECTOR_STORE_ERROR"
    message = "向量存储操作失败"


class StepFailed(PipelineError):
    """A step could not do its work; the runner marks the step and the task failed with `details`."""
    type = "InternalError"
    error_code = "STEP_FAILED"
    message = "步骤执行失败"


class LLMError(PipelineError):
    """The LLM could not give a usable answer (after retries). Never written into an output."""
    type = "InternalError"
    error_code = "LLM_ERROR"
    message = "LLM调用失败"
