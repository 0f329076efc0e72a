"""The execution check of sql_validation: after the statement check and EXPLAIN pass, the SQL is
run in a READ ONLY transaction (always rolled back) with its own statement timeout, through a
server-side cursor that fetches at most `row_limit` rows, and its row count is recorded.

A run that fails (division by zero, a bad cast) makes the pair invalid (`execution_error`); so
does a run that returns no rows while the SQL filters on a value the question names
(`empty_result`): "rental on “2022-05-26”" with no such rental teaches the wrong thing. A run that
only hits the timeout is not held against the pair (a slow query on a big table is no error);
it stays valid, not executed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from data_pipeline.qa.sql_shape import shape

CURSOR_NAME = "data_pipeline_execution_check"
# A run's error may quote a value read from a row (`invalid input syntax for type integer: "…"`),
# which may be a secret column's: the quotes' contents never reach a report, a log or a prompt.
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


@dataclass(frozen=True)
class ExecutionLimits:
    timeout_ms: int = 5_000
    row_limit: int = 1_000

    @classmethod
    def from_settings(cls, settings) -> "ExecutionLimits":
        return cls(timeout_ms=settings.sql_execution_timeout_ms, row_limit=settings.sql_execution_row_limit)


def named_filter_values(question: str, sql: str) -> list[str]:
    """The values the SQL compares a column with that the question names (as written)."""
    if not question:
        return []
    values = []
    for compared in shape(sql).compared:
        value = compared.value.strip()
        if compared.kind in ("boolean", "null") or not value:
            continue
        if compared.kind == "number" and len(value) < 2:
            continue            # "1" is in too many questions to mean a named value
        if value in question and value not in values:
            values.append(value)
    return values


def without_values(message: str) -> str:
    return _QUOTED.sub("“…”", message)


def run_limited(conn, sql: str, limits: ExecutionLimits) -> int:
    """Run `sql` in the connection's open READ ONLY transaction; the rows it returns, at most the limit."""
    conn.execute(f"SET LOCAL statement_timeout = {int(limits.timeout_ms)}")
    with conn.cursor(name=CURSOR_NAME) as cursor:
        cursor.execute(sql.strip().rstrip(";"))
        return len(cursor.fetchmany(int(limits.row_limit)))
