"""A task's directory: where it is, what each step reads and writes there, and backups of outputs.

`<training data dir>/<task_id>/` holds everything a task produces. Re-running a step first moves
that step's previous outputs into `file_bak_<YYYYMMDD_HHMMSS>/`, so nothing is overwritten
without a copy.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from data_pipeline.errors import ValidationError
from data_pipeline.schema.names import TableName
from data_pipeline.tasks.table_list import parse_table_list_text

TASK_ID_PATTERN = re.compile(r"task_\d{8}_\d{6}(?:_\d{1,6})?\Z")
TABLE_LIST_FILE = "table_list.txt"
TASK_LOG_FILE = "data_pipeline.log"
TASK_CONFIG_FILE = "task_config.json"
TASK_RESULT_FILE = "task_result.json"
EXECUTOR_OUTPUT_FILE = "executor_output.log"
BACKUP_DIR_PREFIX = "file_bak_"

# Top-level files each step writes (fnmatch patterns); moved to file_bak_<ts>/ when it re-runs.
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    "ddl_generation": ("*.ddl", "*_detail.md", "schema_types.sql", "filename_mapping.txt",
                       "ddl_generation_result.json"),
    "qa_generation": ("qs_*_pair.json", "qs_*_pair.json.backup*", "metadata.txt", "metadata_detail.md",
                      "db_query_decision_prompt.txt", "qa_generation_result.json"),
    "sql_validation": ("sql_validation_*", "file_modifications_*.log"),
    "training_load": ("training_load_result.json",),
}


def is_valid_task_id(task_id: str) -> bool:
    return bool(TASK_ID_PATTERN.match(task_id or ""))


def task_dir(training_data_dir: Path, task_id: str) -> Path:
    """The task's directory; the id is checked so it can never name a path elsewhere."""
    if not is_valid_task_id(task_id):
        raise ValidationError(f"无效的任务ID: {task_id[:80]!r}", invalid_params=["task_id"])
    return Path(training_data_dir) / task_id


def write_text_atomic(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value) -> None:
    write_text_atomic(path, json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def read_table_list(directory: Path) -> list[TableName] | None:
    """The task's table list, or None when it has none."""
    path = directory / TABLE_LIST_FILE
    if not path.is_file():
        return None
    return parse_table_list_text(path.read_text(encoding="utf-8"))


def pair_files(directory: Path) -> list[Path]:
    """Top-level question/SQL pair files, newest first."""
    if not directory.is_dir():
        return []
    files = [p for p in directory.glob("*_pair.json") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def missing_step_inputs(step_name: str, directory: Path, tables: list[TableName]) -> list[str]:
    """What `step_name` needs in the task directory and does not find (empty when it can run)."""
    if step_name == "qa_generation":
        # Either document of a table is enough to generate from (a user may upload only DDL).
        return [f"{table.file_stem}.ddl / {table.file_stem}_detail.md" for table in tables
                if not (directory / f"{table.file_stem}.ddl").is_file()
                and not (directory / f"{table.file_stem}_detail.md").is_file()]
    if step_name == "sql_validation":
        return [] if pair_files(directory) else ["*_pair.json (问答对文件)"]
    if step_name == "training_load":
        has_any = any(directory.glob("*.ddl")) or any(directory.glob("*_detail.md")) or pair_files(directory)
        return [] if has_any else ["*.ddl / *_detail.md / *_pair.json (至少一个训练数据文件)"]
    return []


def backup_step_outputs(step_name: str, directory: Path, now: dt.datetime | None = None) -> Path | None:
    """Move the step's previous top-level outputs into file_bak_<ts>/; returns that dir if any moved."""
    patterns = STEP_OUTPUTS.get(step_name, ())
    victims = [p for p in sorted(directory.iterdir()) if p.is_file()
               and any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)] if directory.is_dir() else []
    if not victims:
        return None
    target = unique_backup_dir(directory, now)
    target.mkdir()
    for path in victims:
        shutil.move(str(path), target / path.name)
    return target


def unique_backup_dir(directory: Path, now: dt.datetime | None = None) -> Path:
    """A file_bak_<YYYYMMDD_HHMMSS> path not yet used (a later second when this one is taken)."""
    moment = now or dt.datetime.now()
    while True:
        candidate = directory / f"{BACKUP_DIR_PREFIX}{moment:%Y%m%d_%H%M%S}"
        if not candidate.exists():
            return candidate
        moment += dt.timedelta(seconds=1)
