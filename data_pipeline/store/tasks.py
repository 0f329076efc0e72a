"""TaskStore: the tasks, their steps and their executions in PostgreSQL.

Every status change is a conditional UPDATE, so concurrent requests and processes cannot both
win: `enqueue_execution` succeeds for exactly one caller while a task is queued or runs, a queued
execution is started (`start_queued`, `claim_queued`) once, and an execution is finished
(completed, failed, cancelled, settled as abandoned) exactly once.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
from typing import Callable, TypeVar

from sqlalchemy import and_, create_engine, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from data_pipeline.db.databases import sqlalchemy_url
from data_pipeline.db.connection import describe_connection_error
from data_pipeline.errors import DatabaseError
from data_pipeline.retries import retrying
from data_pipeline.tasks.statuses import (STEP_ENABLE_FLAGS, STEP_NAMES, ExecutionStatus, StepStatus, TaskStatus,
                                          statuses_before)
from data_pipeline.store.migrations import migrate
from data_pipeline.store.records import Execution, Step, Task
from data_pipeline.store.tables import executions, steps, tasks

T = TypeVar("T")

SORTABLE_COLUMNS = ("created_at", "updated_at", "started_at", "completed_at", "task_name", "status",
                    "task_id", "created_by", "db_name")
_RUN_QUEUE_LOCK_KEY = 8_084_000_002
_STEP_RESET = {"status": StepStatus.PENDING, "started_at": None, "completed_at": None,
               "error_message": None, "result": None, "progress": None, "execution_id": None}


class StoreUnavailable(DatabaseError):
    """The store server cannot be reached (down, restarting): worth waiting for, unlike a bad query."""


def _connection_was_lost(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _retry_on_lost_connection(method: Callable[..., T]) -> Callable[..., T]:
    """Retry once, at once, when the pool handed out a connection the server had closed (store restart)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return retrying(retry_on=_connection_was_lost, attempts=2, first_delay=0.0)(method, self, *args, **kwargs)
        except DBAPIError as exc:
            raise self.store_error(exc) from None
    return wrapper


def _outlives_outages(method: Callable[..., T]) -> Callable[..., T]:
    """A status change waits (with backoff) up to `store.outage_seconds` for an unreachable store.

    An executor's step outcome must not be lost because the store restarts while the step ends;
    the API keeps outage_seconds at 0 and answers DATABASE_CONNECTION_ERROR at once instead.
    The writes are conditional updates, so repeating one whose commit did reach the store is harmless.
    """
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        policy = retrying(retry_on=lambda exc: isinstance(exc, StoreUnavailable), within_seconds=self.outage_seconds,
                          first_delay=0.25, max_delay=5.0)
        return policy(method, self, *args, **kwargs)
    return wrapper


_TASK_WITH_STEPS = (
    select(tasks, *[c.label(f"step__{c.name}") for c in steps.c],
           *[c.label(f"exec__{c.name}") for c in executions.c])
    .select_from(tasks.outerjoin(steps, steps.c.task_id == tasks.c.task_id)
                 .outerjoin(executions, executions.c.execution_id == tasks.c.current_execution_id))
    .order_by(steps.c.step_order))


class TaskStore:
    def __init__(self, url: str, *, pool_size: int = 8, outage_seconds: float = 0.0):
        self.url = url
        self.outage_seconds = outage_seconds
        self.engine = create_engine(sqlalchemy_url(url), pool_size=pool_size, max_overflow=16,
                                    pool_recycle=1800, connect_args={"connect_timeout": 5})
        # Reads run outside a transaction: no BEGIN/ROLLBACK round trips around a single SELECT.
        self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def store_error(self, exc: DBAPIError) -> DatabaseError:
        reason = describe_connection_error(exc.orig, self.url) if exc.orig is not None else type(exc).__name__
        unreachable = exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))
        return (StoreUnavailable if unreachable else DatabaseError)(f"任务存储数据库错误: {reason}",
                                                                    message="任务存储不可用")

    def migrate(self) -> int:
        return migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    @_retry_on_lost_connection
    def ping(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(text("select 1"))

    # ---- tasks -----------------------------------------------------------------------------

    @_retry_on_lost_connection
    def create_task(self, *, task_id_base: str, task_name: str | None, created_by: str, db_name: str | None,
                    business_context: str | None, db_connection: str | None, parameters: dict) -> Task:
        """Insert a task with the next free id of `task_id_base`, `_2`, `_3`, ... and its four steps.

        Creates within the same second queue on one advisory lock, so each finds the next suffix
        with one query instead of trying suffixes one by one.
        """
        with self.engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(hashtext(:base))"), {"base": task_id_base})
            same_second = conn.execute(select(tasks.c.task_id).where(
                tasks.c.task_id.like(task_id_base.replace("_", "\\_") + "%", escape="\\"))).scalars()
            pattern = re.compile(re.escape(task_id_base) + r"(?:_(\d+))?")
            suffixes = [int(m.group(1) or 1) for m in map(pattern.fullmatch, same_second) if m]
            task_id = task_id_base if not suffixes else f"{task_id_base}_{max(suffixes) + 1}"
            conn.execute(text("""insert into dp_tasks (task_id, task_name, status, created_by, db_name,
                                     business_context, db_connection, parameters)
                                 values (:task_id, :task_name, :status, :created_by, :db_name, :business_context,
                                         :db_connection, cast(:parameters as jsonb))"""),
                         {"task_id": task_id, "task_name": task_name, "status": TaskStatus.PENDING,
                          "created_by": created_by, "db_name": db_name, "business_context": business_context,
                          "db_connection": db_connection, "parameters": _json(parameters)})
            conn.execute(steps.insert(), [
                {"task_id": task_id, "step_name": name, "step_order": order, **_STEP_RESET}
                for order, name in enumerate(STEP_NAMES, 1)])
            row = conn.execute(select(tasks).where(tasks.c.task_id == task_id)).mappings().one()
            return Task.from_row(row, self._steps(conn, [task_id])[task_id])

    @_retry_on_lost_connection
    def get_task(self, task_id: str) -> Task | None:
        """The task with its steps (ordered) and its current execution, if any.

        One round trip: the task joined with its step rows and its current execution.
        """
        with self.reader.connect() as conn:
            rows = conn.execute(_TASK_WITH_STEPS.where(tasks.c.task_id == task_id)).mappings().all()
        if not rows:
            return None
        first = rows[0]
        task_steps = tuple(Step.from_row(row, "step__") for row in rows if row["step__step_name"] is not None)
        execution = Execution.from_row(first, "exec__") if first["exec__execution_id"] is not None else None
        return Task.from_row(first, task_steps, execution)

    def _steps(self, conn, task_ids: list[str]) -> dict[str, tuple[Step, ...]]:
        result: dict[str, list[Step]] = {task_id: [] for task_id in task_ids}
        if task_ids:
            rows = conn.execute(select(steps).where(steps.c.task_id.in_(task_ids))
                                .order_by(steps.c.task_id, steps.c.step_order)).mappings()
            for row in rows:
                result[row["task_id"]].append(Step.from_row(row))
        return {task_id: tuple(task_steps) for task_id, task_steps in result.items()}

    @_retry_on_lost_connection
    def search_tasks(self, *, status: str | None = None, task_name: str | None = None,
                     created_by: str | None = None, db_name: str | None = None,
                     created_from: dt.datetime | None = None, created_to: dt.datetime | None = None,
                     sort_by: str = "created_at", sort_order: str = "desc",
                     limit: int = 50, offset: int = 0) -> tuple[list[Task], int]:
        """A page of tasks (each with its steps) matching every given filter, and the number of matches."""
        conditions = []
        if status:
            conditions.append(tasks.c.status == status)
        if task_name:
            pattern = "%" + task_name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(tasks.c.task_name.ilike(pattern, escape="\\"))
        if created_by:
            conditions.append(tasks.c.created_by == created_by)
        if db_name:
            conditions.append(tasks.c.db_name == db_name)
        if created_from:
            conditions.append(tasks.c.created_at >= created_from)
        if created_to:
            conditions.append(tasks.c.created_at <= created_to)
        where = and_(*conditions) if conditions else None
        column = tasks.c[sort_by]
        ordering = [column.desc().nulls_last() if sort_order == "desc" else column.asc().nulls_last(),
                    tasks.c.task_id.desc() if sort_order == "desc" else tasks.c.task_id.asc()]
        page = select(tasks).order_by(*ordering).limit(limit).offset(offset)
        count = select(func.count()).select_from(tasks)
        if where is not None:
            page, count = page.where(where), count.where(where)
        with self.reader.connect() as conn:
            rows = conn.execute(page).mappings().all()
            total = conn.execute(count).scalar_one()
            step_rows = self._steps(conn, [r["task_id"] for r in rows])
        return [Task.from_row(row, step_rows[row["task_id"]]) for row in rows], total

    @_retry_on_lost_connection
    def update_task(self, task_id: str, **values) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(update(tasks).where(tasks.c.task_id == task_id)
                                  .values(**values, updated_at=func.now()))
            return result.rowcount == 1

    @_retry_on_lost_connection
    def seal_connections(self, seal: Callable[[str], str], prefix: str) -> int:
        """Rewrite every stored db_connection not yet sealed (not starting with `prefix`) with `seal`."""
        sealed = 0
        with self.engine.begin() as conn:
            rows = conn.execute(select(tasks.c.task_id, tasks.c.db_connection).where(and_(
                tasks.c.db_connection.is_not(None), ~tasks.c.db_connection.startswith(prefix, autoescape=True)))
                .with_for_update()).all()
            for task_id, clear in rows:
                conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(db_connection=seal(clear)))
                sealed += 1
        return sealed

    @_retry_on_lost_connection
    def delete_task(self, task_id: str) -> bool:
        """Delete a task that is not running; False when it is running (or gone)."""
        with self.engine.begin() as conn:
            deleted = conn.execute(tasks.delete().where(and_(
                tasks.c.task_id == task_id, tasks.c.status != TaskStatus.IN_PROGRESS)))
            return deleted.rowcount == 1

    # ---- executions ------------------------------------------------------------------------

    @_retry_on_lost_connection
    def enqueue_execution(self, task_id: str, *, execution_id_base: str, mode: str,
                          step_name: str | None, options: dict) -> str | None:
        """Atomically queue a task that may be queued (TASK_TRANSITIONS) with a new, queued execution.

        Returns the execution id, or None when the task is queued or running already (or does not
        exist). Steps the execution will (re)run, and every step after them, go back to pending.
        """
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(tasks)
                .where(and_(tasks.c.task_id == task_id, tasks.c.status.in_(statuses_before(TaskStatus.QUEUED))))
                .values(status=TaskStatus.QUEUED, started_at=None, completed_at=None, error_message=None,
                        error_code=None, updated_at=func.now())
                .returning(tasks.c.task_id)).first()
            if claimed is None:
                return None
            taken = conn.execute(select(func.count()).select_from(executions).where(
                executions.c.execution_id.like(execution_id_base.replace("_", "\\_") + "%", escape="\\")
            )).scalar_one()
            execution_id = execution_id_base if taken == 0 else f"{execution_id_base}_{taken + 1}"
            conn.execute(executions.insert().values(
                execution_id=execution_id, task_id=task_id, execution_mode=mode, step_name=step_name,
                status=ExecutionStatus.QUEUED, options=options))
            conn.execute(update(tasks).where(tasks.c.task_id == task_id)
                         .values(current_execution_id=execution_id))
            first_order = STEP_NAMES.index(step_name) + 1 if step_name else 1
            conn.execute(update(steps).where(and_(steps.c.task_id == task_id, steps.c.step_order >= first_order))
                         .values(**_STEP_RESET))
            return execution_id

    @_retry_on_lost_connection
    def start_queued(self, max_running: int) -> list[Execution]:
        """The local executor's first-in first-out start: while fewer than `max_running` executions
        run, the oldest queued ones become running (their tasks in_progress); returns those.

        One advisory lock orders the decision across every thread and process that makes it (the
        API, a restarted API, `python -m data_pipeline run`), so the bound holds.
        """
        with self.engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _RUN_QUEUE_LOCK_KEY})
            running = conn.execute(select(func.count()).select_from(executions).where(
                executions.c.status == ExecutionStatus.RUNNING)).scalar_one()
            if running >= max_running:
                return []
            oldest = (select(executions.c.execution_id).where(executions.c.status == ExecutionStatus.QUEUED)
                      .order_by(executions.c.queue_seq).limit(max_running - running))
            return self._start(conn, executions.c.execution_id.in_(oldest.scalar_subquery()), {})

    @_retry_on_lost_connection
    def claim_queued(self, execution_id: str, *, worker: str | None, hostname: str | None) -> Execution | None:
        """A worker's claim: the queued execution becomes running on `worker`, once. None when it is
        not queued (cancelled, deleted, already claimed by an earlier delivery of the same message)."""
        with self.engine.begin() as conn:
            started = self._start(conn, executions.c.execution_id == execution_id,
                                  {"worker": worker, "hostname": hostname, "heartbeat_at": func.now()})
            return started[0] if started else None

    def _start(self, conn, which, values: dict) -> list[Execution]:
        rows = conn.execute(
            update(executions).where(and_(which, executions.c.status == ExecutionStatus.QUEUED))
            .values(status=ExecutionStatus.RUNNING, started_at=func.now(), **values)
            .returning(*executions.c)).mappings().all()
        started = sorted((Execution.from_row(row) for row in rows), key=lambda e: e.queue_seq)
        if started:
            conn.execute(update(tasks).where(and_(
                tasks.c.current_execution_id.in_([e.execution_id for e in started]),
                tasks.c.status.in_(statuses_before(TaskStatus.IN_PROGRESS))))
                .values(status=TaskStatus.IN_PROGRESS, started_at=func.now(), updated_at=func.now()))
        return started

    @_retry_on_lost_connection
    def queue_position(self, execution_id: str) -> int | None:
        """1 for the next execution to start, 2 for the one after it, ...; None unless it is queued."""
        mine = select(executions.c.queue_seq).where(and_(
            executions.c.execution_id == execution_id, executions.c.status == ExecutionStatus.QUEUED))
        with self.reader.connect() as conn:
            position = conn.execute(select(func.count()).select_from(executions).where(and_(
                executions.c.status == ExecutionStatus.QUEUED,
                executions.c.queue_seq <= mine.scalar_subquery()))).scalar_one()
        return position or None

    @_retry_on_lost_connection
    def get_execution(self, execution_id: str) -> Execution | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(executions).where(executions.c.execution_id == execution_id)).mappings().first()
        return Execution.from_row(row) if row is not None else None

    @_retry_on_lost_connection
    def list_executions(self, task_id: str) -> list[Execution]:
        with self.reader.connect() as conn:
            return [Execution.from_row(row) for row in conn.execute(
                select(executions).where(executions.c.task_id == task_id)
                .order_by(executions.c.created_at.desc())).mappings()]

    @_retry_on_lost_connection
    def running_executions(self) -> list[Execution]:
        with self.reader.connect() as conn:
            return [Execution.from_row(row) for row in conn.execute(
                select(executions).where(executions.c.status == ExecutionStatus.RUNNING)).mappings()]

    @_outlives_outages
    @_retry_on_lost_connection
    def record_executor(self, execution_id: str, pid: int, hostname: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(executions).where(executions.c.execution_id == execution_id)
                         .values(pid=pid, hostname=hostname, heartbeat_at=func.now()))

    @_retry_on_lost_connection
    def heartbeat(self, execution_id: str) -> bool:
        """Record that the executor lives; False once its execution is no longer running."""
        with self.engine.begin() as conn:
            result = conn.execute(update(executions).where(and_(
                executions.c.execution_id == execution_id,
                executions.c.status == ExecutionStatus.RUNNING)).values(heartbeat_at=func.now()))
            return result.rowcount == 1

    @_outlives_outages
    @_retry_on_lost_connection
    def start_step(self, task_id: str, step_name: str, execution_id: str) -> bool:
        """Mark a step running for this execution; False if the execution was settled meanwhile."""
        with self.engine.begin() as conn:
            running = conn.execute(select(executions.c.status).where(
                executions.c.execution_id == execution_id).with_for_update()).scalar_one_or_none()
            if running != ExecutionStatus.RUNNING:
                return False
            conn.execute(update(steps).where(and_(steps.c.task_id == task_id, steps.c.step_name == step_name))
                         .values(**{**_STEP_RESET, "status": StepStatus.RUNNING, "started_at": func.now(),
                                    "execution_id": execution_id}))
            return True

    @_retry_on_lost_connection
    def set_step_progress(self, task_id: str, step_name: str, progress: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(steps).where(and_(
                steps.c.task_id == task_id, steps.c.step_name == step_name,
                steps.c.status == StepStatus.RUNNING)).values(progress=progress))

    @_outlives_outages
    @_retry_on_lost_connection
    def finish_step(self, task_id: str, step_name: str, status: StepStatus, *, execution_id: str,
                    error_message: str | None = None, result: dict | None = None) -> bool:
        """Finish a step of a running execution (also `skipped`); False if it was settled meanwhile."""
        with self.engine.begin() as conn:
            finished = conn.execute(
                update(steps).where(and_(
                    steps.c.task_id == task_id, steps.c.step_name == step_name,
                    steps.c.status.in_(statuses_before(status)),
                    or_(steps.c.execution_id == execution_id, steps.c.execution_id.is_(None))))
                .values(status=status, completed_at=func.now(), error_message=error_message,
                        result=result, execution_id=execution_id,
                        started_at=func.coalesce(steps.c.started_at, func.now())))
            return finished.rowcount == 1

    @_outlives_outages
    @_retry_on_lost_connection
    def finish_execution(self, execution_id: str, status: ExecutionStatus, *, error_message: str | None = None,
                         error_code: str | None = None, exit_code: int | None = None) -> bool:
        """End a queued or running execution once: the execution, its running step and its task.

        `error_code` (data_pipeline.tasks.failures) is kept for a failed execution only.

        Returns False when the execution had already ended (another process settled it first).
        """
        error_code = error_code if status is ExecutionStatus.FAILED else None
        with self.engine.begin() as conn:
            ended = conn.execute(
                update(executions).where(and_(executions.c.execution_id == execution_id,
                                              executions.c.status.in_([ExecutionStatus.QUEUED,
                                                                       ExecutionStatus.RUNNING])))
                .values(status=status, completed_at=func.now(), error_message=error_message,
                        error_code=error_code, exit_code=exit_code)
                .returning(executions.c.task_id)).first()
            if ended is None:
                return False
            task_id = ended.task_id
            if status is not ExecutionStatus.COMPLETED:
                step_status = StepStatus.CANCELLED if status is ExecutionStatus.CANCELLED else StepStatus.FAILED
                conn.execute(update(steps).where(and_(
                    steps.c.task_id == task_id, steps.c.execution_id == execution_id,
                    steps.c.status == StepStatus.RUNNING)).values(
                    status=step_status, completed_at=func.now(),
                    error_message=func.coalesce(steps.c.error_message, error_message)))
            task_status = self._task_status_after(conn, task_id, status)
            conn.execute(update(tasks).where(and_(tasks.c.task_id == task_id,
                                                  tasks.c.current_execution_id == execution_id,
                                                  tasks.c.status.in_(statuses_before(task_status))))
                         .values(status=task_status, completed_at=func.now(), updated_at=func.now(),
                                 error_message=None if status is ExecutionStatus.COMPLETED else error_message,
                                 error_code=error_code))
            return True

    @_retry_on_lost_connection
    def task_status_after(self, task_id: str, status: ExecutionStatus) -> TaskStatus:
        """The status the task gets (or got) when its current execution ends with `status`."""
        with self.reader.connect() as conn:
            return self._task_status_after(conn, task_id, status)

    def _task_status_after(self, conn, task_id: str, status: ExecutionStatus) -> TaskStatus:
        if status is ExecutionStatus.CANCELLED:
            return TaskStatus.CANCELLED
        if status is ExecutionStatus.FAILED:
            return TaskStatus.FAILED
        parameters = conn.execute(select(tasks.c.parameters).where(tasks.c.task_id == task_id)).scalar_one()
        step_status = dict(conn.execute(select(steps.c.step_name, steps.c.status)
                                        .where(steps.c.task_id == task_id)).all())
        enabled = [name for name in STEP_NAMES if parameters.get(STEP_ENABLE_FLAGS.get(name, ""), True)]
        if all(step_status.get(name) == StepStatus.COMPLETED for name in enabled):
            return TaskStatus.COMPLETED
        return TaskStatus.PARTIAL_COMPLETED


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)

