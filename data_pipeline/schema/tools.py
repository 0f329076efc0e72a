"""The service functions behind the database tools endpoints (guide §6.1 and §6.2), Flask-free.

Both return the guide's `data` block and raise data_pipeline.errors exceptions: bad input is a
ValidationError, an unknown table NotFoundError(TABLE_NOT_FOUND), an unreachable database or a
failing query DatabaseError (DATABASE_CONNECTION_ERROR) with the password scrubbed.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import psycopg

from data_pipeline.db.connection import connection, database_name, scrub
from data_pipeline.errors import DatabaseError, NotFoundError, ValidationError
from data_pipeline.schema import introspection, sampling
from data_pipeline.schema.comments import document_comments
from data_pipeline.schema.model import TableComments, TableInfo
from data_pipeline.schema.render import render_ddl, render_md
from data_pipeline.schema.secret_columns import BUILTIN_MASK, ColumnMask
from data_pipeline.schema.types_file import render_types_file
from data_pipeline.schema.user_types import load_types
from data_pipeline.schema.names import is_system_schema, parse_table_name, quote_if_needed

logger = logging.getLogger("DatabaseTools")

OUTPUT_TYPES = ("ddl", "md", "both")


@contextmanager
def _business_db(db_url: str) -> Iterator[psycopg.Connection]:
    with connection(db_url) as conn:
        try:
            introspection.prepare_session(conn)
            yield conn
        except psycopg.Error as exc:
            message = scrub(str(exc).strip() or type(exc).__name__, db_url)
            raise DatabaseError(f"数据库查询失败: {message}") from None


def list_tables(db_url: str, schemas: list[str] | None = None, pattern: str | None = None,
                include_views: bool = False) -> dict:
    """Tables (and views if asked) outside the system schemas, as `schema.table` names."""
    schemas = [s for s in (schemas or []) if s] or None
    system = [s for s in schemas or [] if is_system_schema(s)]
    if system:
        raise ValidationError(f"不允许列出系统schema的表: {', '.join(system)[:200]}", invalid_params=["schema"],
                              error_code="SYSTEM_SCHEMA_NOT_ALLOWED")
    with _business_db(db_url) as conn:
        relations = introspection.list_relations(conn, schemas, pattern or None, include_views)
        searched = schemas or introspection.user_schemas(conn)
    tables = [f"{quote_if_needed(schema)}.{quote_if_needed(name)}" for schema, name in relations]
    return {"tables": tables, "total": len(tables), "schemas": searched, "table_name_pattern": pattern or None,
            "include_views": include_views, "db_connection_info": {"database": database_name(db_url)}}


def table_document(db_url: str, table: str, output_type: str = "both", business_context: str | None = None,
                   llm=None, mask: ColumnMask = BUILTIN_MASK) -> dict:
    """DDL and/or MD of one table, with its table_info and fields blocks (no values of the
    columns `mask` hides)."""
    if output_type not in OUTPUT_TYPES:
        raise ValidationError(f"参数 type 必须是 {'/'.join(OUTPUT_TYPES)} 之一", invalid_params=["type"])
    try:
        name = parse_table_name(table)
    except ValueError as reason:
        raise ValidationError(f"无效的表名 {table[:100]!r}: {reason}", invalid_params=["table"],
                              error_code="INVALID_TABLE_NAME") from None
    with _business_db(db_url) as conn:
        info = introspection.load_tables(conn, [name]).get((name.qualified_schema, name.name))
        if info is None:
            raise NotFoundError(f"表不存在: {name.qualified_schema}.{quote_if_needed(name.name)}",
                                error_code="TABLE_NOT_FOUND", invalid_params=["table"], message="表不存在")
        types = load_types(conn, [info])
        sampling.measure(conn, info, mask)
    comments, llm_error = document_comments(info, business_context, llm, logger)
    data: dict = {}
    if output_type in ("ddl", "both"):
        data["ddl"] = render_ddl(info, comments)
        if not types.empty:
            # What must run before the DDL on an empty database (the task's schema_types.sql part).
            data["types_ddl"] = render_types_file(types)
    if output_type in ("md", "both"):
        data["md"] = render_md(info, comments)
    data["table_info"] = table_info(info, comments)
    data["fields"] = fields(info, comments)
    data["generation_info"] = {"business_context": business_context, "output_type": output_type,
                               "has_llm_comments": comments.llm_used, "database": database_name(db_url)}
    if llm_error:
        data["generation_info"]["llm_error"] = llm_error
    return data


def table_info(info: TableInfo, comments: TableComments) -> dict:
    return {"table_name": info.name, "schema_name": info.schema, "full_name": info.full_name,
            "table_type": info.kind, "comment": comments.table_comment, "chinese_name": comments.chinese_name,
            "description": comments.description, "field_count": len(info.columns), "row_count": info.row_count,
            "row_count_exact": info.row_count_exact, "row_count_method": info.row_count_method}


def fields(info: TableInfo, comments: TableComments) -> list[dict]:
    result = []
    for column in info.columns:
        fk = info.foreign_key_of(column.name)
        result.append({
            "column_name": column.name, "data_type": column.data_type, "type": column.type,
            "max_length": column.max_length, "numeric_precision": column.numeric_precision,
            "numeric_scale": column.numeric_scale, "is_nullable": column.nullable,
            "is_primary_key": column.name in info.primary_key, "is_foreign_key": fk is not None,
            "references": (f"{fk.ref_schema}.{fk.ref_table}.{fk.ref_columns[fk.columns.index(column.name)]}"
                           if fk else None),
            "default": column.default, "comment": comments.column_comments.get(column.name),
            "original_comment": column.comment, "sample_values": column.samples,
            "enum_values": column.enum_values,
        })
    return result
