"""The store's half of the run queue: queueing an execution, and starting queued ones exactly once.

An accepted execute queues the task (`enqueue_execution`). The local executor starts the oldest
queued executions while fewer than its bound run (`start_queued`, one decision at a time under an
advisory lock); a Celery worker claims the execution its message names (`claim_queued`). Either
start is a conditional UPDATE from `queued`, so no execution starts twice.
"""
from __future__ import annotations

from sqlalchemy import and_, func, select, text, update

from data_pipeline.store.policies import retry_on_lost_connection
from data_pipeline.store.records import Execution
from data_pipeline.store.tables import STEP_RESET, executions, steps, tasks
from data_pipeline.tasks.statuses import STEP_NAMES, ExecutionStatus, TaskStatus, statuses_before

_RUN_QUEUE_LOCK_KEY = 8_084_000_002


class RunQueue:
    """Mixed into TaskStore (which provides `engine`, `reader` and `store_error`)."""

    @retry_on_lost_connection
    def enqueue_execution(self, task_id: str, *, execution_id_base: str, mode: str, step_name: str | None,
                          options: dict, run_queue: str | None = None) -> str | None:
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
                status=ExecutionStatus.QUEUED, options=options, run_queue=run_queue))
            conn.execute(update(tasks).where(tasks.c.task_id == task_id)
                         .values(current_execution_id=execution_id))
            first_order = STEP_NAMES.index(step_name) + 1 if step_name else 1
            conn.execute(update(steps).where(and_(steps.c.task_id == task_id, steps.c.step_order >= first_order))
                         .values(**STEP_RESET))
            return execution_id

    @retry_on_lost_connection
    def start_queued(self, max_running: int, run_queue: str | None = None) -> list[Execution]:
        """The local executor's first-in first-out start: while fewer than `max_running` executions
        of `run_queue` run, its oldest queued ones become running (their tasks in_progress);
        returns those.

        One advisory lock orders the decision across every thread and process that makes it (the
        API, a restarted API, `python -m data_pipeline run`), so the bound holds. The API asks every
        second and at each read of a queued task, mostly to hear "nothing to start": one lock-free
        read answers that (nothing queued, or no free slot) without the lock and its transaction.
        It reads the same committed state the locked count would; a run that ends later asks again.
        """
        mine = executions.c.run_queue.is_not_distinct_from(run_queue)
        # each on its partial index (status = 'running' / 'queued'), not a scan of the history
        running_count = select(func.count()).select_from(executions).where(
            and_(mine, executions.c.status == ExecutionStatus.RUNNING)).scalar_subquery()
        any_queued = select(executions.c.execution_id).where(
            and_(mine, executions.c.status == ExecutionStatus.QUEUED)).exists()
        with self.reader.connect() as conn:
            running, queued = conn.execute(select(running_count, any_queued)).one()
        if not queued or running >= max_running:
            return []
        with self.engine.begin() as conn:
            conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _RUN_QUEUE_LOCK_KEY})
            running = conn.execute(select(running_count)).scalar_one()
            if running >= max_running:
                return []
            oldest = (select(executions.c.execution_id)
                      .where(and_(mine, executions.c.status == ExecutionStatus.QUEUED))
                      .order_by(executions.c.queue_seq).limit(max_running - running))
            return self._start(conn, executions.c.execution_id.in_(oldest.scalar_subquery()), {})

    @retry_on_lost_connection
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

    @retry_on_lost_connection
    def queue_position(self, execution_id: str) -> int | None:
        """1 for the next execution of its queue to start, 2 for the one after it, ...; None unless
        it is queued."""
        mine = (select(executions.c.queue_seq, executions.c.run_queue)
                .where(and_(executions.c.execution_id == execution_id,
                            executions.c.status == ExecutionStatus.QUEUED)).subquery())
        ahead = select(func.count()).select_from(executions.join(mine, and_(
            executions.c.run_queue.is_not_distinct_from(mine.c.run_queue),
            executions.c.queue_seq <= mine.c.queue_seq))).where(executions.c.status == ExecutionStatus.QUEUED)
        with self.reader.connect() as conn:
            return conn.execute(ahead).scalar_one() or None  # 0: the execution is not queued
