"""Tasks run by a server process's executors, under the controlled test steps
(tests/support/controlled_steps.py): set a task up, steer its steps, watch it run."""
from __future__ import annotations

import json
from pathlib import Path

from tests.support.api_server import ApiServer
from tests.support.controlled_steps import CONTROL_FILE, quick_steps
from tests.support.waiting import wait_until

TASKS = "/api/v0/data_pipeline/tasks"
STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")
QUICK = quick_steps()


def task_dir(api: ApiServer, task_id: str) -> Path:
    return api.training_data_dir / task_id


def write_control(api: ApiServer, task_id: str, control: dict) -> None:
    """What each step does from now on (see controlled_steps)."""
    (task_dir(api, task_id) / CONTROL_FILE).write_text(json.dumps(control), encoding="utf-8")


def release(api: ApiServer, task_id: str, name: str = "release") -> None:
    """Let a step held by `{"hold": name}` go on."""
    (task_dir(api, task_id) / name).write_text("go\n", encoding="utf-8")


def make_task(api: ApiServer, control: dict | None = None, tables=("bss_company", "bss_service_area"),
              **params) -> str:
    """A task with a table list and controlled steps (quick ones unless `control` says otherwise)."""
    task_id = api.create_task(task_name=params.pop("task_name", "执行测试"), **params)
    api.set_table_list(task_id, list(tables))
    write_control(api, task_id, control if control is not None else QUICK)
    return task_id


def executor_pid(api: ApiServer, task_id: str, timeout: float = 10) -> int:
    def recorded():
        history = api.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"]
        return history[0].get("pid") if history else None
    return wait_until(recorded, timeout=timeout, what="executor pid recorded")


def wait_running(api: ApiServer, task_id: str, step: str, timeout: float = 20) -> dict:
    def running():
        task = api.task(task_id)
        return task if task["step_status"][step] == "running" else None
    return wait_until(running, timeout=timeout, what=f"{step} running")


def run_with_held_step(api: ApiServer, step: str) -> tuple[str, int]:
    """A task executing with `step` held until `release(api, task_id)`, once that step runs:
    (task id, executor pid)."""
    task_id = make_task(api, {**QUICK, step: {"hold": "release"}})
    assert api.execute(task_id).status_code == 202
    wait_running(api, task_id, step)
    return task_id, executor_pid(api, task_id)


def process_exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def log_lines(api: ApiServer, task_id: str) -> list[str]:
    return (task_dir(api, task_id) / "data_pipeline.log").read_text(encoding="utf-8").splitlines()
