"""Backup of the two vector tables to CSV, and the verified truncate of `langchain_pg_embedding`.

Files: `<dir>/langchain_pg_collection_<YYYYMMDD_HHMMSS>.csv` and `langchain_pg_embedding_<ts>.csv`
(header row; `cmetadata` as JSON; vectors in pgvector's text form `[x,y,...]`), each streamed by
COPY into a temporary name, flushed to disk and renamed — so memory does not grow with the table
and a half-written file never carries a backup's name. `vector_backup_manifest_<ts>.json` records each
file's row count and SHA-256 (computed as it streams); restore takes only sets whose manifest
verifies (data_pipeline/vector/manifest.py). `vector_backup_log.txt` gets an entry per backup
(the reference implementation's layout).

With `truncate`, the whole thing is one transaction: `langchain_pg_embedding` is locked against
writers first, both tables are copied out, the rows written to the file (as streamed, checked
against the server's COPY count and the file size on disk) are compared with the table's row
count, and only then is the table truncated. A failed backup
(VECTOR_BACKUP_FAILED) or a failed truncate (VECTOR_TRUNCATE_FAILED) rolls back: no row removed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from data_pipeline.errors import DatabaseError, VectorStoreError
from data_pipeline.files.catalog import human_size
from data_pipeline.tasks.directory import write_text_atomic
from data_pipeline.vector.manifest import file_entry, write_manifest
from data_pipeline.vector.store import (COLLECTION_TABLE, EMBEDDING_TABLE, VECTOR_TABLES, VectorTables,
                                        connect_store)

BACKUP_LOG = "vector_backup_log.txt"
TIMESTAMP_FORMAT = "%Y%m%d_%H%M%S"
TABLE_COLUMNS = {
    COLLECTION_TABLE: ("uuid", "name", "cmetadata"),
    EMBEDDING_TABLE: ("id", "collection_id", "embedding", "document", "cmetadata"),
}

logger = logging.getLogger("VectorBackup")


def backup_file_name(table: str, timestamp: str) -> str:
    return f"{table}_{timestamp}.csv"


def backup_vector_tables(store_url: str, backup_dir: Path, *, task_id: str | None = None,
                         truncate: bool = False) -> dict:
    """Back up both tables into `backup_dir`; with `truncate`, then empty the embedding table.

    Returns {"backup": {...}, "truncate": {...} or None}.
    """
    started = time.monotonic()
    backup_dir = Path(backup_dir)
    moment = datetime.now()
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        timestamp = _free_timestamp(backup_dir, moment)
    except OSError as exc:
        raise _backup_failed(f"无法创建备份目录 {backup_dir.name}: {exc.strerror or exc}") from None

    written: list[Path] = []
    truncated_rows: int | None = None
    try:
        with connect_store(store_url) as conn:
            if not truncate:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
            tables = VectorTables(conn)
            exists = tables.tables_exist()
            if exists and truncate:
                # Writers wait from here until commit: nothing can arrive between the count check
                # and the truncate, so every row removed is in the verified backup.
                tables.execute(f"lock table {EMBEDDING_TABLE} in exclusive mode")
            files = []
            for table in VECTOR_TABLES:
                path = backup_dir / backup_file_name(table, timestamp)
                rows, sha256 = _copy_table(conn, table, path, exists)
                written.append(path)
                files.append({**file_entry(table, path, rows, sha256), "size": human_size(path.stat().st_size)})
            written.append(write_manifest(backup_dir, timestamp, files, task_id=task_id, created_at=moment))
            if truncate and exists:
                truncated_rows = _verified_truncate(tables, files[1]["rows"])
            elif truncate:
                truncated_rows = 0
    except VectorStoreError as exc:
        if exc.error_code == "VECTOR_BACKUP_FAILED":
            _remove(written)
        raise
    except (psycopg.Error, DatabaseError, OSError) as exc:
        _remove(written)
        raise _backup_failed(f"向量表备份失败: {_describe(exc)}") from None

    duration = time.monotonic() - started
    backup = {"backup_dir": str(backup_dir), "timestamp": timestamp,
              "backup_time": moment.isoformat(timespec="seconds"), "files": files, "manifest": written[-1].name,
              "log_file": BACKUP_LOG, "duration": round(duration, 3)}
    truncate_result = None if not truncate else {"table": EMBEDDING_TABLE, "rows_removed": truncated_rows}
    try:
        _append_log(backup_dir, moment, task_id, duration, files, truncated_rows if truncate else None)
    except OSError as exc:
        # The data is safe (backup verified, truncate committed); only the human-readable log is missing.
        logger.warning("备份日志写入失败: %s", exc)
        backup["log_error"] = str(exc)
    logger.info("向量表备份完成: %s", ", ".join(f"{f['table']} {f['rows']} 行" for f in files))
    if truncate:
        logger.info("已清空 %s: %d 行", EMBEDDING_TABLE, truncated_rows)
    return {"backup": backup, "truncate": truncate_result}


def _copy_table(conn: psycopg.Connection, table: str, path: Path, exists: bool) -> tuple[int, str]:
    """Stream one table into `path` (temp name, fsync, size check, rename); the rows it holds and
    the file's SHA-256.

    libpq hands COPY data over one row at a time, so the rows are counted as they are written;
    the server's own count (the COPY command tag) and the file's size on disk must agree.
    """
    columns = TABLE_COLUMNS[table]
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    digest = hashlib.sha256()
    try:
        written = records = 0
        with os.fdopen(descriptor, "wb") as stream:
            if exists:
                cursor = conn.cursor()
                with cursor.copy(f"copy {table} ({', '.join(columns)}) to stdout "
                                 "with (format csv, header true)") as copy:
                    for row in copy:
                        written += stream.write(row)
                        digest.update(row)
                        records += 1
                records -= 1  # the header
                if cursor.rowcount != records:
                    raise _backup_failed(f"备份校验失败: 服务器导出 {cursor.rowcount} 行，文件写入 {records} 行")
            else:
                header = (",".join(columns) + "\n").encode("utf-8")
                written += stream.write(header)
                digest.update(header)
            stream.flush()
            os.fsync(stream.fileno())
        if os.stat(temporary).st_size != written:
            raise _backup_failed(f"备份校验失败: {path.name} 在磁盘上的大小与写入的字节数不符")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return records, digest.hexdigest()


def _verified_truncate(tables: VectorTables, backed_up: int) -> int:
    count = tables.execute(f"select count(*) from {EMBEDDING_TABLE}").fetchone()[0]
    if count != backed_up:
        raise _backup_failed(f"备份校验失败: {EMBEDDING_TABLE} 有 {count} 行，备份文件中 {backed_up} 行；未清空")
    try:
        tables.execute(f"truncate table {EMBEDDING_TABLE}")
    except psycopg.Error as exc:
        raise VectorStoreError(f"清空 {EMBEDDING_TABLE} 失败: {_describe(exc)}",
                               error_code="VECTOR_TRUNCATE_FAILED") from None
    return count


def _free_timestamp(backup_dir: Path, moment: datetime) -> str:
    """The moment's timestamp, or the next free second (two backups in one second must not collide)."""
    while True:
        timestamp = moment.strftime(TIMESTAMP_FORMAT)
        if not any((backup_dir / backup_file_name(t, timestamp)).exists() for t in VECTOR_TABLES):
            return timestamp
        moment += timedelta(seconds=1)


def _append_log(backup_dir: Path, moment: datetime, task_id: str | None, duration: float,
                files: list[dict], truncated_rows: int | None) -> None:
    lines = ["=== Vector Table Backup Log ===",
             f"Backup Time: {moment:%Y-%m-%d %H:%M:%S}",
             f"Task ID: {task_id or 'standalone'}",
             f"Duration: {duration:.2f}s", "", "Tables Backup Status:"]
    lines += [f"✓ {f['table']}: {f['rows']} rows -> {f['file']} ({f['size']})" for f in files]
    lines += ["", "Truncate Status:"]
    if truncated_rows is None:
        lines.append(f"- {EMBEDDING_TABLE}: NOT TRUNCATED")
    else:
        lines.append(f"✓ {EMBEDDING_TABLE}: TRUNCATED ({truncated_rows} rows removed)")
    log_path = backup_dir / BACKUP_LOG
    previous = log_path.read_text(encoding="utf-8") if log_path.exists() else ""
    separator = "\n" if previous and not previous.endswith("\n\n") else ""
    write_text_atomic(log_path, previous + separator + "\n".join(lines) + "\n")


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return (getattr(exc, "details", None) or str(exc).strip().splitlines()[0] or type(exc).__name__)


def _backup_failed(details: str) -> VectorStoreError:
    return VectorStoreError(details, error_code="VECTOR_BACKUP_FAILED", message="向量表备份失败")
