"""The check every SQL passes before it may reach a database: one statement, a query, nothing
that writes or locks anywhere in its tree, and only what an allowlist admits. Parsed with
sqlglot's PostgreSQL dialect.

Allowlists, because EXPLAIN is not harmless: planning evaluates stable and immutable functions
over constants, so a function called in a WHERE clause runs — and its error text would land in
the validation report. So:
- functions: only those of `allowed_functions` (ordinary aggregate, window, conditional, math,
  string, date/time, JSON and array functions), unqualified or qualified with pg_catalog;
- relations: only the business database's own — never a system schema (pg_catalog,
  information_schema, pg_toast, any `pg_*`), never an unqualified `pg_*` name (those resolve to
  pg_catalog through the search path), never another database. A CTE name is not a relation.
The database check that follows (explain_validator) runs EXPLAIN inside a READ ONLY transaction
with a statement timeout and a search path without system schemas.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from data_pipeline.validation.allowed_functions import ALLOWED_FUNCTIONS, ALLOWED_NODES, FUNCTION_SCHEMA
from data_pipeline.validation.outcome import ErrorClass

_POSTGRES = Dialect.get_or_raise("postgres")
_QUERY_ROOTS = (exp.Query, exp.Values)
_WRITING_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
                  exp.Command, exp.Copy, exp.TruncateTable, exp.Into, exp.Lock)
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
_NAMED_CALLS = (exp.Anonymous, exp.AnonymousAggFunc)


@dataclass(frozen=True)
class StatementCheck:
    ok: bool
    error_class: str | None = None
    error: str | None = None
    tree: exp.Expression | None = None


def check_statement(sql: str) -> StatementCheck:
    """Whether `sql` is a single read-only query; the reason (class and message) if it is not."""
    if not isinstance(sql, str) or not sql.strip():
        return StatementCheck(False, ErrorClass.EMPTY, "SQL为空")
    if "\x00" in sql:
        # The server would read only up to the NUL: what it runs is not what was checked.
        return StatementCheck(False, ErrorClass.SYNTAX, "SQL包含空字符（NUL）")
    try:
        statements = _parse(sql)
    except SqlglotError as exc:
        return StatementCheck(False, ErrorClass.SYNTAX, f"SQL语法错误: {_first_line(exc)}")
    if not statements:
        return StatementCheck(False, ErrorClass.EMPTY, "SQL为空")
    if len(statements) > 1:
        return StatementCheck(False, ErrorClass.MULTIPLE_STATEMENTS,
                              f"包含{len(statements)}条语句，只允许一条查询语句")
    tree = statements[0]
    if not isinstance(tree, _QUERY_ROOTS):
        return StatementCheck(False, ErrorClass.NOT_A_QUERY,
                              f"不是查询语句（{_statement_kind(tree)}），只允许 SELECT/WITH 查询")
    for node in tree.walk():
        if isinstance(node, _WRITING_NODES):
            return StatementCheck(False, ErrorClass.WRITES_OR_LOCKS, f"查询中包含写入或加锁操作（{_node_kind(node)}）")
        refused = _refused_function(node)
        if refused:
            return StatementCheck(False, ErrorClass.FUNCTION_NOT_ALLOWED,
                                  f"查询调用了不允许的函数 {refused}()（只允许常规的聚合、窗口、条件、数学、字符串、"
                                  "日期时间与JSON函数）")
    for table in relations(tree):
        refused = _refused_relation(table)
        if refused:
            return StatementCheck(False, ErrorClass.RELATION_NOT_ALLOWED, refused)
    return StatementCheck(True, tree=tree)


def referenced_tables(sql: str) -> set[str]:
    """Lower-cased names of the tables a query reads (CTE names excluded); empty if unparsable."""
    try:
        statements = _parse(sql)
    except SqlglotError:
        return set()
    return {table.name.lower() for tree in statements for table in relations(tree) if table.name}


def relations(node: exp.Expression, ctes: frozenset[str] = frozenset()) -> Iterator[exp.Table]:
    """The Table nodes under `node` that name a relation of the database, not a CTE in scope.

    As PostgreSQL scopes them: a WITH's names are visible in its query and, in a RECURSIVE WITH,
    in every CTE body; without RECURSIVE a CTE body sees only the CTEs before it.
    """
    if isinstance(node, exp.Table):
        if node.name and not (_is_unqualified(node) and _pg_name(node.this) in ctes):
            yield node
    with_ = node.args.get("with_")
    if isinstance(with_, exp.With):
        names = [_pg_name(cte.args["alias"].this) for cte in with_.expressions]
        for index, cte in enumerate(with_.expressions):
            visible = names if with_.args.get("recursive") else names[:index]
            yield from relations(cte.this, ctes | frozenset(visible))
        ctes = ctes | frozenset(names)
    for child in node.iter_expressions():
        if child is not with_:
            yield from relations(child, ctes)


def _refused_function(node: exp.Expression) -> str | None:
    """The name of a function call the allowlist does not admit, else None."""
    if isinstance(node, _NAMED_CALLS):
        name = _pg_name(node.this)
        parent = node.parent
        if isinstance(parent, exp.Dot) and parent.expression is node:
            qualifier = parent.this
            if not (isinstance(qualifier, exp.Identifier) and _pg_name(qualifier) == FUNCTION_SCHEMA):
                return f"{parent.this.sql(dialect=_POSTGRES)}.{name}"
        return None if name in ALLOWED_FUNCTIONS else name
    if isinstance(node, exp.Func) and type(node).__name__ not in ALLOWED_NODES:
        return node.sql_name().lower()
    return None


def _refused_relation(table: exp.Table) -> str | None:
    if table.args.get("catalog"):
        return f"不允许引用其他数据库的表: {table.sql(dialect=_POSTGRES)}"
    schema = _pg_name(table.args["db"]) if table.args.get("db") else None
    name = _pg_name(table.this)
    if schema is not None and (schema in SYSTEM_SCHEMAS or schema.startswith("pg_")):
        return f"不允许查询系统表: {schema}.{name}"
    if schema is None and name.startswith("pg_"):
        # pg_catalog comes first in every search path: an unqualified pg_* name is a catalog.
        return f"不允许查询系统表: {name}"
    return None


def _is_unqualified(table: exp.Table) -> bool:
    return not table.args.get("db") and not table.args.get("catalog")


def _pg_name(identifier) -> str:
    """A name as PostgreSQL resolves it: quoted names as written, others folded to lower case."""
    if isinstance(identifier, exp.Identifier):
        return identifier.this if identifier.quoted else identifier.this.lower()
    if isinstance(identifier, exp.Expression):
        return identifier.name.lower()
    return str(identifier).lower()


def _statement_kind(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return {"truncatetable": "TRUNCATE"}.get(tree.key, tree.key.upper())


def _node_kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Lock):
        return "FOR UPDATE" if node.args.get("update") else "FOR SHARE"
    if isinstance(node, exp.Into):
        return "SELECT INTO"
    return _statement_kind(node)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _CommandFallbackFilter(logging.Filter):
    """sqlglot warns when it parses a statement as an opaque Command; here that is a finding, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


_FALLBACK_FILTER = _CommandFallbackFilter()


def _parse(sql: str) -> list[exp.Expression]:
    logging.getLogger("sqlglot").addFilter(_FALLBACK_FILTER)  # idempotent
    return [statement for statement in _POSTGRES.parse(sql) if statement is not None]
