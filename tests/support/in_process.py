"""The service in-process: `create_app(Settings(...))` reached with Flask's test client.

No server process and no socket: a request costs a function call. Use it wherever the process
boundary is not the point (the envelope, validation, 404/405/413, OpenAPI, the store's answers);
keep `ApiServer` (tests/support/api_server.py) for executors, restarts, signals and the browser.
"""
from __future__ import annotations

import io
from pathlib import Path

from flask import Flask

from config import Settings

TASKS = "/api/v0/data_pipeline/tasks"


def build_app(embedded_pg_dir: Path, root: Path, **overrides) -> Flask:
    """An app with its own task directories and logs under `root`, its store on the embedded server
    of `embedded_pg_dir` (or `db_url=`; the session stops that server, so no executor does), and any
    other `Settings` field overridden. Logging is left
    alone: the test process's handlers are pytest's."""
    from data_pipeline.api import create_app

    fields = {"embedded_pg_dir": embedded_pg_dir, "embedded_pg_keep_running": True,
              "training_data_dir": root / "training_data", "log_dir": root / "logs", **overrides}
    settings = Settings(**fields).validated()
    return create_app(settings, configure_logging=False)


def close_app(app: Flask) -> None:
    """Give back the store's pooled connections (a session builds many apps on one server)."""
    app.extensions["data_pipeline"].store.dispose()


def training_data_dir(app: Flask) -> Path:
    return app.extensions["data_pipeline"].settings.training_data_dir


def create_task(client, **body) -> str:
    """Create a task through the API and return its id."""
    response = client.post(TASKS, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["data"]["task_id"]


def get_task(client, task_id: str) -> dict:
    response = client.get(f"{TASKS}/{task_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["data"]


def upload(client, path: str, name: str, content: bytes, field: str = "file"):
    """A multipart upload of `content` as file `name` in form field `field`."""
    return client.post(path, data={field: (io.BytesIO(content), name)}, content_type="multipart/form-data")
