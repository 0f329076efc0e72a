"""Task log endpoints (guide §5.1, §5.2)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from flask import Blueprint
from pydantic import BeforeValidator, Field

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import QueryParameters, RequestBody, endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.schemas import TimeText
from data_pipeline.logs.query import DEFAULT_PAGE_SIZE, MAX_DEPTH, MAX_PAGE_SIZE, SORT_FIELDS, LogQuery
from data_pipeline.logs.service import TaskLogs
from data_pipeline.logs.tail import DEFAULT_LIMIT, MAX_LIMIT
from data_pipeline.tasks.statuses import STEP_NAMES

bp = Blueprint("logs", __name__, url_prefix="/api/v0/data_pipeline")


def _blank_as_none(value):
    """Frontends send "" for an unset filter."""
    return None if isinstance(value, str) and not value.strip() else value


def _upper(value):
    value = _blank_as_none(value)
    return value.upper() if isinstance(value, str) else value


LevelName = Annotated[Optional[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]], BeforeValidator(_upper)]
Filter = Annotated[Optional[str], BeforeValidator(_blank_as_none)]


class RecentLogsQuery(QueryParameters):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="返回最后多少条日志")
    level: LevelName = Field(None, description="日志级别（精确匹配）")


class LogQueryRequest(RequestBody):
    page: int = Field(1, ge=1, le=MAX_DEPTH, description=f"页码（page × page_size 不超过 {MAX_DEPTH}）")
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="每页大小")
    level: LevelName = Field(None, description="日志级别（精确匹配）")
    start_time: Annotated[Optional[TimeText], BeforeValidator(_blank_as_none)] = Field(
        None, description="开始时间（ISO 8601 或 YYYY-MM-DD HH:MM:SS）")
    end_time: Annotated[Optional[TimeText], BeforeValidator(_blank_as_none)] = Field(None, description="结束时间")
    keyword: Filter = Field(None, max_length=200, description="关键词（消息中搜索，不区分大小写）")
    logger_name: Filter = Field(None, max_length=200, description="记录器名称（精确匹配，可带或不带步骤前缀）")
    step_name: Annotated[Optional[Literal[STEP_NAMES]], BeforeValidator(_blank_as_none)] = Field(  # type: ignore[valid-type]
        None, description="步骤名称")
    sort_by: Literal[SORT_FIELDS] = Field("timestamp", description="排序字段")  # type: ignore[valid-type]
    sort_order: Literal["asc", "desc"] = Field("desc", description="排序顺序")


def _task_logs() -> TaskLogs:
    return TaskLogs(services().tasks)


@endpoint(bp, "/tasks/<task_id>/logs", methods=["GET"], query=RecentLogsQuery, summary="获取任务日志（最后 N 条）",
          tag="logs")
def recent_logs(task_id: str, query: RecentLogsQuery):
    return success(_task_logs().recent(task_id, query.limit, query.level), "获取任务日志成功")


@endpoint(bp, "/tasks/<task_id>/logs/query", methods=["POST"], body=LogQueryRequest, summary="高级日志查询",
          tag="logs")
def query_logs(task_id: str, body: LogQueryRequest):
    return success(_task_logs().query(task_id, LogQuery(**dict(body))), "高级日志查询成功")
