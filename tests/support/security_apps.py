"""In-process applications for the connection and credential tests (Flask's test client, real
PostgreSQL): each with its own directories, on the session's embedded server unless told otherwise."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from data_pipeline.tasks.statuses import ACTIVE_TASK_STATUSES
from tests.support import envelope, in_process

TASKS = "/api/v0/data_pipeline/tasks"
# Not ended yet: pending, or with a run waiting (queued, behind DATA_PIPELINE_MAX_RUNNING) or under way.
UNFINISHED = frozenset({"pending", *(str(status) for status in ACTIVE_TASK_STATUSES)})
TABLES = "/api/v0/database/tables"
TABLE_DDL = "/api/v0/database/table/ddl"


def build_app(embedded_pg_dir: Path, root: Path, **overrides):
    """tests/support/in_process.build_app, its root created first."""
    root.mkdir(parents=True, exist_ok=True)
    return in_process.build_app(embedded_pg_dir, root, **overrides)


def socket_dir(url: str) -> str:
    """The socket directory of an embedded-server URL (`...?host=/dir`)."""
    return parse_qs(urlsplit(url).query)["host"][0]


def error_of(response, status: int, code: str) -> dict:
    """The `error` block of tests/support/envelope.error_of's checked envelope."""
    return envelope.error_of(response, status, code)["error"]


def wait_for_task(client, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"{TASKS}/{task_id}").get_json()["data"]
        if task["status"] not in UNFINISHED:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} still running after {timeout} s")


class SilentServer:
    """A TCP server that accepts connections and never answers, counting who came."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
