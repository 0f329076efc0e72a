"""`<stem>.ddl`, `<stem>_detail.md` and `filename_mapping.txt`, exactly as /work/notes/formats.md says.

The DDL is valid PostgreSQL: run on an empty database (with the table's schema present) it
recreates the table with the same columns, types, nullability, keys and comments. Foreign keys
are comment lines so that the files run in any order. Every comment is one line.
"""
from __future__ import annotations

import re

from data_pipeline.schema.identifiers import qualified, sql_ident
from data_pipeline.schema.model import Column, TableComments, TableInfo

SAMPLES_SHOWN = 5
SAMPLE_CHARS = 50
_SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}
_NEXTVAL = re.compile(r"nextval\('[^']*'::regclass\)")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_ddl(table: TableInfo, comments: TableComments) -> str:
    name = qualified(table.schema, table.name)
    elements: list[tuple[str, str | None]] = [
        (_column_definition(c), comments.column_comments.get(c.name)) for c in table.columns]
    elements += [(f"unique ({_ident_list(cols)})", None) for cols in table.unique_keys]
    if table.primary_key:
        elements.append((f"primary key ({_ident_list(table.primary_key)})", None))
    lines = [f"-- 中文名: {comments.chinese_name}", f"-- 描述: {comments.description}"]
    if table.schema != "public":
        # So the file alone recreates the table on an empty database.
        lines.append(f"create schema if not exists {sql_ident(table.schema)};")
    lines.append(f"create table {name} (")
    for index, (text, comment) in enumerate(elements):
        comma = "," if index < len(elements) - 1 else ""
        lines.append(f"  {text}{comma}" + (f" -- {comment}" if comment else ""))
    for fk in table.foreign_keys:
        lines.append(f"  -- foreign key ({_ident_list(fk.columns)}) references "
                     f"{qualified(fk.ref_schema, fk.ref_table)}({_ident_list(fk.ref_columns)})")
    lines.append(");")
    if comments.table_comment:
        lines.append(f"comment on table {name} is {sql_string(comments.table_comment)};")
    for column in table.columns:
        comment = comments.column_comments.get(column.name)
        if comment:
            lines.append(f"comment on column {name}.{sql_ident(column.name)} is {sql_string(comment)};")
    return "\n".join(lines) + "\n"


def _column_definition(column: Column) -> str:
    type_text, default = column.type, column.default
    if default and _NEXTVAL.fullmatch(default) and column.type in _SERIAL_TYPES:
        # The sequence does not exist on an empty database; serial creates it, as the original did.
        type_text, default = _SERIAL_TYPES[column.type], None
    parts = [sql_ident(column.name), type_text]
    if not column.nullable:
        parts.append("not null")
    if column.identity:
        parts.append(f"generated {column.identity} as identity")
    elif column.generated:
        parts.append(f"generated always as ({column.generated}) stored")
    elif default:
        parts.append(f"default {default}")
    return " ".join(parts)


def _ident_list(names) -> str:
    return ", ".join(sql_ident(n) for n in names)


def title_name(table: TableInfo) -> str:
    return sql_ident(table.name) if table.schema == "public" else qualified(table.schema, table.name)


def render_md(table: TableInfo, comments: TableComments) -> str:
    title = title_name(table)
    lines = [f"## {title}（{comments.chinese_name}）", f"{title} 表{comments.description}", "字段列表："]
    for column in table.columns:
        lines.append(_field_line(table, column, comments.column_comments.get(column.name)))
    notes = _notes(table)
    if notes:
        lines.append("字段补充说明：")
        lines += notes
    return "\n".join(lines) + "\n"


def _field_line(table: TableInfo, column: Column, comment: str | None) -> str:
    line = f"- {sql_ident(column.name)} ({column.type})"
    if comment:
        line += f" - {comment}"
    flags = [flag for flag, applies in (("主键", column.name in table.primary_key),
                                        ("外键", table.foreign_key_of(column.name) is not None),
                                        ("非空", not column.nullable)) if applies]
    if flags:
        line += f" [{', '.join(flags)}]"
    samples = [_shorten(s) for s in column.samples[:SAMPLES_SHOWN]]
    samples = [s for s in samples if s]
    if samples:
        line += f" [示例: {', '.join(samples)}]"
    return line


def _notes(table: TableInfo) -> list[str]:
    notes = []
    if len(table.primary_key) == 1:
        notes.append(f"- {sql_ident(table.primary_key[0])} 为主键")
    elif table.primary_key:
        notes.append(f"- 复合主键: ({_ident_list(table.primary_key)})")
    for fk in table.foreign_keys:
        for column, ref_column in zip(fk.columns, fk.ref_columns):
            notes.append(f"- {sql_ident(column)} 关联 {qualified(fk.ref_schema, fk.ref_table)}.{sql_ident(ref_column)}")
    for column in table.columns:
        if column.enum_values:
            values = "、".join(_shorten(v) for v in column.enum_values)
            notes.append(f"- {sql_ident(column.name)} 为枚举字段，包含取值：{values}")
    return notes


def _shorten(value: str) -> str:
    value = re.sub(r"\s+", " ", value).strip()
    return value if len(value) <= SAMPLE_CHARS else value[:SAMPLE_CHARS - 1] + "…"


def render_filename_mapping(entries: list[tuple[str, list[str]]]) -> str:
    """`entries`: (schema-qualified table name, its file names) per documented table."""
    lines = ["# 文件名映射报告", "# 格式: 原始表名 -> 实际文件名", ""]
    lines += [f"{table} -> {', '.join(files)}" for table, files in entries]
    return "\n".join(lines) + "\n"
