"""The question/SQL pair file of a task: finding it, reading it, and rewriting it safely.

Later steps use the newest top-level `*_pair.json` in the task directory, whether qa_generation
wrote it or a user uploaded it. A rewrite keeps the original as `<pair>.json.backup` first, then
replaces the file atomically, and lists every change in `file_modifications_<ts>.log`.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from data_pipeline.errors import StepFailed
from data_pipeline.tasks.directory import pair_files, write_json_atomic, write_text_atomic


@dataclass
class PairChange:
    index: int
    question: str
    old_sql: str
    new_sql: str | None          # None: the pair is removed
    reason: str = ""


def find_pair_file(task_dir: Path) -> Path | None:
    """The newest top-level `*_pair.json`: the one later steps use."""
    files = pair_files(task_dir)
    return files[0] if files else None


def load_pairs(path: Path) -> list[dict]:
    """The pairs as written; entries that are not objects become empty pairs (reported invalid)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise StepFailed(f"问答对文件 {path.name} 无法读取: {exc}") from None
    if not isinstance(data, list):
        raise StepFailed(f"问答对文件 {path.name} 格式错误: 应为 [{{\"question\": ..., \"sql\": ...}}] 数组")
    pairs = []
    for entry in data:
        if isinstance(entry, dict):
            pairs.append({**entry, "question": _text(entry.get("question")), "sql": _text(entry.get("sql"))})
        else:
            pairs.append({"question": "", "sql": ""})
    return pairs


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def rewrite_pairs(path: Path, pairs: list[dict], changes: list[PairChange], timestamp: str) -> tuple[Path, Path]:
    """Apply `changes` to the file at `path`; returns (backup file, modification log)."""
    backup = backup_path(path)
    if backup.exists():
        # An earlier run's backup holds an older original: keep it under its own name.
        backup.rename(backup.with_name(f"{backup.name}_{timestamp}"))
    shutil.copy2(path, backup)

    by_index = {change.index: change for change in changes}
    rewritten = []
    for index, pair in enumerate(pairs):
        change = by_index.get(index)
        if change is None:
            rewritten.append(_as_written(pair))
        elif change.new_sql is not None:
            rewritten.append({**_as_written(pair), "sql": change.new_sql})
    write_json_atomic(path, rewritten)

    log = path.parent / f"file_modifications_{timestamp}.log"
    write_text_atomic(log, _modification_log(path, backup, changes))
    return backup, log


def _as_written(pair: dict) -> dict:
    return {key: value for key, value in pair.items() if not key.startswith("_")}


def _modification_log(path: Path, backup: Path, changes: list[PairChange]) -> str:
    modified = [c for c in changes if c.new_sql is not None]
    removed = [c for c in changes if c.new_sql is None]
    lines = ["文件修改日志", f"时间: {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}",
             f"原始文件: {path.name}", f"备份文件: {backup.name}",
             f"修改: {len(modified)} 条, 删除: {len(removed)} 条", ""]
    if modified:
        lines.append(f"修改的SQL ({len(modified)}):")
        for change in modified:
            lines += [f"[第{change.index + 1}条] 问题: {change.question}", f"  原SQL: {_one_line(change.old_sql)}",
                      f"  新SQL: {_one_line(change.new_sql or '')}", f"  原错误: {change.reason}", ""]
    if removed:
        lines.append(f"删除的问答对 ({len(removed)}):")
        for change in removed:
            lines += [f"[第{change.index + 1}条] 问题: {change.question}", f"  SQL: {_one_line(change.old_sql)}",
                      f"  原因: {change.reason}", ""]
    return "\n".join(lines) + "\n"


def _text(value) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())
