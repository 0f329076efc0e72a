"""The local executor's run queue: at most DATA_PIPELINE_MAX_RUNNING runs at a time, the rest
`queued` and started first-in first-out as runs end, also across an API restart.

A real API server with MAX_RUNNING 3, real executor subprocesses running the controlled steps.
"""
from __future__ import annotations

import concurrent.futures
import time

import pytest

from tests.conftest import DatabaseFactory
from tests.support.api_server import ApiServer, server_env
from tests.support.controlled_steps import quick_steps
from tests.support.envelope import error_of
from tests.support.in_process import create_task
from tests.support.task_runs import make_task, release

TASKS = "/api/v0/data_pipeline/tasks"
MAX_RUNNING = 3
QUICK = quick_steps()
FINISHED = ("completed", "failed", "cancelled", "partial_completed")


@pytest.fixture(scope="module")
def queue_api(embedded_pg_dir, local_pg_admin_url, tmp_path_factory):
    """An API with a store of its own: the queue counts every run of its store."""
    root = tmp_path_factory.mktemp("api-queue")
    stores = DatabaseFactory(local_pg_admin_url, "scale_queue_store")
    env = server_env(root, embedded_pg_dir, DATA_PIPELINE_MAX_RUNNING=str(MAX_RUNNING), DATA_PIPELINE_DB_URL=stores())
    server = ApiServer(env, root).start()
    yield server
    try:
        server.close()
    finally:
        stores.drop_all()


def statuses(api) -> dict[str, str]:
    listed = api.get(TASKS, params={"limit": 100}).json()["data"]["tasks"]
    return {task["task_id"]: task["status"] for task in listed}


def started_order(api, task_ids: list[str]) -> list[str]:
    started = {task_id: api.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"][0]["started_at"]
               for task_id in task_ids}
    return sorted(task_ids, key=lambda task_id: started[task_id])


def test_forty_executes_at_once_never_run_more_than_three(queue_api):
    api = queue_api
    task_ids = [make_task(api, QUICK, task_name=f"queue-{n}") for n in range(40)]
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        responses = list(pool.map(api.execute, task_ids))
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses if r.status_code != 202]
    started = [r.json()["data"] for r in responses]
    assert {s["status"] for s in started} <= {"queued", "in_progress"}
    assert sum(s["status"] == "in_progress" for s in started) <= MAX_RUNNING
    positions = sorted(s["queue_position"] for s in started if s["status"] == "queued")
    assert positions and all(isinstance(p, int) and p >= 1 for p in positions)

    most_running, reads = 0, 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        seen = statuses(api)
        running = api.get(TASKS, params={"status": "in_progress", "limit": 100}).json()["data"]["total"]
        one = api.task(task_ids[reads % 40])
        assert one["queue_position"] is None or one["status"] == "queued"
        reads += 1
        in_progress = sum(status == "in_progress" for status in seen.values())
        most_running = max(most_running, in_progress, running)
        assert in_progress <= MAX_RUNNING and running <= MAX_RUNNING, seen
        if all(seen[task_id] in FINISHED for task_id in task_ids):
            break
        time.sleep(0.1)
    final = statuses(api)
    assert [final[task_id] for task_id in task_ids] == ["completed"] * 40, final
    assert most_running >= 2  # the bound was reached, not run one at a time
    for task_id in task_ids:
        text = (api.training_data_dir / task_id / "data_pipeline.log").read_text(encoding="utf-8")
        assert "too many clients" not in text


def test_queue_is_first_in_first_out_cancel_delete_reexecute_and_restart(queue_api):
    api = queue_api
    blockers = [make_task(api, {**QUICK, "ddl_generation": {"hold": "release"}}) for _ in range(MAX_RUNNING)]
    for task_id in blockers:
        assert api.execute(task_id).json()["data"]["status"] == "in_progress"
    waiting = [make_task(api, QUICK, task_name=f"fifo-{n}") for n in range(5)]
    for position, task_id in enumerate(waiting, 1):
        started = api.execute(task_id).json()["data"]
        assert started["status"] == "queued" and started["queue_position"] == position, started
    task = api.task(waiting[2])
    assert task["status"] == "queued" and task["queue_position"] == 3
    assert task["step_status"] == {s: "pending" for s in QUICK}
    error_of(api.execute(waiting[2]), 409, "TASK_ALREADY_RUNNING")

    cancelled = api.post(f"{TASKS}/{waiting[1]}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["data"]["status"] == "cancelled", cancelled.text
    assert api.task(waiting[2])["queue_position"] == 2
    deleted = api.delete(f"{TASKS}/{waiting[3]}")
    assert deleted.status_code == 200 and deleted.json()["data"]["deleted"] is True
    error_of(api.get(f"{TASKS}/{waiting[3]}"), 404, "TASK_NOT_FOUND")
    assert api.task(waiting[4])["queue_position"] == 3

    api.restart()  # the queue lives in the store: it goes on after a restart
    assert api.task(waiting[0])["status"] == "queued"
    assert [api.task(task_id)["queue_position"] for task_id in (waiting[0], waiting[2], waiting[4])] == [1, 2, 3]
    for task_id in blockers:
        release(api, task_id)
    remaining = [waiting[0], waiting[2], waiting[4]]
    for task_id in blockers + remaining:
        assert api.wait_for(task_id, timeout=120)["status"] == "completed"
    assert api.task(waiting[1])["status"] == "cancelled"
    assert started_order(api, remaining) == remaining
    history = api.get(f"{TASKS}/{waiting[1]}/executions").json()["data"]["executions"]
    assert history[0]["status"] == "cancelled" and history[0]["started_at"] is None and history[0]["pid"] is None


def test_cancel_and_delete_of_a_queued_task_never_start_it_first(make_app):
    """With a run slot free and nothing watching the queue (no serving API), a cancel or a delete
    of a queued task takes it out of the queue; it does not start it and then stop it (or refuse)."""
    app = make_app()
    client, service = app.test_client(), app.extensions["data_pipeline"].tasks

    def queued_task(name: str) -> tuple[str, str]:
        task_id = create_task(client, task_name=name)
        execution_id = service.store.enqueue_execution(
            task_id, execution_id_base=f"{task_id}_complete_exec", mode="complete", step_name=None, options={},
            run_queue=service.run_queue)
        return task_id, execution_id

    task_id, execution_id = queued_task("cancel while queued")
    cancelled = client.post(f"{TASKS}/{task_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["data"]["status"] == "cancelled", cancelled.json
    execution = service.store.get_execution(execution_id)
    assert execution.status == "cancelled" and execution.started_at is None and execution.pid is None

    task_id, execution_id = queued_task("delete while queued")
    deleted = client.delete(f"{TASKS}/{task_id}")
    assert deleted.status_code == 200 and deleted.get_json()["data"]["deleted"] is True, deleted.json
    assert service.store.get_execution(execution_id) is None
