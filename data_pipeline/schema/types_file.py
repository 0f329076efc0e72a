"""`schema_types.sql`: the extensions, types and sequences a task's tables need, written once.

Run on an empty database before the tables' `.ddl` files (which then run in any order), it makes
every type they name exist: `create extension if not exists` for extension types and functions,
then enums (with their labels), domains (base type, default, not null, checks), composite and
range types in an order where each follows what it is built on, then the sequences of `nextval()`
defaults that no column owns. A check calling a function of the database's own cannot run on an
empty database: it is kept as a comment line, like a type the file cannot create.
"""
from __future__ import annotations

import re

from data_pipeline.schema.identifiers import qualified, sql_ident
from data_pipeline.schema.render import sql_string
from data_pipeline.schema.user_types import SchemaTypes, SequenceDef, UserType

TYPES_FILE = "schema_types.sql"
_HEADER = ("-- 自定义类型与扩展: 本任务各表用到的扩展、枚举类型、域、复合类型与序列",
           "-- 用法: 在空数据库上先执行本文件，再以任意顺序执行各表的 .ddl 文件")


def render_types_file(types: SchemaTypes) -> str:
    lines = list(_HEADER)
    schemas = sorted({schema for _, schema in types.extensions} | {t.schema for t in types.types}
                     | {s.schema for s in types.sequences})
    lines += [f"create schema if not exists {sql_ident(schema)};" for schema in schemas if schema != "public"]
    for name, schema in types.extensions:
        target = "" if schema == "public" else f" schema {sql_ident(schema)}"
        lines.append(f"create extension if not exists {sql_ident(name)}{target};")
    for user_type in types.types:
        lines += _type_statements(user_type)
    lines += [_sequence_statement(sequence) for sequence in types.sequences]
    return "\n".join(lines) + "\n"


def _type_statements(user_type: UserType) -> list[str]:
    name = qualified(user_type.schema, user_type.name)
    if not user_type.creatable:
        return [f"-- 类型 {name} ({user_type.kind}) 无法在空数据库上创建，需从原库迁移"]
    if user_type.kind == "enum":
        statement = f"create type {name} as enum ({', '.join(sql_string(label) for label in user_type.labels)});"
    elif user_type.kind == "domain":
        statement = _domain_statement(name, user_type)
    elif user_type.kind == "composite":
        statement = f"create type {name} as ({', '.join(user_type.attributes)});"
    else:
        statement = f"create type {name} as range (subtype = {user_type.subtype});"
    lines = [statement]
    lines += [f"-- {name} 的约束 {sql_ident(check)} 调用了原库自定义的函数，未写入: {definition}"
              for check, definition, portable in user_type.checks if not portable]
    if user_type.comment:
        noun = "domain" if user_type.kind == "domain" else "type"
        lines.append(f"comment on {noun} {name} is {sql_string(_one_line(user_type.comment))};")
    return lines


# A domain's statement as `_domain_statement` writes it (or a user's upload of the file does).
_DOMAIN = re.compile(r"create\s+domain\s+([\w\".]+)\s+as\s+(.+?)(?:\s+(?:constraint|check|default|not\s+null|null|"
                     r"collate)\b|\s*;)", re.IGNORECASE)


def domain_base_types(types_sql: str) -> dict[str, str]:
    """Each domain of a schema_types.sql text with its base type, by its name (schema-qualified,
    and bare as a column on the search path writes it), unquoted and in lower case."""
    domains = {}
    for name, base in _DOMAIN.findall(types_sql):
        plain, base = name.replace('"', "").lower(), base.strip()
        domains[plain] = base
        domains.setdefault(plain.rsplit(".", 1)[-1], base)
    return domains


def _domain_statement(name: str, user_type: UserType) -> str:
    parts = [f"create domain {name} as {user_type.base_type}"]
    if user_type.default is not None:
        parts.append(f"default {user_type.default}")
    if user_type.not_null:
        parts.append("not null")
    parts += [f"constraint {sql_ident(check)} {definition}"
              for check, definition, portable in user_type.checks if portable]
    return " ".join(parts) + ";"


def _sequence_statement(sequence: SequenceDef) -> str:
    return (f"create sequence if not exists {qualified(sequence.schema, sequence.name)} as {sequence.data_type}"
            f" increment by {sequence.increment} minvalue {sequence.min_value} maxvalue {sequence.max_value}"
            f" start with {sequence.start} cache {sequence.cache}{' cycle' if sequence.cycle else ''};")


def _one_line(text: str) -> str:
    return " ".join(text.split())
