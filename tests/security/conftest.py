"""The security tests' application: the in-process service of tests/conftest.py (`web_app`,
`client`, `make_app`; `build_app` from tests/support/in_process.py), so no process boundary is paid
where none is the point."""
from __future__ import annotations

import pytest

from tests.support.in_process import build_app, create_task, training_data_dir as app_training_data_dir

__all__ = ["build_app"]


@pytest.fixture
def training_data_dir(web_app):
    return app_training_data_dir(web_app)


@pytest.fixture
def new_task(client):
    def create(**body) -> str:
        return create_task(client, **body)
    return create
