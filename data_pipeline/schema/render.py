"""`<stem>.ddl`, `<stem>_detail.md` and `filename_mapping.txt`, in the formats docs/schema.md describes.

The DDL is valid PostgreSQL: run on an empty database after the task's types file
(types_file.py) it recreates the table with the same columns, types, nullability, defaults,
identity and generated columns, primary and unique keys, checks, unique indexes, partition key
and comments. Foreign keys are comment lines so that the files run in any order; so is anything
that calls a function of the database's own, which an empty database lacks. Every comment is one
line.
"""
from __future__ import annotations

import re

from data_pipeline.schema.identifiers import qualified, sql_ident
from data_pipeline.schema.introspection import SERIAL_TYPES
from data_pipeline.schema.model import Column, TableComments, TableInfo

SAMPLES_SHOWN = 5
SAMPLE_CHARS = 50
_NEXTVAL = re.compile(r"nextval\('[^']*'::regclass\)")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LEADING_WORD = re.compile(r"^[A-Z]+(?: [A-Z]+)*")


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_ddl(table: TableInfo, comments: TableComments) -> str:
    name = qualified(table.schema, table.name)
    elements: list[tuple[str, str | None]] = [
        (_column_definition(c), comments.column_comments.get(c.name)) for c in table.columns]
    elements += [(_unique_constraint(table, cols), None) for cols in table.unique_keys]
    elements += [(_keyword_lowered(check_constraint_sql(c.definition)), None)
                 for c in table.check_constraints if c.portable]
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
    for check in table.check_constraints:
        if not check.portable:
            lines.append(f"  -- {_keyword_lowered(check.definition)} (调用原库自定义函数，未写入)")
    partition = f" partition by {_keyword_lowered(table.partition_key)}" if table.partition_key else ""
    lines.append(f"){partition};")
    for index in table.unique_indexes:
        lines.append(f"{index.definition};" if index.portable else f"-- {index.definition}; (调用原库自定义函数，未写入)")
    if comments.table_comment:
        lines.append(f"comment on table {name} is {sql_string(comments.table_comment)};")
    for column in table.columns:
        comment = comments.column_comments.get(column.name)
        if comment:
            lines.append(f"comment on column {name}.{sql_ident(column.name)} is {sql_string(comment)};")
    return "\n".join(lines) + "\n"


def _unique_constraint(table: TableInfo, columns: tuple[str, ...]) -> str:
    """`unique (a, b)`, with what the database adds (NULLS NOT DISTINCT, DEFERRABLE) kept."""
    plain = f"unique ({_ident_list(columns)})"
    definition = table.unique_definitions.get(columns)
    if definition is None or _keyword_lowered(definition) == plain:
        return plain
    return _keyword_lowered(definition)


def check_constraint_sql(definition: str) -> str:
    """A check as CREATE TABLE takes it: NOT VALID exists only for ALTER TABLE (and an empty table
    satisfies any check)."""
    return definition[:-len(" NOT VALID")] if definition.endswith(" NOT VALID") else definition


def _keyword_lowered(text: str) -> str:
    """`CHECK ((a > 0))` -> `check ((a > 0))`, `RANGE (paid_on)` -> `range (paid_on)`."""
    return _LEADING_WORD.sub(lambda m: m.group(0).lower(), text, count=1)


def _column_definition(column: Column) -> str:
    type_text, default = column.type, column.default
    if (default and _NEXTVAL.fullmatch(default) and column.type in SERIAL_TYPES
            and column.default_sequence is None):
        # The column owns its sequence: serial creates one, as the original did.
        type_text, default = SERIAL_TYPES[column.type], None
    parts = [sql_ident(column.name), type_text]
    if column.collation:
        parts.append(f"collate {column.collation}")
    if not column.nullable:
        parts.append("not null")
    if column.identity:
        parts.append(f"generated {column.identity} as identity")
    elif column.generated:
        parts.append(f"generated always as ({column.generated}) {column.generated_kind or 'stored'}")
    elif default:
        parts.append(f"default {default}")
    return " ".join(parts)


def _ident_list(names) -> str:
    return ", ".join(sql_ident(n) for n in names)


def title_name(table: TableInfo) -> str:
    return sql_ident(table.name) if table.schema == "public" else qualified(table.schema, table.name)


def render_md(table: TableInfo, comments: TableComments) -> str:
    title = title_name(table)
    # `film 表：film table`, not `film 表film table`: English text is set apart from the title.
    separator = "" if _CJK.match(comments.description) else "："
    lines = [f"## {title}（{comments.chinese_name}）", f"{title} 表{separator}{comments.description}", "字段列表："]
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
    # `, ` separates the samples: inside one it becomes `,` so that each is read back whole.
    samples = [_shorten(s).replace(", ", ",") for s in column.samples[:SAMPLES_SHOWN]]
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
    notes += _constraint_notes(table)
    return notes


def _constraint_notes(table: TableInfo) -> list[str]:
    """Partition key, unique keys and indexes, checks, domains, generated and identity columns,
    and defaults the DDL could not carry: what a text-to-SQL model should know of the rules."""
    notes = []
    if table.partition_key:
        notes.append(f"- 分区表，分区键: {table.partition_key}")
    notes += [f"- 唯一约束: ({_ident_list(cols)})" for cols in table.unique_keys]
    notes += [f"- 唯一索引: {index.definition}" for index in table.unique_indexes]
    notes += [f"- 检查约束: {check.definition}" for check in table.check_constraints]
    for column in table.columns:
        name = sql_ident(column.name)
        notes += [f"- {name} 的取值约束（域类型 {column.type}）: {check}" for check in column.domain_checks]
        if column.generated:
            notes.append(f"- {name} 为生成列（{column.generated_kind or 'stored'}）: {column.generated}")
        elif column.identity:
            notes.append(f"- {name} 为自增标识列（generated {column.identity} as identity）")
        if column.omitted_default:
            notes.append(f"- {name} 的默认值 {column.omitted_default} 调用原库自定义函数，未写入DDL")
    return notes


def _shorten(value: str) -> str:
    value = re.sub(r"\s+", " ", value).strip()
    return value if len(value) <= SAMPLE_CHARS else value[:SAMPLE_CHARS - 1] + "…"


def render_filename_mapping(entries: list[tuple[str, list[str]]]) -> str:
    """`entries`: (schema-qualified table name, its file names) per documented table."""
    lines = ["# 文件名映射报告", "# 格式: 原始表名 -> 实际文件名", ""]
    lines += [f"{table} -> {', '.join(files)}" for table, files in entries]
    return "\n".join(lines) + "\n"
