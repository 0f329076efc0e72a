"""Backup manifests: what makes a backup set one the service wrote.

Every backup writes `vector_backup_manifest_<ts>.json` beside its two CSVs: for each file its
table, name, row count, size and SHA-256. A restore takes only a set whose manifest verifies —
the files hash to what it says and hold the rows it counts — so CSVs that merely carry a backup's
name (dropped into a task directory, edited after the backup) are never loaded into the store.
The manifest proves integrity, not authorship: what keeps others from writing one is that no
upload may create a file named like a backup or its manifest (`looks_like_backup`), nor write
below a task directory's top level.

A set the service did not write (the reference implementation's backups) is adopted by the
operator, on the server, after checking it: `python -m data_pipeline.vector.manifest DIR TIMESTAMP`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
import unicodedata
from datetime import datetime
from pathlib import Path

from data_pipeline.errors import ValidationError
from data_pipeline.tasks.directory import write_json_atomic
from data_pipeline.vector.store import VECTOR_TABLES

MANIFEST_FORMAT = 1
BACKUP_DIR_NAME = "vector_bak"
# Names an upload may not take: the backup CSVs, their manifest and log, the backup directory.
_BACKUP_LIKE_PREFIXES = ("langchain_pg_", "vector_backup", BACKUP_DIR_NAME)
_CHUNK_BYTES = 1 << 20


def manifest_name(timestamp: str) -> str:
    return f"vector_backup_manifest_{timestamp}.json"


def looks_like_backup(name: str) -> bool:
    """Whether a file name (in any Unicode compatibility form or case) is one a backup uses."""
    return unicodedata.normalize("NFKC", name).lower().startswith(_BACKUP_LIKE_PREFIXES)


def file_entry(table: str, path: Path, rows: int, sha256: str) -> dict:
    return {"table": table, "file": path.name, "rows": rows, "size_bytes": path.stat().st_size, "sha256": sha256}


def write_manifest(backup_dir: Path, timestamp: str, files: list[dict], *, task_id: str | None,
                   created_at: datetime) -> Path:
    path = backup_dir / manifest_name(timestamp)
    manifest = {"format": MANIFEST_FORMAT, "timestamp": timestamp, "created_at": created_at.isoformat(timespec="seconds"),
                "task_id": task_id, "files": [{key: entry[key] for key in ("table", "file", "rows", "size_bytes", "sha256")}
                                              for entry in files]}
    write_json_atomic(path, manifest)
    return path


def verified_row_counts(backup_dir: Path, timestamp: str, file_names: dict[str, str]) -> dict[str, int]:
    """The rows each file of the set holds, by table, once the manifest verifies (sizes and
    SHA-256 of the files as they are now); BACKUP_NOT_VERIFIED (400) otherwise."""
    path = backup_dir / manifest_name(timestamp)
    if not path.is_file():
        raise not_verified(f"备份集 {timestamp} 没有清单文件 {path.name}：只恢复本服务写下的备份")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        entries = {entry["table"]: entry for entry in manifest["files"]}
        expected = {table: (entries[table]["file"], int(entries[table]["rows"]), int(entries[table]["size_bytes"]),
                            str(entries[table]["sha256"])) for table in VECTOR_TABLES}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise not_verified(f"备份清单 {path.name} 无法读取或格式不对") from None
    rows = {}
    for table, (name, count, size, digest) in expected.items():
        if name != file_names[table]:
            raise not_verified(f"备份清单 {path.name} 中 {table} 的文件应为 {file_names[table]}")
        file_path = backup_dir / name
        if not file_path.is_file() or file_path.stat().st_size != size or file_sha256(file_path) != digest:
            raise not_verified(f"备份文件 {name} 与清单不符（大小或 SHA-256 不同）：文件在备份后被修改过")
        rows[table] = count
    return rows


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def not_verified(details: str) -> ValidationError:
    return ValidationError(details, error_code="BACKUP_NOT_VERIFIED", invalid_params=["timestamp"],
                           message="备份集未通过校验")


def adopt_backup_set(backup_dir: Path, timestamp: str) -> Path:
    """Write the manifest of a set the service did not write, from the files as they are."""
    from data_pipeline.vector.backup import backup_file_name

    csv.field_size_limit(sys.maxsize)
    files = []
    for table in VECTOR_TABLES:
        path = Path(backup_dir) / backup_file_name(table, timestamp)
        with open(path, newline="", encoding="utf-8") as stream:
            rows = max(sum(1 for _ in csv.reader(stream)) - 1, 0)  # the header
        files.append(file_entry(table, path, rows, file_sha256(path)))
    return write_manifest(Path(backup_dir), timestamp, files, task_id=None, created_at=datetime.now())


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m data_pipeline.vector.manifest BACKUP_DIR TIMESTAMP")
    print(adopt_backup_set(Path(sys.argv[1]), sys.argv[2]))
