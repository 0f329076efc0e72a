"""Task execution (guide §3.2): real executor subprocesses, real HTTP, real PostgreSQL.

The steps here are the controlled test steps of tests/support/controlled_steps.py, so each
scenario decides what a step does (sleep, hold, fail, crash) independently of the real steps.
The store's side of each transition is tested on both stores in test_task_store.py; the request
checks that never start an executor run in-process.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time

import pytest

from tests.support.envelope import error_of
from tests.support.in_process import create_task, get_task, training_data_dir
from tests.support.task_runs import (QUICK, STEPS, TASKS, log_lines, make_task, process_exists, release,
                                     run_with_held_step, task_dir, write_control)
from tests.support.waiting import wait_until


@pytest.fixture
def api(embedded_api):
    return embedded_api


def test_complete_workflow_runs_all_steps_in_order(api):
    task_id = make_task(api, db_connection="postgresql://reader:pw-not-shown@127.0.0.1:5432/some_db")
    response = api.execute(task_id, execution_mode="complete")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["code"] == 202 and body["data"]["execution_mode"] == "complete" and body["data"]["step_name"] is None
    assert body["data"]["execution_id"].startswith(f"{task_id}_complete_exec_")
    task = api.wait_for(task_id)
    assert task["status"] == "completed", task
    assert task["step_status"] == {s: "completed" for s in STEPS}
    assert task["started_at"] and task["completed_at"] and task["error_message"] is None
    assert [s["step_name"] for s in task["steps"]] == list(STEPS)
    assert all(s["result"]["test_step"] == s["step_name"] for s in task["steps"])
    assert task["current_step"]["step"] == "training_load" and task["current_step"]["status"] == "completed"
    directory = task_dir(api, task_id)
    for step in STEPS:
        assert json.loads((directory / f"{step}_result.json").read_text())["test_step"] == step
    result = json.loads((directory / "task_result.json").read_text())
    assert result["status"] == "completed" and result["steps"] == {s: "completed" for s in STEPS}
    config = (directory / "task_config.json").read_text()
    assert "pw-not-shown" not in config and "reader:***@" in config
    lines = log_lines(api, task_id)
    for step in STEPS:
        assert any(f"[INFO] {step}.WorkflowOrchestrator: ▶ 开始步骤 {step}" in line for line in lines)
        assert any(f"{step}.ControlledStep: 测试步骤 {step} 完成" in line for line in lines)
        assert any(line.endswith("s") and f"■ 步骤 {step} 完成，耗时" in line for line in lines)


def test_disabled_steps_are_skipped(api):
    task_id = make_task(api, enable_sql_validation=False, enable_training_data_load=False)
    assert api.execute(task_id).status_code == 202
    task = api.wait_for(task_id)
    assert task["status"] == "completed"
    assert task["step_status"] == {"ddl_generation": "completed", "qa_generation": "completed",
                                   "sql_validation": "skipped", "training_load": "skipped"}


def test_failing_step_fails_the_task_and_leaves_later_steps_pending(api):
    task_id = make_task(api, {**QUICK, "qa_generation": {"fail": "主题生成失败: 模拟错误"}})
    api.execute(task_id)
    task = api.wait_for(task_id)
    assert task["status"] == "failed"
    assert task["step_status"] == {"ddl_generation": "completed", "qa_generation": "failed",
                                   "sql_validation": "pending", "training_load": "pending"}
    failed = next(s for s in task["steps"] if s["step_name"] == "qa_generation")
    assert failed["error_message"] == "主题生成失败: 模拟错误"
    assert "qa_generation" in task["error_message"] and "模拟错误" in task["error_message"]
    assert task["error_code"] == "STEP_FAILED" and task["execution"]["error_code"] == "STEP_FAILED"
    # A failed task can be executed again; a successful re-run clears the error.
    write_control(api, task_id, QUICK)
    assert api.execute(task_id).status_code == 202
    task = api.wait_for(task_id)
    assert task["status"] == "completed" and task["error_message"] is None and task["error_code"] is None
    history = api.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"]
    assert [e["error_code"] for e in history] == [None, "STEP_FAILED"]


def test_unexpected_exception_leaves_traceback_in_log(api):
    task_id = make_task(api, {**QUICK, "ddl_generation": {"raise": "意外错误"}})
    api.execute(task_id)
    task = api.wait_for(task_id)
    assert task["status"] == "failed" and "RuntimeError: 意外错误" in task["error_message"]
    assert task["error_code"] == "INTERNAL_ERROR"
    text = "\n".join(log_lines(api, task_id))
    assert "Traceback (most recent call last)" in text
    assert "    Traceback" in text  # continuation lines stay inside their entry


def test_executor_crash_is_reported_with_exit_code(api):
    task_id = make_task(api, {**QUICK, "sql_validation": {"crash": 3}})
    api.execute(task_id)
    task = api.wait_for(task_id, timeout=30)
    assert task["status"] == "failed"
    assert "exit code 3" in task["error_message"] and task["error_code"] == "EXECUTOR_CRASHED"
    assert task["execution"]["exit_code"] == 3 and task["execution"]["error_code"] == "EXECUTOR_CRASHED"
    assert task["step_status"]["sql_validation"] == "failed"
    assert task["step_status"]["training_load"] == "pending"


def test_a_status_read_that_finds_the_crash_first_keeps_its_exit_code(make_app):
    """The reaper thread and a status read (or the API's once-a-second check) race to settle a
    crashed executor: whichever wins records the same exit code. The reaper is held here."""
    import sys
    import threading

    from data_pipeline.tasks import executor_processes

    app = make_app()
    service = app.extensions["data_pipeline"].tasks
    task_id = create_task(app.test_client(), task_name="crash race")
    execution_id = service.store.enqueue_execution(task_id, execution_id_base=f"{task_id}_complete_exec",
                                                   mode="complete", step_name=None, options={})
    assert service.store.claim_queued(execution_id, worker=None, hostname=None)
    reaper_may_settle = threading.Event()
    pid = executor_processes.spawn_executor(
        service.settings, service.directory(task_id), [sys.executable, "-c", "import sys; sys.exit(3)"],
        lambda returncode: reaper_may_settle.wait(30) and service.settle_exit(execution_id, returncode))
    service.store.record_executor(execution_id, pid, executor_processes.HOSTNAME)
    try:
        task = wait_until(lambda: (t := service.get_task(task_id))["status"] == "failed" and t, timeout=20,
                          what="the crash settled by a status read")
    finally:
        reaper_may_settle.set()
    assert task["error_code"] == "EXECUTOR_CRASHED" and "exit code 3" in task["error_message"], task
    assert task["execution"]["exit_code"] == 3, task["execution"]


def test_unreachable_business_database_fails_with_its_code(api):
    task_id = make_task(api, {}, db_connection="postgresql://nobody@127.0.0.1:1/nowhere")
    api.execute(task_id)
    task = api.wait_for(task_id, timeout=60)
    assert task["status"] == "failed" and task["step_status"]["ddl_generation"] == "failed", task
    assert task["error_code"] == "DATABASE_CONNECTION_ERROR", task


def test_a_failed_backup_before_a_truncate_fails_with_vector_backup_failed(embedded_api):
    api = embedded_api
    task_id = make_task(api, {}, truncate_vector_tables=True)
    directory = task_dir(api, task_id)
    (directory / "bss_company.ddl").write_text("create table bss_company (id integer primary key);\n")
    (directory / "vector_bak").write_text("a file where the backup directory goes", encoding="utf-8")
    assert api.execute(task_id, execution_mode="step", step_name="training_load").status_code == 202
    task = api.wait_for(task_id, timeout=60)
    assert task["status"] == "failed" and task["step_status"]["training_load"] == "failed", task
    assert task["error_code"] == "VECTOR_BACKUP_FAILED", task
    assert task["execution"]["error_code"] == "VECTOR_BACKUP_FAILED"


@pytest.mark.parametrize("body, status, code, param", [
    ({"execution_mode": "fast"}, 400, "INVALID_EXECUTION_MODE", "execution_mode"),
    ({"execution_mode": "step"}, 400, "MISSING_STEP_NAME", "step_name"),
    ({"execution_mode": "step", "step_name": "deploy"}, 400, "INVALID_STEP_NAME", "step_name"),
    ({"execution_mode": 1}, 400, "VALIDATION_ERROR", "execution_mode"),
    ({"backup_vector_tables": "true"}, 400, "VALIDATION_ERROR", "backup_vector_tables"),
    ({"execution_mode": "step", "step_name": "qa_generation"}, 400, "STEP_PREREQUISITE_NOT_MET", "step_name"),
    ({"execution_mode": "step", "step_name": "sql_validation"}, 400, "STEP_PREREQUISITE_NOT_MET", "step_name"),
    ({"execution_mode": "step", "step_name": "training_load"}, 400, "STEP_PREREQUISITE_NOT_MET", "step_name"),
])
def test_execute_validation(web_app, client, body, status, code, param):
    task_id = create_task(client, task_name="执行校验")
    (training_data_dir(web_app) / task_id / "table_list.txt").write_text("bss_company\nbss_service_area\n")
    body = error_of(client.post(f"{TASKS}/{task_id}/execute", json=body), status, code, param)
    if code == "STEP_PREREQUISITE_NOT_MET" and "qa_generation" in str(body):
        assert "bss_company.ddl" in body["error"]["details"]
    assert get_task(client, task_id)["status"] == "pending"


def test_execute_without_table_list_and_unknown_task(client):
    task_id = create_task(client, task_name="无表清单")
    error_of(client.post(f"{TASKS}/{task_id}/execute", json={}), 400, "TABLE_LIST_MISSING")
    error_of(client.post(f"{TASKS}/task_20990101_000000/execute", json={}), 404, "TASK_NOT_FOUND")


def test_step_mode_runs_one_step_and_resets_later_ones(api):
    task_id = make_task(api)
    assert api.execute(task_id, execution_mode="step", step_name="ddl_generation").status_code == 202
    task = api.wait_for(task_id)
    assert task["status"] == "partial_completed"
    assert task["step_status"]["ddl_generation"] == "completed"
    assert task["current_step"]["execution_id"].startswith(f"{task_id}_step_ddl_generation_exec_")
    for step in STEPS[1:]:
        assert api.execute(task_id, execution_mode="step", step_name=step).status_code == 202
        task = api.wait_for(task_id)
    assert task["status"] == "completed"
    # Re-running the first step backs up its outputs and makes the later steps stale again.
    directory = task_dir(api, task_id)
    assert api.execute(task_id, execution_mode="step", step_name="ddl_generation").status_code == 202
    task = api.wait_for(task_id)
    assert task["status"] == "partial_completed"
    assert task["step_status"] == {"ddl_generation": "completed", "qa_generation": "pending",
                                   "sql_validation": "pending", "training_load": "pending"}
    backups = sorted(p for p in directory.iterdir() if p.name.startswith("file_bak_"))
    assert backups, list(directory.iterdir())
    assert {"bss_company.ddl", "ddl_generation_result.json"} <= {p.name for p in backups[-1].iterdir()}
    assert not list(directory.glob("*_1"))
    history = api.get(f"{TASKS}/{task_id}/executions").json()["data"]
    assert history["total"] == 5
    assert len({e["execution_id"] for e in history["executions"]}) == 5


def test_twenty_concurrent_executes_start_exactly_one(api):
    task_id = make_task(api, {**QUICK, "ddl_generation": {"hold": "release"}})
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: api.execute(task_id), range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 1, [r.text for r in responses]
    assert statuses.count(409) == 19
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["error_code"] == "TASK_ALREADY_RUNNING"
    error_of(api.delete(f"{TASKS}/{task_id}"), 409, "TASK_ALREADY_RUNNING")
    release(api, task_id)
    assert api.wait_for(task_id)["status"] == "completed"


def test_vector_flags_from_request_override_the_task(api):
    task_id = make_task(api, backup_vector_tables=False)
    api.execute(task_id, truncate_vector_tables=True)
    api.wait_for(task_id)
    execution = api.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"][0]
    assert execution["options"] == {"backup_vector_tables": True, "truncate_vector_tables": True}


def test_progress_is_reported_while_a_step_runs(embedded_api):
    api = embedded_api
    task_id = make_task(api, {**QUICK, "ddl_generation": {"sleep": 1.5}})
    api.execute(task_id)

    def progress_under_way():
        current = api.task(task_id)["current_step"]
        if current and current["progress"] and 0 < current["progress"]["done"] < current["progress"]["total"]:
            return current["progress"]
        return None
    progress = wait_until(progress_under_way, timeout=20, what="progress between 0 and the total")
    assert progress["unit"] == "ticks" and progress["total"] == 15
    assert api.wait_for(task_id)["status"] == "completed"


def test_kill_minus_nine_mid_step_is_seen_within_ten_seconds(embedded_api):
    api = embedded_api
    task_id, pid = run_with_held_step(api, "qa_generation")
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    task = api.wait_for(task_id, statuses=("failed",), timeout=10)
    assert time.monotonic() - killed_at < 10
    assert "executor exited unexpectedly" in task["error_message"] and "SIGKILL" in task["error_message"]
    assert task["error_code"] == "EXECUTOR_KILLED"
    assert task["step_status"]["qa_generation"] == "failed"
    assert "executor exited unexpectedly" in "\n".join(log_lines(api, task_id))
    write_control(api, task_id, QUICK)
    assert api.execute(task_id).status_code == 202
    assert api.wait_for(task_id)["status"] == "completed"


def test_cancel_mid_step(embedded_api):
    api = embedded_api
    idle = make_task(api)
    error_of(api.post(f"{TASKS}/{idle}/cancel"), 409, "TASK_NOT_RUNNING")
    task_id, pid = run_with_held_step(api, "ddl_generation")
    started = time.monotonic()
    response = api.post(f"{TASKS}/{task_id}/cancel")
    assert response.status_code == 200, response.text
    task = api.wait_for(task_id, statuses=("cancelled",), timeout=10)
    assert time.monotonic() - started < 10
    assert task["step_status"]["ddl_generation"] == "cancelled"
    assert task["step_status"]["qa_generation"] == "pending"
    wait_until(lambda: not process_exists(pid), timeout=5, what="executor gone")
    error_of(api.post(f"{TASKS}/{task_id}/cancel"), 409, "TASK_NOT_RUNNING")
    write_control(api, task_id, QUICK)
    assert api.execute(task_id).status_code == 202
    assert api.wait_for(task_id)["status"] == "completed"


def test_api_restart_during_a_run(embedded_api):
    api = embedded_api
    task_id, pid = run_with_held_step(api, "ddl_generation")
    api.restart()
    assert process_exists(pid), "the executor outlives the API"
    assert api.task(task_id)["status"] == "in_progress"
    release(api, task_id)
    task = api.wait_for(task_id, timeout=60)
    assert task["status"] == "completed", task


def test_executor_lost_while_the_api_was_down_is_settled_at_start(embedded_api):
    api = embedded_api
    task_id, pid = run_with_held_step(api, "ddl_generation")
    api.stop()
    os.kill(pid, signal.SIGKILL)
    api.start()
    task = api.task(task_id)
    assert task["status"] == "failed"
    assert "executor exited unexpectedly" in task["error_message"]
