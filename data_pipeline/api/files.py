"""Task file endpoints (guide §4.1–4.5) and the generic upload of DESIGN.md."""
from __future__ import annotations

from flask import Blueprint, request, send_file

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.schemas import CreateTableListRequest
from data_pipeline.errors import ValidationError
from data_pipeline.files.paths import invalid_path
from data_pipeline.files.uploads import UPLOAD_EXTENSIONS

bp = Blueprint("files", __name__, url_prefix="/api/v0/data_pipeline")


def _uploaded_file():
    upload = request.files.get("file")
    if upload is None:
        raise ValidationError("缺少上传文件（multipart/form-data 字段 file）", invalid_params=["file"])
    return upload


@endpoint(bp, "/tasks/<task_id>/files", methods=["GET"], summary="获取任务文件列表", tag="files")
def list_files(task_id: str):
    return success(services().files.list_files(task_id), "获取文件列表成功")


@endpoint(bp, "/tasks/<task_id>/files/<path:file_name>", methods=["GET"], summary="下载任务文件",
          tag="files", binary_response=True,
          description="file_name 为相对任务目录的路径（如 vector_bak/x.csv）；指向任务目录之外的路径返回 400 INVALID_FILE_PATH")
def download_file(task_id: str, file_name: str):
    path, content_type = services().files.download(task_id, file_name)
    response = send_file(path, as_attachment=True, download_name=path.name, max_age=0)
    response.headers["Content-Type"] = content_type
    # A task file is data, never a page: no type sniffing, and opened directly it runs no script
    # and reaches no API with the service's origin.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


def refuse_absolute_path(task_id: str, file_name: str):
    """`/files//etc/passwd` (or `/files/%2Fetc%2Fpasswd`, decoded before routing): an absolute path."""
    raise invalid_path("/" + file_name, "不允许绝对路径")


bp.add_url_rule("/tasks/<task_id>/files//<path:file_name>", view_func=refuse_absolute_path, methods=["GET"])


@endpoint(bp, "/tasks/<task_id>/files", methods=["POST"], summary="上传任务文件（替换的旧文件备份到 file_bak_<时间>/）",
          tag="files", multipart={"file": f"文件（{' '.join(UPLOAD_EXTENSIONS)}，不超过 10 MB）"})
def upload_file(task_id: str):
    upload = _uploaded_file()
    return success(services().files.upload_file(task_id, upload.filename, upload.stream), "文件上传成功")


@endpoint(bp, "/tasks/<task_id>/upload-table-list", methods=["POST"], summary="上传表清单文件", tag="files",
          multipart={"file": "表清单文件（.txt，UTF-8 或 GBK，不超过 2 MB）"})
def upload_table_list(task_id: str):
    upload = _uploaded_file()
    return success(services().files.upload_table_list(task_id, upload.filename, upload.stream), "表清单文件上传成功")


@endpoint(bp, "/tasks/<task_id>/table-list-info", methods=["GET"], summary="获取表清单信息", tag="files")
def table_list_info(task_id: str):
    return success(services().files.table_list_info(task_id), "获取表清单信息成功")


@endpoint(bp, "/tasks/<task_id>/table-list", methods=["POST"], body=CreateTableListRequest, summary="直接创建表清单",
          tag="files")
def create_table_list(task_id: str, body: CreateTableListRequest):
    result = services().files.create_table_list(task_id, body.table_names, body.business_context)
    return success(result, "表清单创建成功")
