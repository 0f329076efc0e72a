"""Celery workers on the machine's Redis (DATA_PIPELINE_EXECUTOR=celery): the API enqueues, two
worker processes with different names run the tasks through the same executor.

The tasks run the controlled quick steps (tests/support/controlled_steps.py), not the demo
database's real steps: eight real demo runs would take minutes of the suite's five; the real
steps run the same way in bench/bench_workers.py.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.conftest import DatabaseFactory
from tests.support.api_server import ApiServer, server_env
from tests.support.controlled_steps import quick_steps
from tests.support.workers import Worker, flush, redis_db_url
from tests.support.envelope import error_of
from tests.support.in_process import create_task, get_task, training_data_dir
from tests.support.task_runs import executor_pid, make_task, process_exists, release, wait_running, write_control
from tests.support.waiting import wait_until

TASKS = "/api/v0/data_pipeline/tasks"
QUICK = quick_steps()
REDIS_DB = 13
WORKERS = ("alpha@test-host", "beta@test-host")
HEARTBEAT_TIMEOUT = 3


@pytest.fixture(scope="module")
def cluster(embedded_pg_dir, local_pg_admin_url, tmp_path_factory):
    """The API and two workers sharing a store of their own (no local-executor API of another
    test may start their queued runs), the broker and the training data directory."""
    root = tmp_path_factory.mktemp("api-celery")
    broker = redis_db_url(REDIS_DB)
    stores = DatabaseFactory(local_pg_admin_url, "scale_celery_store")
    env = server_env(root, embedded_pg_dir, DATA_PIPELINE_EXECUTOR="celery", DATA_PIPELINE_BROKER_URL=broker,
                     DATA_PIPELINE_HEARTBEAT_TIMEOUT_SECONDS=str(HEARTBEAT_TIMEOUT), DATA_PIPELINE_DB_URL=stores())
    api = ApiServer(env, root).start()
    api.workers = {name: Worker(env, root, name) for name in WORKERS}
    try:
        for worker in api.workers.values():
            worker.start()
        yield api
    finally:
        for worker in api.workers.values():
            worker.stop()
        try:
            api.close()
        finally:
            flush(broker)
            stores.drop_all()


def executions(api, task_id: str) -> list[dict]:
    return api.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"]


def test_eight_tasks_run_on_both_workers(cluster):
    api = cluster
    task_ids = [make_task(api, {**QUICK, "ddl_generation": {"sleep": 1}}) for _ in range(8)]
    for task_id in task_ids:
        started = api.execute(task_id)
        assert started.status_code == 202 and started.json()["data"]["status"] == "queued", started.text
    ran_on = set()
    for task_id in task_ids:
        task = api.wait_for(task_id, timeout=120)
        assert task["status"] == "completed", task
        execution = task["execution"]
        assert execution["worker"] in WORKERS and execution["pid"] and execution["hostname"], execution
        ran_on.add(execution["worker"])
        assert f"执行器进程已启动 (pid {execution['pid']})" in (
            api.training_data_dir / task_id / "data_pipeline.log").read_text(encoding="utf-8")
    assert ran_on == set(WORKERS)


def test_same_message_delivered_twice_runs_once(cluster):
    from config import Settings
    from data_pipeline.workers.celery_app import send_execution

    api = cluster
    task_id = make_task(api, {**QUICK, "ddl_generation": {"sleep": 1}})
    execution_id = api.execute(task_id).json()["data"]["execution_id"]
    send_execution(Settings.from_env({"DATA_PIPELINE_BROKER_URL": api.env["DATA_PIPELINE_BROKER_URL"]}),
                   execution_id)
    assert api.wait_for(task_id)["status"] == "completed"
    wait_until(lambda: any(f"执行 {execution_id} 不在队列中" in w.output() for w in api.workers.values()),
               timeout=20, interval=0.2, what="the second delivery ignored")
    assert sum(w.output().count(f"执行 {execution_id} 不在队列中") for w in api.workers.values()) == 1
    assert len(executions(api, task_id)) == 1
    log = (api.training_data_dir / task_id / "data_pipeline.log").read_text(encoding="utf-8")
    assert log.count("执行器进程已启动") == 1 and log.count("▶ 开始步骤 ddl_generation") == 1


def test_cancel_running_and_queued_tasks(cluster):
    api = cluster
    running = [make_task(api, {**QUICK, "ddl_generation": {"hold": "release"}}) for _ in WORKERS]
    for task_id in running:
        api.execute(task_id)
    for task_id in running:
        wait_running(api, task_id, "ddl_generation", timeout=30)
    waiting = make_task(api, QUICK)
    queued = api.execute(waiting).json()["data"]
    assert queued["status"] == "queued"
    error_of(api.execute(waiting), 409, "TASK_ALREADY_RUNNING")
    cancelled = api.post(f"{TASKS}/{waiting}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled"

    pids = [executor_pid(api, task_id) for task_id in running]
    started = time.monotonic()
    for task_id in running:
        assert api.post(f"{TASKS}/{task_id}/cancel").status_code == 200
    for task_id, pid in zip(running, pids):
        task = api.wait_for(task_id, statuses=("cancelled",), timeout=15)
        assert task["step_status"]["ddl_generation"] == "cancelled"
        wait_until(lambda: not process_exists(pid), timeout=max(0.0, 15 - (time.monotonic() - started)),
                   interval=0.1, what=f"executor {pid} gone")
    # A freed worker took the cancelled task's message and ignored it.
    wait_until(lambda: any(f"执行 {queued['execution_id']} 不在队列中" in w.output() for w in api.workers.values()),
               timeout=15, interval=0.2, what="the cancelled task's message ignored")
    history = executions(api, waiting)
    assert len(history) == 1 and history[0]["status"] == "cancelled" and history[0]["worker"] is None
    assert api.task(waiting)["status"] == "cancelled"


def test_api_restart_while_workers_run(cluster):
    api = cluster
    task_id = make_task(api, {**QUICK, "ddl_generation": {"hold": "release"}})
    api.execute(task_id)
    wait_running(api, task_id, "ddl_generation", timeout=30)
    api.restart()
    assert api.task(task_id)["status"] == "in_progress"
    release(api, task_id)
    task = api.wait_for(task_id, timeout=60)
    assert task["status"] == "completed" and task["execution"]["worker"] in WORKERS


def test_kill_minus_nine_of_a_run_on_a_worker(cluster):
    api = cluster
    task_id = make_task(api, {**QUICK, "qa_generation": {"hold": "release"}})
    api.execute(task_id)
    wait_running(api, task_id, "qa_generation", timeout=30)
    os.kill(executor_pid(api, task_id), signal.SIGKILL)
    killed = time.monotonic()
    task = api.wait_for(task_id, statuses=("failed",), timeout=45)
    assert time.monotonic() - killed < 45
    assert task["error_code"] == "EXECUTOR_KILLED" and "SIGKILL" in task["error_message"], task
    assert task["step_status"]["qa_generation"] == "failed"
    write_control(api, task_id, QUICK)
    assert api.execute(task_id).status_code == 202
    assert api.wait_for(task_id, timeout=60)["status"] == "completed"


def test_an_unreachable_broker_fails_the_execute_with_503(make_app):
    app = make_app(executor="celery", broker_url="redis://:broker-secret@127.0.0.1:1/0")
    client = app.test_client()
    task_id = create_task(client, task_name="no broker")
    (training_data_dir(app) / task_id / "table_list.txt").write_text("bss_company\n", encoding="utf-8")
    response = client.post(f"{TASKS}/{task_id}/execute", json={})
    body = error_of(response, 503, "BROKER_UNAVAILABLE")
    assert "broker-secret" not in response.get_data(as_text=True), body
    task = get_task(client, task_id)
    assert task["status"] == "failed" and task["error_code"] == "BROKER_UNAVAILABLE"
    assert client.post(f"{TASKS}/{task_id}/execute", json={}).status_code == 503, "a failed task may be retried"


def test_a_run_whose_task_directory_cannot_be_made_fails_at_once(make_app):
    """Not after the heartbeat timeout as a lost worker: the worker could not start the executor."""
    from data_pipeline.workers.worker import run_execution

    app = make_app()
    service = app.extensions["data_pipeline"].tasks
    task_id = create_task(app.test_client(), task_name="no directory")
    execution_id = service.store.enqueue_execution(task_id, execution_id_base=f"{task_id}_complete_exec",
                                                   mode="complete", step_name=None, options={})
    directory = service.directory(task_id)
    directory.rename(directory.with_name(f"{task_id}.moved"))
    directory.write_text("a file where the task directory goes", encoding="utf-8")
    assert run_execution(service, execution_id, "gamma@test-host") == "failed"
    execution = service.store.get_execution(execution_id)
    assert (execution.status, execution.error_code) == ("failed", "EXECUTOR_NOT_STARTED"), execution
    assert get_task(app.test_client(), task_id)["error_code"] == "EXECUTOR_NOT_STARTED"


def test_kill_minus_nine_of_a_whole_worker(cluster):
    """Last in the module: it loses a worker (the other one takes the re-execute)."""
    api = cluster
    task_id = make_task(api, {**QUICK, "ddl_generation": {"hold": "release"}})
    api.execute(task_id)
    wait_running(api, task_id, "ddl_generation", timeout=30)
    holder = api.task(task_id)["execution"]["worker"]
    pid = executor_pid(api, task_id)
    api.workers[holder].kill()
    killed = time.monotonic()
    task = api.wait_for(task_id, statuses=("failed",), timeout=45)
    assert time.monotonic() - killed < 45
    assert task["error_code"] == "WORKER_LOST" and f"worker {holder} lost" in task["error_message"], task
    assert task["step_status"]["ddl_generation"] == "failed"
    wait_until(lambda: not process_exists(pid), timeout=10, interval=0.1,
               what="the run gone with its worker")
    write_control(api, task_id, QUICK)
    assert api.execute(task_id).status_code == 202
    task = api.wait_for(task_id, timeout=60)
    assert task["status"] == "completed" and task["execution"]["worker"] != holder
