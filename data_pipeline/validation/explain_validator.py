"""Checks SQL against a business database with EXPLAIN (never ANALYZE) and, when built with
`execution` limits, then runs what passed (validation/execution.py: read-only, timed, row-limited).

Every check first passes `check_statement` (one read-only query of allowed functions and the
database's own relations, decided without the database), then runs `EXPLAIN <sql>` inside a
READ ONLY transaction with `SET LOCAL statement_timeout`, which is always rolled back.

Planning evaluates functions over constants (`length(repeat('x', 1000000000))` is computed by
EXPLAIN), so the timeout is what bounds a check's time; PostgreSQL has no per-session memory cap,
a single value stops at its 1 GB limit. Every pooled session also gets `work_mem` and, where the
role may set it (superusers), `temp_file_limit`, for what runs on these sessions, and a search
path without system schemas (a database or role whose path lists information_schema must not
make `tables` mean information_schema.tables). Connections come from a pool; at most `concurrency` checks run at
once. A check whose connection breaks is retried on a fresh one (the project's retry policy,
data_pipeline.retries) while the database still answers; when the database itself is gone the
whole run stops with DatabaseError (DATABASE_CONNECTION_ERROR) instead of failing every SQL.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import closing, contextmanager
from typing import Callable, Iterator, Sequence

import psycopg
import psycopg.sql
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from data_pipeline.db.connection import CONNECT_TIMEOUT_SECONDS, connect, connection_params, mask_url, scrub
from data_pipeline.errors import DatabaseError
from data_pipeline.retries import retrying
from data_pipeline.validation.execution import ExecutionLimits, named_filter_values, run_limited, without_values
from data_pipeline.validation.outcome import ErrorClass, ValidationOutcome, classify_sqlstate
from data_pipeline.validation.statement_check import SYSTEM_SCHEMAS, check_statement

# SQLSTATEs that mean the connection or the server went away, not that the SQL is wrong.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
SESSION_WORK_MEM = "16MB"
SESSION_TEMP_FILE_LIMIT = "256MB"


class DatabaseUnavailable(Exception):
    """A check could not reach the database (after retries); the run must stop."""


class SQLValidator:
    """EXPLAIN-checks SQL on pooled read-only connections. Use as a context manager."""

    def __init__(self, db_url: str, *, concurrency: int = 8, statement_timeout_ms: int = 5_000,
                 max_retries: int = 3, connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
                 logger: logging.Logger | None = None, execution: ExecutionLimits | None = None):
        """`execution`: also run each SQL that passes EXPLAIN (validation/execution.py)."""
        self.db_url = db_url
        self.execution = execution
        self.concurrency = concurrency
        self.statement_timeout_ms = statement_timeout_ms
        self.max_retries = max_retries
        self.connect_timeout = connect_timeout
        self.logger = logger or logging.getLogger("SQLValidator")
        self.retries = 0
        self._retries_lock = threading.Lock()
        self._pool: ConnectionPool | None = None

    def __enter__(self) -> "SQLValidator":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        # A direct connection first: an unreachable database fails at once, with one clear error.
        # It also works out, once, what every pooled session is given (same role, database, options).
        with closing(connect(self.db_url, connect_timeout=self.connect_timeout)) as probe:
            limits = session_limits(probe)
        self._pool = ConnectionPool(
            "", min_size=self.concurrency, max_size=self.concurrency, open=False,
            configure=lambda conn: apply_session_limits(conn, limits),
            name="sql_validation", timeout=self.connect_timeout * 2, reconnect_timeout=self.connect_timeout * 2,
            # autocommit: the transaction is opened explicitly (BEGIN READ ONLY) per check.
            # No server-side prepared statements: every EXPLAIN is different anyway.
            kwargs={"autocommit": True, "prepare_threshold": None, **self._params()})
        try:
            self._pool.open(wait=True, timeout=self.connect_timeout * 2)
        except PoolTimeout:
            self._pool.close()
            self._pool = None
            raise DatabaseError(f"无法连接数据库 {mask_url(self.db_url)}: 连接池建立超时") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def validate(self, sql: str, question: str = "") -> ValidationOutcome:
        """One SQL's outcome; DatabaseError if the database cannot be reached at all. With the
        execution check on, `question` decides whether an empty result is a failure."""
        try:
            return self._validate(sql, question)
        except DatabaseUnavailable as exc:
            raise DatabaseError(f"数据库 {mask_url(self.db_url)} 不可用，SQL验证中止: {exc}") from None

    def validate_many(self, sqls: Sequence[str],
                      on_done: Callable[[int, ValidationOutcome], None] | None = None,
                      questions: Sequence[str] | None = None) -> list[ValidationOutcome]:
        """Outcomes in input order. `on_done(index, outcome)` is called as each check finishes."""
        outcomes: list[ValidationOutcome | None] = [None] * len(sqls)
        stop = threading.Event()

        def work(index: int) -> None:
            if stop.is_set():
                return
            outcomes[index] = self._validate(sqls[index], questions[index] if questions else "")
            if on_done is not None:
                on_done(index, outcomes[index])

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sql-validate") as executor:
            futures = [executor.submit(work, index) for index in range(len(sqls))]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in done if f.exception() is not None), None)
            if failure is not None:
                stop.set()
                for future in futures:
                    future.cancel()
        if isinstance(failure, DatabaseUnavailable):
            raise DatabaseError(f"数据库 {mask_url(self.db_url)} 不可用，SQL验证中止: {failure}") from None
        if failure is not None:
            raise failure
        return [outcome for outcome in outcomes if outcome is not None]

    def _validate(self, sql: str, question: str = "") -> ValidationOutcome:
        started = time.perf_counter()
        checked = check_statement(sql)
        if not checked.ok:
            return ValidationOutcome.failed(checked.error_class, checked.error, seconds=time.perf_counter() - started)
        if self._pool is None:
            raise RuntimeError("SQLValidator is not open")
        retries = 0

        def on_retry(retry: int, exc: BaseException, delay: float) -> None:
            nonlocal retries
            retries = retry
            self._count_retry()
            self.logger.warning("数据库连接中断，重试SQL验证 (%d/%d): %s", retry, self.max_retries,
                                self._reason(exc))

        policy = retrying(retry_on=lambda exc: _is_connection_problem(exc) and self._database_reachable(),
                          attempts=self.max_retries + 1, first_delay=0.1, on_retry=on_retry)
        try:
            policy(self._explain, sql)
        except psycopg.errors.QueryCanceled:
            return ValidationOutcome.failed(
                ErrorClass.TIMEOUT, f"EXPLAIN超时（超过{self.statement_timeout_ms}毫秒），查询规划耗时过长",
                sqlstate="57014", seconds=time.perf_counter() - started, retries=retries)
        except (psycopg.Error, PoolTimeout) as exc:
            if _is_connection_problem(exc):
                raise DatabaseUnavailable(self._reason(exc)) from None
            return ValidationOutcome.failed(
                classify_sqlstate(exc.sqlstate), _database_message(exc, self.db_url), sqlstate=exc.sqlstate,
                seconds=time.perf_counter() - started, retries=retries)
        if self.execution is None:
            return ValidationOutcome.ok(time.perf_counter() - started, retries=retries)
        return self._execution_check(sql, question, started, retries, policy)

    def _execution_check(self, sql: str, question: str, started: float, retries: int, policy) -> ValidationOutcome:
        """Only for SQL that passed the statement check and EXPLAIN."""
        try:
            rows = policy(self._execute, sql)
        except psycopg.errors.QueryCanceled:
            self.logger.info("SQL执行超过%d毫秒，未计入失败: %s", self.execution.timeout_ms, " ".join(sql.split())[:200])
            return ValidationOutcome.ok(time.perf_counter() - started, retries=retries)
        except (psycopg.Error, PoolTimeout) as exc:
            if _is_connection_problem(exc):
                raise DatabaseUnavailable(self._reason(exc)) from None
            return ValidationOutcome.failed(
                ErrorClass.EXECUTION, f"执行失败: {without_values(_database_message(exc, self.db_url))}",
                sqlstate=exc.sqlstate,
                seconds=time.perf_counter() - started, retries=retries, explain_valid=True)
        named = named_filter_values(question, sql) if rows == 0 else []
        if named:
            return ValidationOutcome.failed(
                ErrorClass.EMPTY_RESULT, f"执行结果为空：问题中的筛选值“{'”、“'.join(named)}”在数据中没有匹配的行",
                seconds=time.perf_counter() - started, retries=retries, explain_valid=True, executed=True,
                row_count=0)
        return ValidationOutcome.ok(time.perf_counter() - started, retries=retries, executed=True, row_count=rows)

    def _reason(self, exc: BaseException) -> str:
        text = str(exc).strip()
        return scrub(text.splitlines()[0] if text else type(exc).__name__, self.db_url)

    @contextmanager
    def _rolled_back(self) -> Iterator[psycopg.Connection]:
        """A pooled connection for one transaction of the caller's (BEGIN READ ONLY ...), ended by a
        ROLLBACK whatever happens: nothing was written, but nothing is kept either. The pool
        discards a connection that comes back broken and opens a new one."""
        assert self._pool is not None
        with self._pool.connection() as conn:
            try:
                yield conn
            finally:
                if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")

    def _explain(self, sql: str) -> None:
        # BEGIN, SET LOCAL and EXPLAIN go out together in pipeline mode. The timeout is an integer
        # we own; the SQL has passed check_statement.
        with self._rolled_back() as conn, conn.pipeline():
            conn.execute("BEGIN READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}")
            conn.execute("EXPLAIN " + sql)

    def _execute(self, sql: str) -> int:
        assert self.execution is not None
        with self._rolled_back() as conn:
            conn.execute("BEGIN READ ONLY")
            return run_limited(conn, sql, self.execution)

    def _database_reachable(self) -> bool:
        try:
            with psycopg.connect(autocommit=True, **self._params()) as probe:
                probe.execute("select 1")
            return True
        except psycopg.Error:
            return False

    def _params(self) -> dict[str, str]:
        return connection_params(self.db_url, connect_timeout=self.connect_timeout,
                                 statement_timeout_ms=self.statement_timeout_ms,
                                 application_name="data_pipeline_sql_validation")

    def _count_retry(self) -> None:
        with self._retries_lock:
            self.retries += 1


def session_limits(conn: psycopg.Connection) -> dict[str, str]:
    """What a pooled session is given for its life: memory limits and a search path without system
    schemas. temp_file_limit only where this role may set it (superusers): tried here, once."""
    schemas = conn.execute("select current_schemas(false)").fetchone()[0]
    path = ", ".join(psycopg.sql.Identifier(schema).as_string(conn) for schema in schemas
                     if schema not in SYSTEM_SCHEMAS and not schema.startswith("pg_"))
    limits = {"search_path": path, "work_mem": SESSION_WORK_MEM}
    try:
        conn.execute("select set_config('temp_file_limit', %s, false)", (SESSION_TEMP_FILE_LIMIT,))
        limits["temp_file_limit"] = SESSION_TEMP_FILE_LIMIT
    except psycopg.errors.InsufficientPrivilege:
        pass  # work_mem and the timeout still apply
    return limits


def apply_session_limits(conn: psycopg.Connection, limits: dict[str, str]) -> None:
    """`session_limits` on a new pooled session, in one statement."""
    conn.execute("select " + ", ".join("set_config(%s, %s, false)" for _ in limits),
                 [item for pair in limits.items() for item in pair])


def _is_connection_problem(exc: Exception) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is None:
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return sqlstate.startswith(_CONNECTION_SQLSTATES)


def _database_message(exc: psycopg.Error, url: str) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    if diag.message_hint:
        message += f"（提示: {diag.message_hint}）"
    return scrub(message, url)
