"""A real API server for tests: `python unified_api.py` in a subprocess, reached over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def own_directories_env(root: Path, embedded_pg_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """Settings of a server whose task directories and logs are its own, under `root`, on the
    embedded PostgreSQL of `embedded_pg_dir` (its own `root/pg` unless given); the benchmarks'."""
    return {
        "DATA_PIPELINE_TRAINING_DATA_DIR": str(root / "training_data"),
        "DATA_PIPELINE_LOG_DIR": str(root / "logs"),
        "DATA_PIPELINE_EMBEDDED_PG_DIR": str(embedded_pg_dir or root / "pg"),
        **extra,
    }


def server_env(root: Path, embedded_pg_dir: Path, **extra: str) -> dict[str, str]:
    """Settings of a test server: its own directories under `root`, the session's embedded
    PostgreSQL (the session stops it; no process of the server does when it ends), executors
    loading the controlled test steps (the real steps where a task has no control), quick
    heartbeats and cancels, and no LLM unless `extra` names one (whatever a `.env` of the checkout
    says)."""
    return {
        **own_directories_env(root, embedded_pg_dir),
        "DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING": "1",
        "DATA_PIPELINE_STEP_MODULES": "tests.support.controlled_steps",
        "DATA_PIPELINE_HEARTBEAT_SECONDS": "0.5",
        "DATA_PIPELINE_CANCEL_GRACE_SECONDS": "3",
        "LLM_BASE_URL": "",
        "LLM_MODEL": "",
        # Room for every test's concurrent runs; tests/test_run_queue.py sets its own bound.
        "DATA_PIPELINE_MAX_RUNNING": "8",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiServer:
    def __init__(self, env: dict[str, str], workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.env = {**os.environ, **env, "DATA_PIPELINE_HOST": "127.0.0.1", "DATA_PIPELINE_PORT": str(self.port),
                    "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen | None = None
        self.session = requests.Session()
        api_key = env.get("DATA_PIPELINE_API_KEY")
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    @property
    def api_key(self) -> str | None:
        return self.env.get("DATA_PIPELINE_API_KEY") or None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def training_data_dir(self) -> Path:
        return Path(self.env["DATA_PIPELINE_TRAINING_DATA_DIR"])

    @property
    def log_dir(self) -> Path:
        return Path(self.env["DATA_PIPELINE_LOG_DIR"])

    def start(self, timeout: float = 60) -> "ApiServer":
        output = open(self.workdir / f"server-{self.port}.out", "ab")
        self.process = subprocess.Popen([sys.executable, "unified_api.py"], cwd=PROJECT_ROOT, env=self.env,
                                        stdout=output, stderr=subprocess.STDOUT)
        output.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"API server exited with {self.process.returncode}: "
                                   f"{(self.workdir / f'server-{self.port}.out').read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/api/v0/health", timeout=1).status_code in (200, 401):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("API server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def assert_nothing_left_running(self, timeout: float = 60) -> None:
        """No task of this server may end in_progress: wait for running ones, then check."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.get("/api/v0/data_pipeline/tasks", params={"status": "in_progress", "limit": 100})
            assert running.status_code == 200, running.text
            if running.json()["data"]["total"] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"tasks left in_progress: {running.json()['data']['tasks']}")
            time.sleep(0.5)

    def close(self) -> None:
        """Stop the server after checking that no task was left running (stopped even when not)."""
        try:
            self.assert_nothing_left_running()
        finally:
            self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # ---- task helpers ----------------------------------------------------------------------

    def create_task(self, **params) -> str:
        response = self.post("/api/v0/data_pipeline/tasks", json=params)
        assert response.status_code == 201, response.text
        return response.json()["data"]["task_id"]

    def task(self, task_id: str) -> dict:
        response = self.get(f"/api/v0/data_pipeline/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def set_table_list(self, task_id: str, tables: list[str]) -> None:
        (self.training_data_dir / task_id / "table_list.txt").write_text("\n".join(tables) + "\n", encoding="utf-8")

    def execute(self, task_id: str, **body) -> requests.Response:
        return self.post(f"/api/v0/data_pipeline/tasks/{task_id}/execute", json=body)

    def wait_for(self, task_id: str, statuses=("completed", "failed", "cancelled", "partial_completed"),
                 timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.task(task_id)
            if task["status"] in statuses:
                return task
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} did not reach {statuses}: {self.task(task_id)}")
