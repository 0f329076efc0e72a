"""Issue 14 item 8 (the 500s): inputs that answered 500 with a traceback in app.log now get a clear
4xx naming the parameter, and nothing is logged as an unexpected error. (A malformed db_connection
and a database that does not exist: test_connection_policy.py.)"""
from __future__ import annotations

import logging

import pytest

from tests.support.security_apps import TABLES, TASKS, build_app


@pytest.fixture(scope="module")
def app(embedded_pg_dir, tmp_path_factory):
    return build_app(embedded_pg_dir, tmp_path_factory.mktemp("no-500"))


def no_traceback_logged(caplog) -> None:
    unexpected = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR and "unexpected" in r.message]
    assert not unexpected, [r.getMessage() for r in unexpected]


@pytest.mark.parametrize("depth", [400, 700, 1000])
def test_deeply_nested_json(app, caplog, depth):
    body = '{"task_name": ' + "[" * depth + "]" * depth + "}"
    for path in (TASKS, TABLES):
        response = app.test_client().post(path, data=body, content_type="application/json")
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
    no_traceback_logged(caplog)


@pytest.mark.parametrize("name", ["a" * 1024, "x/" * 511 + "t", ("d" * 255 + "/") * 4])
def test_a_very_long_table_list_file(app, caplog, name):
    response = app.test_client().post(TASKS, json={"table_list_file": name[:1024]})
    body = response.get_json()
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert body["error"]["invalid_params"] == ["table_list_file"]
    assert body["error"]["error_code"] in ("INVALID_FILE_PATH", "FILE_NOT_FOUND")
    no_traceback_logged(caplog)
