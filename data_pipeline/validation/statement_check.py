"""The check every SQL passes before it may reach a database: one statement, a query, nothing
that writes or locks anywhere in its tree. Parsed with sqlglot's PostgreSQL dialect.

The database check that follows runs EXPLAIN only, inside a READ ONLY transaction, so nothing
here is the last line of defence; it is what lets a training pair be called read-only at all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from data_pipeline.validation.outcome import ErrorClass

_POSTGRES = Dialect.get_or_raise("postgres")
_QUERY_ROOTS = (exp.Query, exp.Values)
_WRITING_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
                  exp.Command, exp.Copy, exp.TruncateTable, exp.Into, exp.Lock)
# Functions that change state or take locks when a query containing them runs.
_SIDE_EFFECT_FUNCTIONS = frozenset({
    "nextval", "setval", "set_config", "pg_advisory_lock", "pg_advisory_lock_shared",
    "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared", "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
    "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
    "pg_switch_wal", "pg_create_restore_point", "pg_promote", "lo_import", "lo_export", "lo_unlink",
    "lo_create", "lo_from_bytea", "lo_put", "dblink", "dblink_exec", "pg_read_file",
    "pg_read_binary_file", "pg_ls_dir", "pg_stat_reset", "txid_current", "pg_current_xact_id",
})


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
        # sqlglot knows none of these functions: they all parse as Anonymous.
        if type(node) is exp.Anonymous and node.name.lower() in _SIDE_EFFECT_FUNCTIONS:
            return StatementCheck(False, ErrorClass.WRITES_OR_LOCKS, f"查询调用了有副作用的函数 {node.name.lower()}()")
    return StatementCheck(True, tree=tree)


def referenced_tables(sql: str) -> set[str]:
    """Lower-cased names of the tables a query reads (CTE names excluded); empty if unparsable."""
    try:
        statements = _parse(sql)
    except SqlglotError:
        return set()
    names: set[str] = set()
    for tree in statements:
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if table.name and table.name.lower() not in ctes:
                names.add(table.name.lower())
    return names


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
