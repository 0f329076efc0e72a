"""Execution latencies (issue 3).

  - execute request -> the executor's first line in the task log (target < 1 s);
  - executor exit -> the status showing it: a normal finish, a kill -9 while the API that started
    it runs (reaped at once), and a kill -9 after an API restart (found by the next status read)
    (target < 3 s).

Runs a real server on a private embedded PostgreSQL with the controlled test steps, so the steps
themselves take no time.

    .venv/bin/python bench/bench_execution.py [--runs 10]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline.db import embedded_pg  # noqa: E402
from tests.support.api_server import ApiServer, own_directories_env  # noqa: E402

QUICK = {"ddl_generation": {}, "qa_generation": {}, "sql_validation": {}, "training_load": {}}


def new_task(server: ApiServer, control: dict) -> str:
    task_id = server.create_task(task_name="bench")
    server.set_table_list(task_id, ["bss_company"])
    (server.training_data_dir / task_id / "test_control.json").write_text(json.dumps(control))
    return task_id


def first_log_latency(server: ApiServer) -> float:
    task_id = new_task(server, QUICK)
    log = server.training_data_dir / task_id / "data_pipeline.log"
    before = log.stat().st_size
    started = time.perf_counter()
    assert server.execute(task_id).status_code == 202
    while log.stat().st_size == before:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    server.wait_for(task_id)
    return elapsed


def wait_status(server: ApiServer, task_id: str, statuses: tuple[str, ...]) -> float:
    started = time.perf_counter()
    while server.task(task_id)["status"] not in statuses:
        time.sleep(0.01)
    return time.perf_counter() - started


def executor_pid(server: ApiServer, task_id: str, running_step: str | None = None) -> int:
    while True:
        history = server.get(f"/api/v0/data_pipeline/tasks/{task_id}/executions").json()["data"]["executions"]
        if history and history[0]["pid"] and (
                running_step is None or server.task(task_id)["step_status"][running_step] == "running"):
            return history[0]["pid"]
        time.sleep(0.002)


def finish_latency(server: ApiServer) -> float:
    task_id = new_task(server, QUICK)
    server.execute(task_id)
    pid = executor_pid(server, task_id)
    while Path(f"/proc/{pid}").exists() and _state(pid) not in ("Z", "X"):
        time.sleep(0.002)
    return wait_status(server, task_id, ("completed",))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "X"


def kill_latency(server: ApiServer, restart_first: bool) -> float:
    task_id = new_task(server, {**QUICK, "ddl_generation": {"sleep": 60}})
    server.execute(task_id)
    pid = executor_pid(server, task_id, running_step="ddl_generation")
    if restart_first:
        server.restart()
    os.kill(pid, signal.SIGKILL)
    return wait_status(server, task_id, ("failed",))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dp-bench-exec-"))
    try:
        env = own_directories_env(root, DATA_PIPELINE_STEP_MODULES="tests.support.controlled_steps")
        server = ApiServer(env, root).start()
        try:
            first = [first_log_latency(server) for _ in range(args.runs)]
            finished = [finish_latency(server) for _ in range(args.runs)]
            reaped = [kill_latency(server, restart_first=False) for _ in range(max(3, args.runs // 2))]
            orphaned = [kill_latency(server, restart_first=True) for _ in range(3)]
        finally:
            server.stop()
    finally:
        embedded_pg.release()
        shutil.rmtree(root, ignore_errors=True)

    def line(label: str, values: list[float], target: float) -> None:
        print(f"{label:52s} median {statistics.median(values) * 1000:7.1f} ms  max {max(values) * 1000:7.1f} ms"
              f"  (n={len(values)}, target < {target:.0f} s)")

    line("execute -> executor's first task-log line", first, 1)
    line("executor exit (finished) -> status completed", finished, 3)
    line("kill -9 (API is the parent) -> status failed", reaped, 3)
    line("kill -9 after an API restart -> status failed", orphaned, 3)


if __name__ == "__main__":
    main()
