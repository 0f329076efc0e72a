"""What is in a task directory: every file with its kind, size, times and a human description.

Subdirectories (`vector_bak/`, `file_bak_<ts>/`) are listed too, each file by its path relative to
the task directory. Hidden files (the temporary names of atomic writes) and symlinks are left out:
nothing the listing shows can point outside the directory.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from urllib.parse import quote

from data_pipeline.qa.checkpoint import CHECKPOINT_DIR
from data_pipeline.tasks.directory import BACKUP_DIR_PREFIX, pair_files

API_PREFIX = "/api/v0/data_pipeline"

# (pattern on the file's own name, description); the first match wins. {table} is the table a
# DDL/MD file describes, {step} a step's name in Chinese.
_KINDS: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern + r"\Z"), text) for pattern, text in [
    (r"table_list\.txt", "表清单"),
    (r"task_config\.json", "任务配置（连接密码已屏蔽）"),
    (r"task_result\.json", "任务执行结果汇总"),
    (r"data_pipeline\.log", "任务执行日志"),
    (r"executor_output\.log", "执行器进程输出"),
    (r"(?P<step>ddl_generation|qa_generation|sql_validation|training_load)_result\.json", "{step}步骤结果"),
    (r".+_pair\.json\.backup", "Question-SQL训练数据对备份（SQL验证修改前的原文件）"),
    (r".+_pair\.json\.backup_\d{8}_\d{6}", "Question-SQL训练数据对的更早备份（之前一次SQL验证修改前的原文件）"),
    (r".+_pair\.json", "Question-SQL训练数据对"),
    (r"metadata\.txt", "业务主题元数据（metadata 表的 INSERT 语句）"),
    (r"metadata_detail\.md", "业务主题元数据说明"),
    (r"db_query_decision_prompt\.txt", "数据库查询决策提示词"),
    (r"filename_mapping\.txt", "表名与文件名映射"),
    (r"schema_types\.sql", "各表用到的扩展、枚举、域、复合类型与序列（先于各表DDL执行）"),
    (r"sql_validation_.+_summary\.log", "SQL验证摘要"),
    (r"sql_validation_.+_report\.json", "SQL验证详细报告"),
    (r"quality_report\.json", "问答对质量报告（JSON）"),
    (r"quality_report\.md", "问答对质量报告"),
    (r"file_modifications_.+\.log", "SQL验证对问答对文件的修改记录"),
    (r"qa_generation_progress.*", "问答生成进度"),
    (r"vector_backup_log\.txt", "向量表备份日志"),
    (r"vector_backup_manifest_.+\.json", "向量表备份清单（各文件的行数与SHA-256，恢复时校验）"),
    (r"langchain_pg_collection_.+\.csv", "向量集合表 langchain_pg_collection 的备份"),
    (r"langchain_pg_embedding_.+\.csv", "向量嵌入表 langchain_pg_embedding 的备份"),
    (r"(?P<table>.+)_detail\.md", "表 {table} 的结构说明文档"),
    (r"(?P<table>.+)\.ddl", "表 {table} 的DDL"),
]]
_STEP_NAMES_ZH = {"ddl_generation": "DDL/MD生成", "qa_generation": "Question-SQL生成",
                  "sql_validation": "SQL验证", "training_load": "训练数据加载"}
_BY_EXTENSION = {"json": "JSON文件", "md": "Markdown文档", "sql": "SQL文件", "csv": "CSV数据文件",
                 "txt": "文本文件", "log": "日志文件", "ddl": "DDL文件"}
_BACKUP_DIR = re.compile(re.escape(BACKUP_DIR_PREFIX) + r"(\d{8})_(\d{6})(?:_\d+)?\Z")
_BACKUP_SUFFIX = re.compile(r"\.backup(?:_\d{8}_\d{6})?\Z")
_DIRECTORIES = {CHECKPOINT_DIR: "问答生成断点（中断后续跑用）"}

CONTENT_TYPES = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    **{kind: "text/plain; charset=utf-8" for kind in ("txt", "log", "ddl", "sql", "backup")},
}


def file_type(name: str) -> str:
    if _BACKUP_SUFFIX.search(name):
        return "backup"
    suffix = Path(name).suffix.lower().lstrip(".")
    return suffix or "file"


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(file_type(name), "application/octet-stream")


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def describe(relative_name: str) -> str:
    """A human (Chinese) description of a task file from its path in the task directory."""
    parts = relative_name.split("/")
    name = parts[-1]
    backup = _BACKUP_DIR.match(parts[0]) if len(parts) > 1 else None
    text = _describe_name(name)
    if len(parts) > 1 and parts[-2] in _DIRECTORIES:
        text = f"{_DIRECTORIES[parts[-2]]}: {text}"
    if backup:
        day, time = backup.groups()
        return f"备份于 {day[:4]}-{day[4:6]}-{day[6:]} {time[:2]}:{time[2:4]}:{time[4:]} 的旧文件: {text}"
    return text


def _describe_name(name: str) -> str:
    for pattern, text in _KINDS:
        match = pattern.match(name)
        if match:
            groups = match.groupdict()
            table = groups.get("table")
            return text.format(table=table.replace("__", ".", 1) if table else "",
                               step=_STEP_NAMES_ZH.get(groups.get("step") or "", ""))
    return _BY_EXTENSION.get(file_type(name), "其他文件")


def download_url(task_id: str, relative_name: str) -> str:
    return f"{API_PREFIX}/tasks/{task_id}/files/{quote(relative_name, safe='/')}"


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).replace(microsecond=0).isoformat()


def file_entry(task_id: str, relative_name: str, status: os.stat_result, primary: bool) -> dict:
    return {
        "file_name": relative_name,
        "file_type": file_type(relative_name),
        "file_size": status.st_size,
        "file_size_human": human_size(status.st_size),
        # Linux keeps no creation time; the earlier of the change and modification times comes closest.
        "created_at": _iso(min(status.st_ctime, status.st_mtime)),
        "modified_at": _iso(status.st_mtime),
        "is_primary": primary,
        "description": describe(relative_name),
        "download_url": download_url(task_id, relative_name),
    }


def primary_file(directory: Path) -> str | None:
    """The final pair file: the newest top-level `*_pair.json` (what later steps use)."""
    newest = pair_files(directory)
    return newest[0].name if newest else None


def list_task_files(directory: Path, task_id: str) -> dict:
    """Every regular file under the task directory, the primary first, then top-level files
    before those in subdirectories, each group by name."""
    primary = primary_file(directory)
    files = []
    for relative_name, status in _walk(directory):
        files.append(file_entry(task_id, relative_name, status, relative_name == primary))
    files.sort(key=lambda f: (not f["is_primary"], "/" in f["file_name"], f["file_name"]))
    total = sum(f["file_size"] for f in files)
    return {"task_id": task_id, "files": files, "total_files": len(files), "total_size": total,
            "total_size_human": human_size(total)}


def _walk(directory: Path):
    pending = [("", str(directory))]
    while pending:
        prefix, path = pending.pop()
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            relative = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                pending.append((relative + "/", entry.path))
            elif entry.is_file(follow_symlinks=False):
                try:
                    yield relative, entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # removed while listing
                    continue
