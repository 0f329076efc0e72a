"""Celery workers for tests: `python -m data_pipeline worker` subprocesses on the machine's Redis.

Each test module that uses workers takes its own Redis database number and empties it at the end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("DATA_PIPELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_db_url(number: int) -> str:
    """The URL of Redis database `number`, checked to answer and to be empty (no one else's)."""
    url = f"{REDIS_URL}/{number}"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"Redis at {REDIS_URL} does not answer: {exc}") from None
    client.flushdb()
    client.close()
    return url


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


class Worker:
    def __init__(self, env: dict[str, str], workdir: Path, name: str, concurrency: int = 1):
        self.name = name
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.output_path = workdir / f"worker-{name.replace('@', '_')}.out"
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace") if self.output_path.exists() else ""

    def start(self, timeout: float = 60) -> "Worker":
        with open(self.output_path, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "data_pipeline", "worker", "--concurrency", str(self.concurrency),
                 "--hostname", self.name], cwd=PROJECT_ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited: {self.output()[-3000:]}")
            if f"{self.name} ready." in self.output():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"worker {self.name} did not start: {self.output()[-3000:]}")

    def kill(self) -> None:
        """kill -9: the worker is lost as if its machine were."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
