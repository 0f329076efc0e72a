"""TaskStore's status transitions in-process, on a real database of each server (`task_store`):
the store's half of what tests/test_execution.py shows through executors and HTTP.

Every change is a conditional UPDATE: exactly one of concurrent claims wins, an execution ends
exactly once, and a settled execution's late writes change nothing.
"""
from __future__ import annotations

import concurrent.futures
import uuid

from data_pipeline.tasks.statuses import STEP_NAMES, ExecutionStatus, StepStatus, TaskStatus


def new_task(store, **parameters) -> str:
    base = f"task_store_{uuid.uuid4().hex[:10]}"
    return store.create_task(task_id_base=base, task_name="状态迁移", created_by="tester", db_name="highway_db",
                             business_context=None, db_connection=None, parameters=parameters).task_id


def claim(store, task_id: str, mode: str = "complete", step_name: str | None = None) -> str | None:
    return store.claim_for_execution(task_id, execution_id_base=f"{task_id}_{mode}_exec", mode=mode,
                                     step_name=step_name, options={"backup_vector_tables": False})


def step_status(store, task_id: str) -> dict[str, StepStatus]:
    return {step.step_name: step.status for step in store.get_task(task_id).steps}


def run_steps(store, task_id: str, execution_id: str, names=STEP_NAMES) -> None:
    for name in names:
        assert store.start_step(task_id, name, execution_id)
        assert store.finish_step(task_id, name, StepStatus.COMPLETED, execution_id=execution_id,
                                 result={"step": name})


def test_a_new_task_is_pending_with_four_pending_steps_and_ids_take_the_next_suffix(task_store):
    base = f"task_store_{uuid.uuid4().hex[:10]}"
    ids = [task_store.create_task(task_id_base=base, task_name=None, created_by="tester", db_name=None,
                                  business_context=None, db_connection=None, parameters={}).task_id
           for _ in range(3)]
    assert ids == [base, f"{base}_2", f"{base}_3"]
    task = task_store.get_task(ids[0])
    assert task.status is TaskStatus.PENDING and task.current_execution_id is None
    assert [s.step_name for s in task.steps] == list(STEP_NAMES)
    assert {s.status for s in task.steps} == {StepStatus.PENDING}


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
