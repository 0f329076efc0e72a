"""Vector table backups (ours): list backup sets, restore one, back up outside any task."""
from __future__ import annotations

from typing import Literal, Optional

from flask import Blueprint
from pydantic import Field

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import QueryParameters, RequestBody, endpoint
from data_pipeline.api.envelope import success
from data_pipeline.db.databases import store_url
from data_pipeline.vector.restore import create_global_backup, list_backups, restore_backup

bp = Blueprint("vectors", __name__, url_prefix="/api/v0/data_pipeline/vector")

VectorTableName = Literal["langchain_pg_collection", "langchain_pg_embedding"]


class ListBackupsQuery(QueryParameters):
    task_id: Optional[str] = Field(None, max_length=40, description="只列出该任务目录中的备份")
    global_only: bool = Field(False, description="只列出全局备份目录 vector_bak/ 中的备份")


class RestoreRequest(RequestBody):
    backup_path: str = Field(..., min_length=1, max_length=1024,
                             description="备份目录，相对训练数据目录（取自 restore/list 的 relative_path）",
                             examples=["task_20250721_213627/vector_bak"])
    timestamp: str = Field(..., pattern=r"^\d{8}_\d{6}$", description="备份时间戳 YYYYMMDD_HHMMSS",
                           examples=["20250721_215758"])
    tables: Optional[list[VectorTableName]] = Field(None, min_length=1, description="要恢复的表，缺省为两张表")
    truncate_before_restore: bool = Field(False, description="恢复前清空 langchain_pg_embedding（同一事务）")


class BackupRequest(RequestBody):
    """No parameters: the backup goes into `<training data dir>/vector_bak/`."""


@endpoint(bp, "/restore/list", methods=["GET"], query=ListBackupsQuery, summary="列出可恢复的向量表备份",
          tag="vectors")
def list_vector_backups(query: ListBackupsQuery):
    listing = list_backups(services().settings.training_data_dir, task_id=query.task_id,
                           global_only=query.global_only)
    return success(listing, "获取备份列表成功")


@endpoint(bp, "/restore", methods=["POST"], body=RestoreRequest,
          summary="从备份恢复向量表（单个事务）", tag="vectors")
def restore_vector_backup(body: RestoreRequest):
    settings = services().settings
    result = restore_backup(store_url(settings), settings.training_data_dir, backup_path=body.backup_path,
                            timestamp=body.timestamp, tables=body.tables,
                            truncate_before_restore=body.truncate_before_restore)
    return success(result, "向量表恢复成功")


@endpoint(bp, "/backup", methods=["POST"], body=BackupRequest, summary="备份向量表（不属于任何任务）",
          tag="vectors")
def backup_vector_store(body: BackupRequest):
    settings = services().settings
    return success(create_global_backup(store_url(settings), settings.training_data_dir), "向量表备份成功")
