"""The security tests' application: built in-process (`create_app`) over the session's embedded
server, reached with Flask's test client, so no process boundary is paid where none is the point."""
from __future__ import annotations

import pytest

from config import Settings


def build_app(embedded_pg_dir, root, **overrides):
    from data_pipeline.api import create_app

    settings = Settings(embedded_pg_dir=embedded_pg_dir, training_data_dir=root / "training_data",
                        log_dir=root / "logs", **overrides).validated()
    return create_app(settings, configure_logging=False)


@pytest.fixture(scope="session")
def web_app(embedded_pg_dir, tmp_path_factory):
    """The service on its default settings (no API key)."""
    return build_app(embedded_pg_dir, tmp_path_factory.mktemp("security-app"))


@pytest.fixture
def client(web_app):
    return web_app.test_client()


@pytest.fixture
def training_data_dir(web_app):
    return web_app.extensions["data_pipeline"].settings.training_data_dir


@pytest.fixture
def new_task(client):
    def create(**body) -> str:
        response = client.post("/api/v0/data_pipeline/tasks", json=body)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["data"]["task_id"]
    return create
