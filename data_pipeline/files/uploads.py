"""Files a user puts into a task directory: the table list, and their own DDL, MD, SQL, CSV or
question/SQL pair files.

Every upload is checked before anything is written, written under a temporary name and renamed
(atomic), and a file it replaces is first copied to `file_bak_<YYYYMMDD_HHMMSS>/`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import unicodedata
from pathlib import Path

from data_pipeline.errors import PayloadTooLargeError, ValidationError
from data_pipeline.files.catalog import file_entry, primary_file
from data_pipeline.files.paths import check_file_name, display_path
from data_pipeline.tasks.statuses import STEP_NAMES
from data_pipeline.schema.names import TableName
from data_pipeline.tasks.table_list import decode_table_list, parse_table_list_text, render_table_list, split_entries
from data_pipeline.tasks.directory import (TABLE_LIST_FILE, TASK_CONFIG_FILE, TASK_LOG_FILE, TASK_RESULT_FILE,
                                    unique_backup_dir, write_text_atomic)
from data_pipeline.timeutil import iso
from data_pipeline.vector.manifest import looks_like_backup

TABLE_LIST_EXTENSION = ".txt"
UPLOAD_EXTENSIONS = (".ddl", ".md", ".json", ".sql", ".txt", ".csv")
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Files the service itself owns: an upload may not replace them.
RESERVED_NAMES = {TASK_CONFIG_FILE, TASK_RESULT_FILE, TASK_LOG_FILE, *(f"{s}_result.json" for s in STEP_NAMES)}
# On top of the shared name rule (files.paths.check_file_name: no path, control character or
# backslash in any decoding): what other systems reserve in a name, and "%".
_UNSAFE_NAME = re.compile(r"[:*?\"<>|%]")


def invalid_file(details: str, param: str = "file") -> ValidationError:
    return ValidationError(details, invalid_params=[param], error_code="INVALID_FILE")


# ---- table lists --------------------------------------------------------------------------------

def table_list_from_upload(filename: str | None, data: bytes) -> tuple[list[TableName], int]:
    """The validated names of an uploaded table list and how many duplicates were dropped."""
    if not filename or not filename.lower().endswith(TABLE_LIST_EXTENSION):
        raise invalid_file(f"表清单只支持 {TABLE_LIST_EXTENSION} 文件，收到: {str(filename)[:100]!r}")
    if not data:
        raise invalid_file("上传的表清单文件为空")
    text = decode_table_list(data)
    names = parse_table_list_text(text)
    return names, len(split_entries(text)) - len(names)


def write_table_list(directory: Path, task_id: str, names: list[TableName]) -> dict:
    """Write table_list.txt (a replaced, different list is kept under file_bak_<ts>/ first)."""
    content = render_table_list(names)
    target = directory / TABLE_LIST_FILE
    directory.mkdir(parents=True, exist_ok=True)
    backup = None
    if target.is_file() and target.read_text(encoding="utf-8", errors="replace") != content:
        backup = _keep_copy(directory, target)
    write_text_atomic(target, content)
    info = table_list_info(directory, task_id)
    info["replaced_file_backup"] = backup
    return info


def table_list_info(directory: Path, task_id: str) -> dict:
    """The guide's §4.4 body: whether the task has a list, its tables, file size and time."""
    path = directory / TABLE_LIST_FILE
    info = {"task_id": task_id, "has_table_list": path.is_file(), "file_name": TABLE_LIST_FILE,
            "file_path": display_path(path), "file_size": 0, "table_count": 0, "tables": [],
            "uploaded_at": None, "valid": False}
    if not info["has_table_list"]:
        return info
    status = path.stat()
    info.update(file_size=status.st_size, uploaded_at=iso(dt.datetime.fromtimestamp(status.st_mtime)))
    try:
        names = parse_table_list_text(decode_table_list(path.read_bytes()))
    except ValidationError as exc:  # a list edited by hand on the server
        info["error"] = exc.details
        return info
    info.update(table_count=len(names), tables=[name.full_name for name in names], valid=True)
    return info


# ---- user files ---------------------------------------------------------------------------------

def check_upload_name(filename: str | None) -> str:
    """A plain file name with an accepted extension that the service does not own."""
    if not filename or not filename.strip():
        raise invalid_file("缺少文件名")
    if len(filename.encode("utf-8", "surrogatepass")) > 200:
        raise invalid_file("文件名过长（最多 200 字节）")
    try:
        check_file_name(filename)  # the downloads' rule: what is stored can be downloaded
    except ValidationError as exc:
        raise ValidationError(exc.details, invalid_params=["file"], error_code="INVALID_FILE_PATH") from None
    if _UNSAFE_NAME.search(unicodedata.normalize("NFKC", filename)) or filename.strip() != filename:
        raise ValidationError(f"文件名不能包含路径或特殊字符: {filename[:100]!r}", invalid_params=["file"],
                              error_code="INVALID_FILE_PATH")
    if not filename.lower().endswith(UPLOAD_EXTENSIONS):
        raise invalid_file(f"不支持的文件类型，只支持 {' '.join(UPLOAD_EXTENSIONS)}")
    if looks_like_backup(filename):
        raise invalid_file(f"{filename[:100]} 与向量表备份的文件同名，只有备份本身能写这类文件")
    if filename == TABLE_LIST_FILE:
        raise invalid_file("表清单请通过 upload-table-list 或 table-list 接口提交")
    if filename in RESERVED_NAMES:
        raise invalid_file(f"{filename} 由服务生成，不能上传覆盖")
    return filename


def save_uploaded_file(directory: Path, task_id: str, filename: str | None, data: bytes) -> dict:
    """Check and store a user's file; returns its listing entry and where the old one was kept."""
    name = check_upload_name(filename)
    if len(data) > MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError(f"上传文件超过 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB", invalid_params=["file"])
    text = _decode_text(data)
    if name.lower().endswith(".json"):
        _check_json(name, text)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    backup = None
    if not (target.is_file() and target.read_bytes() == text.encode("utf-8")):
        backup = _keep_copy(directory, target) if target.is_file() else None
        write_text_atomic(target, text)
    entry = file_entry(task_id, name, target.stat(), primary_file(directory) == name)
    return {"task_id": task_id, "file": entry, "replaced": backup is not None, "replaced_file_backup": backup}


def _decode_text(data: bytes) -> str:
    if not data:
        raise invalid_file("上传的文件为空")
    if b"\x00" in data:
        raise invalid_file("文件不是文本文件")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise invalid_file("文件编码无法识别（需要 UTF-8 或 GBK）")


def _check_json(name: str, text: str) -> None:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise invalid_file(f"JSON 格式错误: {exc}") from None
    except RecursionError:
        raise invalid_file("JSON 格式错误: 嵌套层次过深") from None
    if not name.endswith("_pair.json"):
        return
    if not isinstance(value, list) or not value:
        raise invalid_file("问答对文件必须是非空的 JSON 数组: [{\"question\": ..., \"sql\": ...}]")
    bad = [str(index) for index, item in enumerate(value)
           if not (isinstance(item, dict) and all(isinstance(item.get(key), str) and item[key].strip()
                                                  for key in ("question", "sql")))]
    if bad:
        shown = ", ".join(bad[:20]) + (f" 等{len(bad)}项" if len(bad) > 20 else "")
        raise invalid_file(f"问答对必须包含非空的 question 和 sql 字符串，不符合的序号: {shown}")


def _keep_copy(directory: Path, path: Path) -> str:
    """Copy a file about to be replaced into file_bak_<ts>/; its path relative to the task dir."""
    backup_dir = unique_backup_dir(directory)
    backup_dir.mkdir()
    try:
        shutil.copy2(path, backup_dir / path.name)
    except OSError:
        # A half-written copy (disk full) must not pass for a backup of the user's file.
        shutil.rmtree(backup_dir, ignore_errors=True)
        raise
    return f"{backup_dir.name}/{path.name}"


def read_limited(stream, limit: int) -> bytes:
    """At most limit + 1 bytes of an upload stream: enough to tell that it is too large."""
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
