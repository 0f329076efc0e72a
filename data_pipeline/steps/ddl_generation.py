"""Step 1, ddl_generation: `<stem>.ddl` and `<stem>_detail.md` for every listed table, and the
types file `schema_types.sql` when the tables need types, extensions or sequences of their own.

The catalogs are read once for all tables; then the tables are documented concurrently (up to
LLM_CONCURRENCY with an LLM, a small pool offline) on at most DB_CONNECTIONS pooled connections. A bad
name, an unknown table or a table that fails is reported in `errors` and the others go on; the
step fails when no table could be documented, or when the database itself went away (refused,
shut down, connection broken) before every table was read. An LLM failure is not a table
failure: the table is documented from the database's comments and the failure is reported.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from typing import NamedTuple

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed

from data_pipeline.db.connection import CONNECT_TIMEOUT_SECONDS, connection, connection_params, scrub
from data_pipeline.errors import DatabaseError, PipelineError, StepFailed
from data_pipeline.schema import introspection, sampling
from data_pipeline.schema.comments import document_comments
from data_pipeline.schema.model import TableInfo
from data_pipeline.schema.render import render_ddl, render_filename_mapping, render_md
from data_pipeline.schema.types_file import TYPES_FILE, render_types_file
from data_pipeline.schema.user_types import SchemaTypes, load_types
from data_pipeline.steps.context import StepContext
from data_pipeline.schema.names import TableName, parse_table_name
from data_pipeline.tasks.directory import write_text_atomic

logger = logging.getLogger("DDLGenerator")

DB_CONNECTIONS = 4
OFFLINE_WORKERS = 4
MAPPING_FILE = "filename_mapping.txt"
# How long a table waits for one of the pooled connections (others' sampling, or a new connection).
POOL_WAIT_SECONDS = 300.0


def _open_pool(ctx: StepContext, size: int) -> ConnectionPool:
    """At most `size` read-only connections to the business database, opened on demand, reused.

    A broken connection is dropped when it comes back; a lost database closes the pool (see
    _document_all), which ends every wait for a connection at once.
    """
    timeout_ms = ctx.settings.sql_statement_timeout_ms
    pool = ConnectionPool(
        "", min_size=0, max_size=size, open=False, name="ddl_generation", timeout=POOL_WAIT_SECONDS,
        reconnect_timeout=2 * CONNECT_TIMEOUT_SECONDS,
        configure=lambda conn: introspection.prepare_session(conn, timeout_ms),
        kwargs={"autocommit": True, **connection_params(ctx.db_url, statement_timeout_ms=timeout_ms)})
    pool.open()
    return pool


class _Documented(NamedTuple):
    table: str               # schema-qualified name, as in the mapping file
    files: list[str]
    llm_comments: bool


def run(ctx: StepContext) -> dict:
    started = time.monotonic()
    names, errors = _parse_names(ctx.tables)
    total = len(names) + len(errors)
    if total == 0:
        raise StepFailed("表清单为空，没有需要生成DDL的表")
    llm = ctx.llm
    usage_before = llm.usage_summary() if llm else None
    workers = ctx.settings.llm_concurrency if llm else OFFLINE_WORKERS
    logger.info("开始生成DDL/MD: %d 个表, %s, 并发 %d", total,
                "使用LLM生成注释" if llm else "离线模式（数据库注释+命名词典）", workers)
    catalog, types = _load_catalog(ctx, list(names.values()))
    found = {key: catalog[key] for key in names if key in catalog}   # in the list's order
    if found and not types.empty:
        write_text_atomic(ctx.task_dir / TYPES_FILE, render_types_file(types))
    for key, name in names.items():
        if key not in found:
            errors.append({"table": name.full_name, "error": f"表不存在: {name.qualified_schema}.{name.name}"})
    ctx.report_progress(total - len(found), total, "tables")
    lost: list[dict] = []
    pool = _open_pool(ctx, min(DB_CONNECTIONS, workers))
    try:
        with llm.step_budget(ctx.settings.llm_step_timeout) if llm else nullcontext():
            documented = _document_all(ctx, pool, found, workers, errors, lost, total)
    finally:
        pool.close()
    if lost:
        # The database went away: the tables still missing say nothing about the tables themselves,
        # and a "completed" step would hand the next step an incomplete schema.
        raise StepFailed(f"业务数据库连接中断，{len(lost)} 个表未能生成（已生成 {len(documented)} 个，"
                         f"数据库恢复后请重新执行）: {lost[0]['table']}: {lost[0]['error']}",
                         error_code="DATABASE_CONNECTION_ERROR")

    mapping = [(documented[key].table, documented[key].files) for key in names if key in documented]
    if mapping:
        write_text_atomic(ctx.task_dir / MAPPING_FILE, render_filename_mapping(mapping))
    failed = total - len(documented)
    result = {
        "total_tables": total,
        "processed_successfully": len(documented),
        "failed": failed,
        "files_generated": 2 * len(documented) + (1 if mapping else 0) + (1 if found and not types.empty else 0),
        "types_file": TYPES_FILE if found and not types.empty else None,
        "user_types": len(types.types),
        "extensions": [name for name, _ in types.extensions],
        "duration": round(time.monotonic() - started, 3),
        "errors": errors,
        "llm_comment_tables": sum(1 for d in documented.values() if d.llm_comments),
    }
    if llm is not None:
        after = llm.usage_summary()
        result["llm_usage"] = {key: after[key] - usage_before[key]
                               for key in ("calls", "prompt_tokens", "completion_tokens")}
        # Tables whose comments fell back to the database's and the naming dictionary.
        result["llm_fallbacks"] = sum(1 for d in documented.values() if not d.llm_comments)
    logger.info("DDL/MD生成完成: 成功 %d, 失败 %d, 用时 %.1fs%s", len(documented), failed, result["duration"],
                f", LLM用量 {result['llm_usage']}" if llm is not None else "")
    if not documented:
        shown = "; ".join(f"{e['table']}: {e['error']}" for e in errors[:10])
        raise StepFailed(f"所有表都生成失败（{failed}个）: {shown}")
    return result


def _parse_names(entries) -> tuple[dict[tuple[str, str], TableName], list[dict]]:
    """Names by (schema, table), duplicates dropped; entries that are not names become errors."""
    names: dict[tuple[str, str], TableName] = {}
    errors: list[dict] = []
    for entry in entries:
        try:
            name = entry if isinstance(entry, TableName) else parse_table_name(entry)
        except ValueError as reason:
            errors.append({"table": entry, "error": f"无效的表名: {reason}"})
            continue
        names.setdefault((name.qualified_schema, name.name), name)
    return names, errors


def _load_catalog(ctx: StepContext,
                  names: list[TableName]) -> tuple[dict[tuple[str, str], TableInfo], SchemaTypes]:
    """The tables' catalog facts and the types they need (which also tells sampling the enums), on
    a connection of its own: when the database cannot be reached, the step fails at once with one
    clear error."""
    try:
        with connection(ctx.db_url) as conn:
            introspection.prepare_session(conn, ctx.settings.sql_statement_timeout_ms)
            tables = introspection.load_tables(conn, names)
            return tables, load_types(conn, list(tables.values()))
    except DatabaseError as exc:
        raise StepFailed(exc.details, error_code=exc.error_code) from None
    except psycopg.Error as exc:
        raise StepFailed(f"读取数据库目录失败: {scrub(str(exc), ctx.db_url)}") from None


def _document_all(ctx: StepContext, pool: ConnectionPool, found: dict[tuple[str, str], TableInfo],
                  workers: int, errors: list[dict], lost: list[dict],
                  total: int) -> dict[tuple[str, str], _Documented]:
    """Document the tables; each failure goes to `errors`, and also to `lost` when the database
    itself could not be reached."""
    stems = _unique_stems(list(found.values()))
    documented: dict[tuple[str, str], _Documented] = {}
    done = total - len(found)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ddl") as executor:
        futures = {executor.submit(_document_table, ctx, pool, table, stems[key]): key
                   for key, table in found.items()}
        for future in as_completed(futures):
            key = futures[future]
            table = found[key]
            try:
                files, llm_error = future.result()
            except Exception as exc:  # one table's failure is reported, the others go on
                expected = isinstance(exc, (PipelineError, psycopg.Error))
                if isinstance(exc, PoolClosed):
                    message = "业务数据库连接已中断，未读取"
                elif isinstance(exc, PipelineError):
                    message = exc.details
                else:
                    message = scrub(f"{type(exc).__name__}: {str(exc).strip()}", ctx.db_url)
                logger.error("表 %s 生成失败: %s", table.full_name, message, exc_info=not expected)
                errors.append({"table": table.full_name, "error": message})
                if _connection_lost(exc):
                    lost.append(errors[-1])
                    # The tables still waiting for a connection fail now, not each after a timeout.
                    pool.close()
            else:
                documented[key] = _Documented(table.full_name, files, ctx.llm is not None and llm_error is None)
                if llm_error:
                    errors.append({"table": table.full_name,
                                   "error": f"LLM注释生成失败（已改用数据库注释与命名词典）: {llm_error}"})
            done += 1
            ctx.report_progress(done, total, "tables")
    return documented


def _document_table(ctx: StepContext, pool: ConnectionPool, table: TableInfo,
                    stem: str) -> tuple[list[str], str | None]:
    """Sample, comment, render and write one table: its file names and the LLM's failure, if any."""
    with pool.connection() as conn:
        sampling.measure(conn, table, ctx.column_mask)
    comments, llm_error = document_comments(table, ctx.business_context, ctx.llm, logger)
    files = [f"{stem}.ddl", f"{stem}_detail.md"]
    write_text_atomic(ctx.task_dir / files[0], render_ddl(table, comments))
    write_text_atomic(ctx.task_dir / files[1], render_md(table, comments))
    logger.info("表 %s 已生成: %d 列, %s 行%s", table.full_name, len(table.columns),
                table.row_count if table.row_count is not None else "?",
                "" if table.row_count_exact else "（估算）")
    return files, llm_error


def _connection_lost(exc: Exception) -> bool:
    """The database itself is unreachable (refused, shut down, connection broken), not this table."""
    if isinstance(exc, DatabaseError) or isinstance(exc, psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        return exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))
    return False


def _unique_stems(tables: list[TableInfo]) -> dict[tuple[str, str], str]:
    """File stems per table; two names that clean up to the same stem get `_2`, `_3`... suffixes."""
    stems, used = {}, set()
    for table in tables:
        stem, n = table.file_stem, 1
        while stem.lower() in used:
            n += 1
            stem = f"{table.file_stem}_{n}"
        used.add(stem.lower())
        stems[(table.schema, table.name)] = stem
    return stems
