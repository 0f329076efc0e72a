"""TaskStore's status transitions in-process, on a real database of each server (`task_store`):
the store's half of what tests/test_execution.py shows through executors and HTTP.

Every change is a conditional UPDATE: exactly one of concurrent claims wins, an execution ends
exactly once, and a settled execution's late writes change nothing.
"""
from __future__ import annotations

import concurrent.futures
import uuid

from sqlalchemy import text

from tests.support.waiting import wait_until

from data_pipeline.tasks.statuses import STEP_NAMES, ExecutionStatus, StepStatus, TaskStatus


def new_task(store, **parameters) -> str:
    base = f"task_store_{uuid.uuid4().hex[:10]}"
    return store.create_task(task_id_base=base, task_name="状态迁移", created_by="tester", db_name="highway_db",
                             business_context=None, db_connection=None, parameters=parameters).task_id


def enqueue(store, task_id: str, mode: str = "complete", step_name: str | None = None) -> str | None:
    return store.enqueue_execution(task_id, execution_id_base=f"{task_id}_{mode}_exec", mode=mode,
                                   step_name=step_name, options={"backup_vector_tables": False})


def claim(store, task_id: str, mode: str = "complete", step_name: str | None = None) -> str | None:
    """Queue the task and start its execution at once (as a worker's claim does)."""
    execution_id = enqueue(store, task_id, mode, step_name)
    if execution_id is None:
        return None
    started = store.claim_queued(execution_id, worker=None, hostname=None)
    return started.execution_id if started else None


def step_status(store, task_id: str) -> dict[str, StepStatus]:
    return {step.step_name: step.status for step in store.get_task(task_id).steps}


def run_steps(store, task_id: str, execution_id: str, names=STEP_NAMES) -> None:
    for name in names:
        assert store.start_step(task_id, name, execution_id)
        assert store.finish_step(task_id, name, StepStatus.COMPLETED, execution_id=execution_id,
                                 result={"step": name})


def test_a_new_task_is_pending_with_four_pending_steps(task_store):
    task = task_store.get_task(new_task(task_store))
    assert task.status is TaskStatus.PENDING and task.current_execution_id is None
    assert [s.step_name for s in task.steps] == list(STEP_NAMES)
    assert {s.status for s in task.steps} == {StepStatus.PENDING}


def test_task_ids_of_one_second_take_the_next_suffix(task_store):
    fields = dict(task_name=None, created_by="guest", db_name="db", business_context=None, db_connection=None,
                  parameters={})
    base = "task_20250101_000000"
    ids = [task_store.create_task(task_id_base=base, **fields).task_id for _ in range(3)]
    assert ids == [base, f"{base}_2", f"{base}_3"]
    assert task_store.delete_task(f"{base}_2")
    assert task_store.create_task(task_id_base=base, **fields).task_id == f"{base}_4"  # never reuses a gap
    other = task_store.create_task(task_id_base="task_20250101_000001", **fields).task_id
    assert other == "task_20250101_000001"


def test_a_complete_run_moves_task_steps_and_execution_to_completed(task_store):
    task_id = new_task(task_store)
    execution_id = claim(task_store, task_id)
    assert execution_id == f"{task_id}_complete_exec"
    running = task_store.get_task(task_id)
    assert running.status is TaskStatus.IN_PROGRESS and running.current_execution_id == execution_id
    assert running.execution.status is ExecutionStatus.RUNNING
    assert claim(task_store, task_id) is None, "a running task cannot be claimed again"
    assert task_store.delete_task(task_id) is False, "a running task cannot be deleted"

    assert task_store.start_step(task_id, "ddl_generation", execution_id)
    task_store.set_step_progress(task_id, "ddl_generation", {"done": 1, "total": 2, "unit": "tables"})
    ddl = task_store.get_task(task_id).steps[0]
    assert ddl.status is StepStatus.RUNNING and ddl.execution_id == execution_id
    assert ddl.progress == {"done": 1, "total": 2, "unit": "tables"}
    run_steps(task_store, task_id, execution_id)
    assert task_store.task_status_after(task_id, ExecutionStatus.COMPLETED) is TaskStatus.COMPLETED
    assert task_store.finish_execution(execution_id, ExecutionStatus.COMPLETED)

    task = task_store.get_task(task_id)
    assert task.status is TaskStatus.COMPLETED and task.completed_at is not None and task.error_message is None
    assert set(step_status(task_store, task_id).values()) == {StepStatus.COMPLETED}
    assert task_store.get_execution(execution_id).status is ExecutionStatus.COMPLETED
    assert task_store.finish_execution(execution_id, ExecutionStatus.FAILED) is False, "ends exactly once"
    assert task_store.get_task(task_id).status is TaskStatus.COMPLETED
    assert task_store.delete_task(task_id) is True and task_store.get_task(task_id) is None


def test_disabled_steps_skipped_still_complete_the_task(task_store):
    task_id = new_task(task_store, enable_sql_validation=False, enable_training_data_load=False)
    execution_id = claim(task_store, task_id)
    run_steps(task_store, task_id, execution_id, STEP_NAMES[:2])
    for name in STEP_NAMES[2:]:
        assert task_store.finish_step(task_id, name, StepStatus.SKIPPED, execution_id=execution_id)
    assert task_store.finish_execution(execution_id, ExecutionStatus.COMPLETED)
    assert task_store.get_task(task_id).status is TaskStatus.COMPLETED
    assert list(step_status(task_store, task_id).values()) == [StepStatus.COMPLETED] * 2 + [StepStatus.SKIPPED] * 2


def test_a_failed_execution_fails_its_running_step_and_the_task(task_store):
    task_id = new_task(task_store)
    execution_id = claim(task_store, task_id)
    run_steps(task_store, task_id, execution_id, STEP_NAMES[:1])
    assert task_store.start_step(task_id, "qa_generation", execution_id)
    assert task_store.finish_execution(execution_id, ExecutionStatus.FAILED, error_message="executor exited",
                                       error_code="EXECUTOR_KILLED", exit_code=-9)
    task = task_store.get_task(task_id)
    assert task.status is TaskStatus.FAILED and task.error_message == "executor exited"
    assert step_status(task_store, task_id) == {"ddl_generation": StepStatus.COMPLETED,
                                                "qa_generation": StepStatus.FAILED,
                                                "sql_validation": StepStatus.PENDING,
                                                "training_load": StepStatus.PENDING}
    assert task.steps[1].error_message == "executor exited"
    execution = task_store.get_execution(execution_id)
    assert (execution.status, execution.exit_code, execution.error_code) == (ExecutionStatus.FAILED, -9,
                                                                           "EXECUTOR_KILLED")
    # The settled executor's late writes change nothing.
    assert task_store.heartbeat(execution_id) is False
    assert task_store.start_step(task_id, "sql_validation", execution_id) is False
    assert task_store.finish_step(task_id, "qa_generation", StepStatus.COMPLETED, execution_id=execution_id) is False
    assert task_store.get_task(task_id).status is TaskStatus.FAILED
    # A failed task runs again, under the next execution id, and a success clears the error.
    again = claim(task_store, task_id)
    assert again == f"{task_id}_complete_exec_2"
    assert task_store.get_task(task_id).error_message is None
    assert set(step_status(task_store, task_id).values()) == {StepStatus.PENDING}


def test_a_cancelled_execution_cancels_its_running_step_and_the_task(task_store):
    task_id = new_task(task_store)
    execution_id = claim(task_store, task_id)
    assert task_store.start_step(task_id, "ddl_generation", execution_id)
    assert task_store.finish_execution(execution_id, ExecutionStatus.CANCELLED, error_message="cancelled")
    assert task_store.get_task(task_id).status is TaskStatus.CANCELLED
    assert step_status(task_store, task_id)["ddl_generation"] is StepStatus.CANCELLED
    assert step_status(task_store, task_id)["qa_generation"] is StepStatus.PENDING
    assert claim(task_store, task_id) is not None, "a cancelled task can run again"


def test_step_mode_partial_then_complete_and_a_rerun_resets_later_steps(task_store):
    task_id = new_task(task_store)
    for name in STEP_NAMES:
        execution_id = claim(task_store, task_id, mode="step", step_name=name)
        assert execution_id is not None
        run_steps(task_store, task_id, execution_id, (name,))
        expected = TaskStatus.COMPLETED if name == STEP_NAMES[-1] else TaskStatus.PARTIAL_COMPLETED
        assert task_store.task_status_after(task_id, ExecutionStatus.COMPLETED) is expected
        assert task_store.finish_execution(execution_id, ExecutionStatus.COMPLETED)
        assert task_store.get_task(task_id).status is expected
    rerun = claim(task_store, task_id, mode="step", step_name="qa_generation")
    assert step_status(task_store, task_id) == {"ddl_generation": StepStatus.COMPLETED,
                                                "qa_generation": StepStatus.PENDING,
                                                "sql_validation": StepStatus.PENDING,
                                                "training_load": StepStatus.PENDING}
    run_steps(task_store, task_id, rerun, ("qa_generation",))
    assert task_store.finish_execution(rerun, ExecutionStatus.COMPLETED)
    assert task_store.get_task(task_id).status is TaskStatus.PARTIAL_COMPLETED
    assert len(task_store.list_executions(task_id)) == 5


def test_of_twenty_concurrent_claims_exactly_one_wins(task_store):
    task_id = new_task(task_store)
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        claims = list(pool.map(lambda _: claim(task_store, task_id), range(20)))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1, claims
    assert [e.execution_id for e in task_store.running_executions() if e.task_id == task_id] == winners


def test_the_executor_is_recorded_and_beats_while_running(task_store):
    task_id = new_task(task_store)
    execution_id = claim(task_store, task_id)
    task_store.record_executor(execution_id, 4242, "test-host")
    execution = task_store.get_execution(execution_id)
    assert (execution.pid, execution.hostname) == (4242, "test-host") and execution.heartbeat_at is not None
    assert task_store.heartbeat(execution_id) is True
    assert task_store.finish_execution(execution_id, ExecutionStatus.FAILED, error_message="gone")
    assert task_store.heartbeat(execution_id) is False


def test_status_after_a_failure_or_cancel_does_not_depend_on_the_steps(task_store):
    task_id = new_task(task_store)
    execution_id = claim(task_store, task_id)
    run_steps(task_store, task_id, execution_id)
    assert task_store.task_status_after(task_id, ExecutionStatus.FAILED) is TaskStatus.FAILED
    assert task_store.task_status_after(task_id, ExecutionStatus.CANCELLED) is TaskStatus.CANCELLED


def test_a_queued_execution_starts_once_and_can_be_cancelled_while_queued(task_store):
    task_id = new_task(task_store)
    execution_id = enqueue(task_store, task_id, "step", "ddl_generation")
    queued = task_store.get_task(task_id)
    assert queued.status is TaskStatus.QUEUED and queued.execution.status is ExecutionStatus.QUEUED
    assert queued.started_at is None and task_store.queue_position(execution_id) >= 1
    assert enqueue(task_store, task_id) is None, "a queued task cannot be queued again"
    started = task_store.claim_queued(execution_id, worker="w1", hostname="host-1")
    assert (started.worker, started.hostname, started.status) == ("w1", "host-1", ExecutionStatus.RUNNING)
    assert task_store.get_task(task_id).status is TaskStatus.IN_PROGRESS
    assert task_store.queue_position(execution_id) is None
    assert task_store.claim_queued(execution_id, worker="w2", hostname="host-2") is None, "a redelivery runs nothing"
    assert task_store.finish_execution(execution_id, ExecutionStatus.FAILED, error_message="lost",
                                       error_code="WORKER_LOST")
    failed = task_store.get_task(task_id)
    assert (failed.status, failed.error_code, failed.execution.error_code) == (
        TaskStatus.FAILED, "WORKER_LOST", "WORKER_LOST")

    again = enqueue(task_store, task_id)
    assert task_store.get_task(task_id).error_code is None
    assert task_store.finish_execution(again, ExecutionStatus.CANCELLED, error_message="取消")
    cancelled = task_store.get_task(task_id)
    assert cancelled.status is TaskStatus.CANCELLED and cancelled.execution.started_at is None
    assert task_store.claim_queued(again, worker="w1", hostname="host-1") is None


def test_start_queued_starts_the_oldest_while_fewer_than_the_bound_run(make_local_db):
    from data_pipeline.store import TaskStore

    store = TaskStore(make_local_db())
    store.migrate()
    try:
        def queue(task_id: str, run_queue: str = "local:a") -> str:
            return store.enqueue_execution(task_id, execution_id_base=f"{task_id}_complete_exec", mode="complete",
                                           step_name=None, options={}, run_queue=run_queue)

        other = queue(new_task(store), "local:b")  # another API's queue on the same store
        task_ids = [new_task(store) for _ in range(5)]
        queued = [queue(task_id) for task_id in task_ids]
        assert [store.queue_position(e) for e in queued] == [1, 2, 3, 4, 5]
        assert store.queue_position(other) == 1
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            rounds = list(pool.map(lambda _: store.start_queued(2, "local:a"), range(8)))
        started = [e.execution_id for batch in rounds for e in batch]
        assert sorted(started) == sorted(queued[:2]), "two at most, the oldest first"
        assert [store.queue_position(e) for e in queued[2:]] == [1, 2, 3]
        assert store.finish_execution(queued[0], ExecutionStatus.COMPLETED)
        assert [e.execution_id for e in store.start_queued(2, "local:a")] == [queued[2]]
        assert store.get_task(task_ids[2]).status is TaskStatus.IN_PROGRESS
        assert store.start_queued(2, "local:a") == []
        assert store.get_execution(other).status is ExecutionStatus.QUEUED
        assert [e.execution_id for e in store.start_queued(2, "local:b")] == [other]
    finally:
        store.dispose()


def test_a_delete_meeting_the_start_of_its_queued_task_waits_for_it(task_store):
    """The start (and the end) of an execution locks its row, then its task's: a delete of the task
    in between must wait, not hold the task's row and deadlock."""
    task_id = new_task(task_store)
    execution_id = enqueue(task_store, task_id)
    with task_store.engine.connect() as starting, concurrent.futures.ThreadPoolExecutor(1) as pool:
        with starting.begin():
            starting.execute(text("update dp_task_executions set status = 'running', started_at = now() "
                                  "where execution_id = :e and status = 'queued'"), {"e": execution_id})
            deleting = pool.submit(task_store.delete_task, task_id)
            with task_store.reader.connect() as watcher:
                wait_until(lambda: watcher.execute(text(
                    "select count(*) from pg_stat_activity where datname = current_database() "
                    "and wait_event_type = 'Lock'")).scalar_one(), timeout=10, what="the delete waiting")
            starting.execute(text("update dp_tasks set status = 'in_progress' where task_id = :t"), {"t": task_id})
        assert deleting.result(timeout=10) is False, "the task started: it is not deleted"
    assert task_store.get_task(task_id).status is TaskStatus.IN_PROGRESS
