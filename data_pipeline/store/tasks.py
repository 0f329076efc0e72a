"""TaskStore: the tasks, their steps and their executions in PostgreSQL.

Every status change is a conditional UPDATE, so concurrent requests and processes cannot both
win: `enqueue_execution` succeeds for exactly one caller while a task is queued or runs, a queued
execution is started (`start_queued`, `claim_queued`) once, and an execution is finished
(completed, failed, cancelled, settled as abandoned) exactly once.
"""
from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import and_, create_engine, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from data_pipeline.db.databases import sqlalchemy_url
from data_pipeline.db.connection import describe_connection_error
from data_pipeline.errors import DatabaseError
from data_pipeline.tasks.statuses import (STEP_ENABLE_FLAGS, STEP_NAMES, ExecutionStatus, StepStatus, TaskStatus,
                                          statuses_before)
from data_pipeline.store.migrations import migrate
from data_pipeline.store.records import Execution, Step, Task
from data_pipeline.store.policies import StoreUnavailable, outlives_outages, retry_on_lost_connection
from data_pipeline.store.run_queue import RunQueue
from data_pipeline.store.tables import STEP_RESET, executions, steps, tasks

SORTABLE_COLUMNS = ("created_at", "updated_at", "started_at", "completed_at", "task_name", "status",
                    "task_id", "created_by", "db_name")


_TASK_WITH_STEPS = (
    select(tasks, *[c.label(f"step__{c.name}") for c in steps.c],
           *[c.label(f"exec__{c.name}") for c in executions.c])
    .select_from(tasks.outerjoin(steps, steps.c.task_id == tasks.c.task_id)
                 .outerjoin(executions, executions.c.execution_id == tasks.c.current_execution_id))
    .order_by(steps.c.step_order))


class TaskStore(RunQueue):
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

    @retry_on_lost_connection
    def ping(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(text("select 1"))

    # ---- tasks -----------------------------------------------------------------------------

    @retry_on_lost_connection
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
                {"task_id": task_id, "step_name": name, "step_order": order, **STEP_RESET}
                for order, name in enumerate(STEP_NAMES, 1)])
            row = conn.execute(select(tasks).where(tasks.c.task_id == task_id)).mappings().one()
            return Task.from_row(row, self._steps(conn, [task_id])[task_id])

    @retry_on_lost_connection
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

    @retry_on_lost_connection
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

    @retry_on_lost_connection
    def update_task(self, task_id: str, **values) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(update(tasks).where(tasks.c.task_id == task_id)
                                  .values(**values, updated_at=func.now()))
            return result.rowcount == 1

    @retry_on_lost_connection
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

    @retry_on_lost_connection
    def delete_task(self, task_id: str) -> bool:
        """Delete a task that is not running; False when it is running (or gone).

        Its executions' rows are locked first, as a start or an end of an execution locks them
        (the execution, then the task): the delete's cascade would otherwise take them the other
        way round, and a delete meeting a start of its queued task would deadlock.
        """
        with self.engine.begin() as conn:
            conn.execute(select(executions.c.execution_id).where(executions.c.task_id == task_id)
                         .with_for_update())
            deleted = conn.execute(tasks.delete().where(and_(
                tasks.c.task_id == task_id, tasks.c.status != TaskStatus.IN_PROGRESS)))
            return deleted.rowcount == 1

    # ---- executions ------------------------------------------------------------------------

    @retry_on_lost_connection
    def get_execution(self, execution_id: str) -> Execution | None:
        with self.reader.connect() as conn:
            row = conn.execute(select(executions).where(executions.c.execution_id == execution_id)).mappings().first()
        return Execution.from_row(row) if row is not None else None

    @retry_on_lost_connection
    def list_executions(self, task_id: str) -> list[Execution]:
        with self.reader.connect() as conn:
            return [Execution.from_row(row) for row in conn.execute(
                select(executions).where(executions.c.task_id == task_id)
                .order_by(executions.c.created_at.desc())).mappings()]

    @retry_on_lost_connection
    def running_executions(self) -> list[Execution]:
        with self.reader.connect() as conn:
            return [Execution.from_row(row) for row in conn.execute(
                select(executions).where(executions.c.status == ExecutionStatus.RUNNING)).mappings()]

    @outlives_outages
    @retry_on_lost_connection
    def record_executor(self, execution_id: str, pid: int, hostname: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(executions).where(executions.c.execution_id == execution_id)
                         .values(pid=pid, hostname=hostname, heartbeat_at=func.now()))

    @retry_on_lost_connection
    def heartbeat(self, execution_id: str) -> bool:
        """Record that the executor lives; False once its execution is no longer running."""
        with self.engine.begin() as conn:
            result = conn.execute(update(executions).where(and_(
                executions.c.execution_id == execution_id,
                executions.c.status == ExecutionStatus.RUNNING)).values(heartbeat_at=func.now()))
            return result.rowcount == 1

    @outlives_outages
    @retry_on_lost_connection
    def start_step(self, task_id: str, step_name: str, execution_id: str) -> bool:
        """Mark a step running for this execution; False if the execution was settled meanwhile."""
        with self.engine.begin() as conn:
            running = conn.execute(select(executions.c.status).where(
                executions.c.execution_id == execution_id).with_for_update()).scalar_one_or_none()
            if running != ExecutionStatus.RUNNING:
                return False
            conn.execute(update(steps).where(and_(steps.c.task_id == task_id, steps.c.step_name == step_name))
                         .values(**{**STEP_RESET, "status": StepStatus.RUNNING, "started_at": func.now(),
                                    "execution_id": execution_id}))
            return True

    @retry_on_lost_connection
    def set_step_progress(self, task_id: str, step_name: str, progress: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(steps).where(and_(
                steps.c.task_id == task_id, steps.c.step_name == step_name,
                steps.c.status == StepStatus.RUNNING)).values(progress=progress))

    @outlives_outages
    @retry_on_lost_connection
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

    @outlives_outages
    @retry_on_lost_connection
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

    @retry_on_lost_connection
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

