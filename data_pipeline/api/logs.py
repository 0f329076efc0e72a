"""Task log endpoints (guide §5.1, §5.2)."""
from __future__ import annotations

from flask import Blueprint

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.schemas import LogQueryRequest, RecentLogsQuery
from data_pipeline.logs.query import LogQuery

bp = Blueprint("logs", __name__, url_prefix="/api/v0/data_pipeline")


@endpoint(bp, "/tasks/<task_id>/logs", methods=["GET"], query=RecentLogsQuery, summary="获取任务日志（最后 N 条）",
          tag="logs")
def recent_logs(task_id: str, query: RecentLogsQuery):
    return success(services().logs.recent(task_id, query.limit, query.level), "获取任务日志成功")


@endpoint(bp, "/tasks/<task_id>/logs/query", methods=["POST"], body=LogQueryRequest, summary="高级日志查询",
          tag="logs")
def query_logs(task_id: str, body: LogQueryRequest):
    return success(services().logs.query(task_id, LogQuery(**dict(body))), "高级日志查询成功")
