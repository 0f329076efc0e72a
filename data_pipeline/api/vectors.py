"""Vector table backups (ours): list backup sets, restore one, back up outside any task."""
from __future__ import annotations

from flask import Blueprint

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.schemas import BackupRequest, ListBackupsQuery, RestoreRequest

bp = Blueprint("vectors", __name__, url_prefix="/api/v0/data_pipeline/vector")


@endpoint(bp, "/restore/list", methods=["GET"], query=ListBackupsQuery, summary="列出可恢复的向量表备份",
          tag="vectors")
def list_vector_backups(query: ListBackupsQuery):
    listing = services().vectors.list_backups(task_id=query.task_id, global_only=query.global_only)
    return success(listing, "获取备份列表成功")


@endpoint(bp, "/restore", methods=["POST"], body=RestoreRequest,
          summary="从备份恢复向量表（单个事务）", tag="vectors")
def restore_vector_backup(body: RestoreRequest):
    result = services().vectors.restore(backup_path=body.backup_path, timestamp=body.timestamp, tables=body.tables,
                                        truncate_before_restore=body.truncate_before_restore)
    return success(result, "向量表恢复成功")


@endpoint(bp, "/backup", methods=["POST"], body=BackupRequest, summary="备份向量表（不属于任何任务）",
          tag="vectors")
def backup_vector_store(body: BackupRequest):
    return success(services().vectors.backup(), "向量表备份成功")
