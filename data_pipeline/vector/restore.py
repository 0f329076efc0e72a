"""Vector backups: where they are, restoring one (in one transaction), and a standalone backup.

Backup sets live in `<training data dir>/vector_bak/` (global: `create_global_backup`, behind
POST /vector/backup) and in `<training data dir>/<task_id>/vector_bak/` (written by
`training_load`). A set is the pair `langchain_pg_collection_<ts>.csv` +
`langchain_pg_embedding_<ts>.csv` with its manifest; only a set whose manifest verifies (sizes,
SHA-256, and the rows staged from each file) is restored (BACKUP_NOT_VERIFIED otherwise; see
manifest.py). Paths come from requests, so every one is resolved and must stay inside the
training data dir (INVALID_FILE_PATH otherwise).

Restore streams each CSV into a staging table by COPY (memory does not grow with the file) and
merges it in one transaction, with both tables locked against writers. `cmetadata` may be JSON
or, in backups of the reference implementation, a Python dict literal (read with
`ast.literal_eval`); it is stored as JSON either way. Collections are merged by name (never
emptied): a backup's collection whose name already exists under another uuid has its rows moved
to the existing one. `truncate_before_restore` empties `langchain_pg_embedding` first.
"""
from __future__ import annotations

import ast
import csv
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import psycopg

from data_pipeline.errors import DatabaseError, NotFoundError, ValidationError, VectorStoreError
from data_pipeline.files.catalog import human_size
from data_pipeline.tasks.directory import is_valid_task_id
from data_pipeline.vector.backup import (BACKUP_LOG, TABLE_COLUMNS, TIMESTAMP_FORMAT, backup_file_name,
                                         backup_vector_tables)
from data_pipeline.vector.manifest import manifest_name, verified_row_counts
from data_pipeline.vector.store import (COLLECTION_TABLE, EMBEDDING_TABLE, VECTOR_TABLES, VectorTables,
                                        connect_store)

GLOBAL_BACKUP_DIR = "vector_bak"
_BACKUP_FILE = re.compile(r"^(langchain_pg_collection|langchain_pg_embedding)_(\d{8}_\d{6})\.csv$")
_TIMESTAMP = re.compile(r"^\d{8}_\d{6}$")
_CHUNK_BYTES = 1 << 20


def create_global_backup(store_url: str, training_data_dir: Path) -> dict:
    """A backup of both tables outside any task, into `<training data dir>/vector_bak/`."""
    result = backup_vector_tables(store_url, Path(training_data_dir) / GLOBAL_BACKUP_DIR)
    result["backup"]["backup_dir"] = GLOBAL_BACKUP_DIR
    return result["backup"]


def list_backups(training_data_dir: Path, *, task_id: str | None = None, global_only: bool = False) -> dict:
    """Every complete backup set under the training data dir, newest first, by location
    (only the global one with `global_only`, only one task's with `task_id`)."""
    root = Path(training_data_dir).resolve()
    locations = []
    global_dir = root / GLOBAL_BACKUP_DIR
    if task_id is None and _inside(root, global_dir) and global_dir.is_dir():
        backups = _backup_sets(global_dir)
        if backups:
            locations.append({"type": "global", "relative_path": GLOBAL_BACKUP_DIR, "backups": backups})
    task_dirs = [] if global_only or not root.is_dir() else sorted(
        (p for p in root.iterdir() if is_valid_task_id(p.name) and p.name == (task_id or p.name) and p.is_dir()),
        key=lambda p: p.name, reverse=True)
    for task_dir in task_dirs:
        backup_dir = task_dir / GLOBAL_BACKUP_DIR
        if not (_inside(root, backup_dir) and backup_dir.is_dir()):
            continue
        backups = _backup_sets(backup_dir)
        if backups:
            locations.append({"type": "task", "relative_path": f"{task_dir.name}/{GLOBAL_BACKUP_DIR}",
                              "task_id": task_dir.name, "backups": backups})
    sets = [len(location["backups"]) for location in locations]
    return {
        "backup_locations": locations,
        "summary": {
            "total_locations": len(locations),
            "total_backup_sets": sum(sets),
            "global_backup_sets": sum(n for n, l in zip(sets, locations) if l["type"] == "global"),
            "task_backup_sets": sum(n for n, l in zip(sets, locations) if l["type"] == "task"),
            "scan_time": datetime.now().isoformat(timespec="seconds"),
        },
    }


def _backup_sets(backup_dir: Path) -> list[dict]:
    found: dict[str, dict[str, Path]] = {}
    for path in backup_dir.iterdir():
        match = _BACKUP_FILE.match(path.name)
        if match and path.is_file():
            found.setdefault(match.group(2), {})[match.group(1)] = path
    log_path = backup_dir / BACKUP_LOG
    log_text = log_path.read_text(encoding="utf-8", errors="replace") if log_path.is_file() else ""
    backups = []
    for timestamp in sorted(found, reverse=True):
        files = found[timestamp]
        if set(files) != set(VECTOR_TABLES):
            continue
        collection, embedding = files[COLLECTION_TABLE], files[EMBEDDING_TABLE]
        try:
            backup_date = datetime.strptime(timestamp, TIMESTAMP_FORMAT).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
        backups.append({
            "timestamp": timestamp,
            "collection_file": collection.name,
            "embedding_file": embedding.name,
            "collection_size": human_size(collection.stat().st_size),
            "embedding_size": human_size(embedding.stat().st_size),
            "collection_size_bytes": collection.stat().st_size,
            "embedding_size_bytes": embedding.stat().st_size,
            "backup_date": backup_date,
            "has_log": collection.name in log_text,
            "has_manifest": (backup_dir / manifest_name(timestamp)).is_file(),
        })
    return backups


def resolve_backup_dir(training_data_dir: Path, backup_path: str) -> Path:
    """`backup_path` (relative to the training data dir) as a directory inside it."""
    if not isinstance(backup_path, str) or not backup_path.strip() or "\x00" in backup_path:
        raise ValidationError("参数 backup_path 必须是非空字符串", invalid_params=["backup_path"])
    root = Path(training_data_dir).resolve()
    if Path(backup_path).is_absolute():
        raise _invalid_path(backup_path)
    candidate = (root / backup_path).resolve()
    if not _inside(root, candidate):
        raise _invalid_path(backup_path)
    if not candidate.is_dir():
        raise NotFoundError(f"备份目录不存在: {backup_path}", error_code="FILE_NOT_FOUND",
                            invalid_params=["backup_path"])
    return candidate


def restore_backup(store_url: str, training_data_dir: Path, *, backup_path: str, timestamp: str,
                   tables: list[str] | None = None, truncate_before_restore: bool = False) -> dict:
    """Restore one backup set into the store, in one transaction."""
    if not isinstance(timestamp, str) or not _TIMESTAMP.match(timestamp):
        raise ValidationError("参数 timestamp 格式应为 YYYYMMDD_HHMMSS", invalid_params=["timestamp"])
    tables = list(VECTOR_TABLES) if tables is None else tables
    if (not isinstance(tables, list) or not tables
            or any(not isinstance(t, str) or t not in VECTOR_TABLES for t in tables)):
        raise ValidationError(f"参数 tables 只能包含 {', '.join(VECTOR_TABLES)}", invalid_params=["tables"])
    backup_dir = resolve_backup_dir(training_data_dir, backup_path)
    files = {table: backup_dir / backup_file_name(table, timestamp) for table in VECTOR_TABLES}
    for table in tables:
        if not files[table].is_file():
            raise NotFoundError(f"备份文件不存在: {backup_path}/{files[table].name}",
                                error_code="FILE_NOT_FOUND", invalid_params=["timestamp"])
    rows = verified_row_counts(backup_dir, timestamp, {table: path.name for table, path in files.items()})

    started = time.monotonic()
    try:
        with connect_store(store_url) as conn:
            result = _restore(VectorTables(conn), files, rows, tables, truncate_before_restore)
    except (psycopg.Error, DatabaseError, OSError) as exc:
        raise VectorStoreError(f"向量表恢复失败，已回滚: {_describe(exc)}",
                               error_code="VECTOR_RESTORE_FAILED") from None
    return {"restore_performed": True, "backup_path": backup_path, "timestamp": timestamp,
            "tables": tables, "truncate_before_restore": truncate_before_restore, **result,
            "duration": round(time.monotonic() - started, 3)}


def _restore(tables: VectorTables, files: dict[str, Path], rows: dict[str, int], restore: list[str],
             truncate: bool) -> dict:
    tables.require_pgvector()
    tables.create_tables()
    tables.register_vector_type()
    tables.execute(f"lock table {COLLECTION_TABLE}, {EMBEDDING_TABLE} in share row exclusive mode")
    truncated = None
    if truncate and EMBEDDING_TABLE in restore:
        truncated = tables.execute(f"select count(*) from {EMBEDDING_TABLE}").fetchone()[0]
        tables.execute(f"truncate table {EMBEDDING_TABLE}")

    restored: dict[str, int] = {}
    tables.execute("create temp table dp_restore_collection (uuid uuid, name varchar, cmetadata json) "
                   "on commit drop")
    _stage(tables, files[COLLECTION_TABLE], "dp_restore_collection", COLLECTION_TABLE, rows[COLLECTION_TABLE])
    if COLLECTION_TABLE in restore:
        restored[COLLECTION_TABLE] = _merge_collections(tables)
    # Where each backed-up collection lives now (by name; its own uuid if the name is new).
    tables.execute(f"""create temp table dp_restore_map on commit drop as
                       select r.uuid as backup_uuid, c.uuid as current_uuid
                         from dp_restore_collection r join {COLLECTION_TABLE} c on c.name = r.name""")
    if EMBEDDING_TABLE in restore:
        tables.execute(f"create temp table dp_restore_embedding (like {EMBEDDING_TABLE}) on commit drop")
        _stage(tables, files[EMBEDDING_TABLE], "dp_restore_embedding", EMBEDDING_TABLE, rows[EMBEDDING_TABLE])
        restored[EMBEDDING_TABLE] = _merge_embeddings(tables)
        _check_dimensions(tables)
    return {"restored_rows": restored, "truncated_rows": truncated}


def _stage(tables: VectorTables, path: Path, staging: str, table: str, expected_rows: int) -> None:
    """Stream one backup CSV into a staging table; it must hold the rows its manifest counts.

    Fast path: the server parses the file itself (our backups: JSON metadata). If it refuses the
    file (Python-literal metadata, an older server without HEADER MATCH), the attempt is rolled
    back to a savepoint and the file is read here row by row, metadata converted to JSON.
    """
    columns = TABLE_COLUMNS[table]
    tables.execute("savepoint dp_restore_stage")
    try:
        _stage_as_is(tables, path, staging, columns)
    except psycopg.Error:
        tables.execute("rollback to savepoint dp_restore_stage")
        _stage_converted(tables, path, staging, columns)
    tables.execute("release savepoint dp_restore_stage")
    staged = tables.execute(f"select count(*) from {staging}").fetchone()[0]
    if staged != expected_rows:
        raise VectorStoreError(f"备份文件 {path.name} 有 {staged} 行，清单记录 {expected_rows} 行；未恢复",
                               error_code="VECTOR_RESTORE_FAILED")


def _stage_as_is(tables: VectorTables, path: Path, staging: str, columns: tuple[str, ...]) -> None:
    tables.statements += 1
    with open(path, "rb") as stream, tables.conn.cursor().copy(
            f"copy {staging} ({', '.join(columns)}) from stdin with (format csv, header match)") as copy:
        while chunk := stream.read(_CHUNK_BYTES):
            copy.write(chunk)


def _stage_converted(tables: VectorTables, path: Path, staging: str, columns: tuple[str, ...]) -> None:
    csv.field_size_limit(sys.maxsize)
    tables.statements += 1
    with open(path, newline="", encoding="utf-8") as stream, \
            tables.conn.cursor().copy(f"copy {staging} ({', '.join(columns)}) from stdin") as copy:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != list(columns):
            raise VectorStoreError(f"备份文件 {path.name} 的表头应为 {','.join(columns)}，实际为 {header}",
                                   error_code="VECTOR_RESTORE_FAILED")
        metadata_index = columns.index("cmetadata")
        for line_number, record in enumerate(reader, start=2):
            if len(record) != len(columns):
                raise VectorStoreError(f"备份文件 {path.name} 第 {line_number} 行有 {len(record)} 列，"
                                       f"应为 {len(columns)} 列", error_code="VECTOR_RESTORE_FAILED")
            values: list = [value if value != "" else None for value in record]
            values[metadata_index] = metadata_json(record[metadata_index], path.name, line_number)
            copy.write_row(values)


def metadata_json(text: str, file_name: str = "", line_number: int = 0) -> str | None:
    """The metadata as JSON text: JSON as is, a Python literal converted, empty as NULL."""
    if not text.strip():
        return None
    try:
        json.loads(text)
        return text
    except (ValueError, RecursionError):
        pass
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise VectorStoreError(f"备份文件 {file_name} 第 {line_number} 行的 cmetadata 既不是JSON也不是Python字面量",
                               error_code="VECTOR_RESTORE_FAILED") from None
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        raise VectorStoreError(f"备份文件 {file_name} 第 {line_number} 行的 cmetadata 无法转换为JSON",
                               error_code="VECTOR_RESTORE_FAILED") from None


def _merge_collections(tables: VectorTables) -> int:
    taken = tables.execute(f"""select r.name from dp_restore_collection r join {COLLECTION_TABLE} c
                                  on c.uuid = r.uuid and c.name <> r.name limit 1""").fetchone()
    if taken:
        raise VectorStoreError(f"备份中的集合 {taken[0]} 的uuid已被另一个集合占用，无法恢复",
                               error_code="VECTOR_RESTORE_FAILED")
    inserted = tables.execute(f"""insert into {COLLECTION_TABLE} (uuid, name, cmetadata)
                                  select uuid, name, cmetadata from dp_restore_collection
                                  on conflict (name) do update set cmetadata = excluded.cmetadata""")
    return inserted.rowcount


def _merge_embeddings(tables: VectorTables) -> int:
    orphan = tables.execute(f"""select r.id from dp_restore_embedding r
                                 left join dp_restore_map m on m.backup_uuid = r.collection_id
                                 left join {COLLECTION_TABLE} c on c.uuid = r.collection_id
                                where r.collection_id is not null and m.backup_uuid is null and c.uuid is null
                                limit 1""").fetchone()
    if orphan:
        raise VectorStoreError(f"向量行 {orphan[0]} 所属的集合既不在数据库中也不在备份中；"
                               "请同时恢复 langchain_pg_collection", error_code="VECTOR_RESTORE_FAILED")
    cursor = tables.execute(
        f"""insert into {EMBEDDING_TABLE} (id, collection_id, embedding, document, cmetadata)
            select r.id, coalesce(m.current_uuid, r.collection_id), r.embedding, r.document, r.cmetadata
              from dp_restore_embedding r left join dp_restore_map m on m.backup_uuid = r.collection_id
            on conflict (id) do update set collection_id = excluded.collection_id,
                embedding = excluded.embedding, document = excluded.document,
                cmetadata = excluded.cmetadata""")
    return cursor.rowcount


def _check_dimensions(tables: VectorTables) -> None:
    mixed = tables.execute(f"""select c.name, array_agg(distinct vector_dims(e.embedding))
                                 from {EMBEDDING_TABLE} e join {COLLECTION_TABLE} c on c.uuid = e.collection_id
                                group by c.name having count(distinct vector_dims(e.embedding)) > 1""").fetchall()
    if mixed:
        described = "，".join(f"{name}: {sorted(dims)}" for name, dims in mixed)
        raise VectorStoreError(
            f"恢复后集合中会有不同维度的向量（{described}），相似度检索将失败；已回滚。"
            "可使用 truncate_before_restore 先清空向量表。", error_code="VECTOR_RESTORE_FAILED")


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _invalid_path(backup_path: str) -> ValidationError:
    return ValidationError(f"备份路径必须位于训练数据目录内: {backup_path}", error_code="INVALID_FILE_PATH",
                           invalid_params=["backup_path"])


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return getattr(exc, "details", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
