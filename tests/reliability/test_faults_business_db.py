"""The business database stopped mid-step: a PostgreSQL this session started itself (see
tests/support/pg_cluster.py), reached with a password, stopped while a real step works on it.

Each run ends with a true status (the step fails: it could not do its whole job) and a clear
error that names the database without its password; the user's pair file is untouched; once the
database is back the step runs again.
"""
from __future__ import annotations

import json

import pytest

from tests.reliability.conftest import DB_PASSWORD, new_task, run_step, step_frozen, task_dir, upload
from tests.reliability.test_faults_executor import BROKEN_PAIR, VALID_PAIRS, pair_file_bytes

PAIR_FILE = "qs_highway_rel_20240101_000000_pair.json"
REPAIRED_SQL = "SELECT oper_date, SUM(pay_sum) FROM bss_business_day_data GROUP BY oper_date"


@pytest.fixture
def database_comes_back(business_pg):
    yield business_pg
    if not business_pg.is_running():
        business_pg.start()


def masked(url: str) -> str:
    return url.replace(DB_PASSWORD, "***")


@pytest.fixture
def repairing_llm(gated):
    """The LLM answers every repair with a correct SQL (which must then pass EXPLAIN)."""
    gated.chat_answer = json.dumps({"sql": REPAIRED_SQL})
    yield gated
    gated.chat_answer = "{}"


def test_stopped_during_sql_validation_fails_the_step_and_keeps_the_pair_file(
        gated_server, repairing_llm, business_db_url, database_comes_back):
    server, cluster, gated = gated_server, database_comes_back, repairing_llm
    task_id = new_task(server, db_connection=business_db_url)
    original = pair_file_bytes(VALID_PAIRS + [BROKEN_PAIR])
    assert upload(server, task_id, PAIR_FILE, original).status_code == 200

    # Frozen while the LLM repairs the broken SQL; the repaired SQL is checked on a stopped server.
    with step_frozen(server, gated, task_id, "sql_validation"):
        cluster.stop("fast")
    task = server.wait_for(task_id, timeout=60)
    assert task["status"] == "failed", task
    assert task["step_status"]["sql_validation"] == "failed"
    assert "不可用" in task["error_message"] and "SQL验证中止" in task["error_message"], task["error_message"]
    assert masked(business_db_url) in task["error_message"]
    directory = task_dir(server, task_id)
    assert (directory / PAIR_FILE).read_bytes() == original
    assert not list(directory.glob("*.backup*")), "nothing was rewritten, so nothing needs a backup"

    cluster.start()
    task = run_step(server, task_id, "sql_validation")
    assert task["step_status"]["sql_validation"] == "completed", task
    # The repaired pair is written into the file; the original is kept beside it.
    assert (directory / f"{PAIR_FILE}.backup").read_bytes() == original
    assert json.loads((directory / PAIR_FILE).read_text(encoding="utf-8")) == \
        VALID_PAIRS + [{**BROKEN_PAIR, "sql": REPAIRED_SQL}]


def test_stopped_during_ddl_generation_fails_the_step(gated_server, gated, business_db_url, database_comes_back):
    """Tables already documented when the database stops are kept, but the step does not pass an
    incomplete schema on as `completed`: it fails, saying the connection was lost."""
    server, cluster = gated_server, database_comes_back
    task_id = new_task(server, db_connection=business_db_url)
    with step_frozen(server, gated, task_id, "ddl_generation"):   # 4 tables sampled, held in the LLM
        cluster.stop("fast")
    task = server.wait_for(task_id, timeout=60)
    assert task["status"] == "failed" and task["step_status"]["ddl_generation"] == "failed", task
    assert "业务数据库连接中断" in task["error_message"], task["error_message"]
    assert DB_PASSWORD not in task["error_message"]

    cluster.start()
    task = run_step(server, task_id, "ddl_generation")
    assert task["step_status"]["ddl_generation"] == "completed", task
    assert len(list(task_dir(server, task_id).glob("*.ddl"))) == 7


def test_down_before_the_step_is_a_clear_connection_error(gated_server, business_db_url, database_comes_back):
    server, cluster = gated_server, database_comes_back
    task_id = new_task(server, db_connection=business_db_url)
    cluster.stop("fast")
    task = run_step(server, task_id, "ddl_generation")
    assert task["status"] == "failed"
    assert "无法连接数据库" in task["error_message"] and masked(business_db_url) in task["error_message"]

    listed = server.post("/api/v0/database/tables", json={"db_connection": business_db_url})
    assert listed.status_code == 500
    error = listed.json()["error"]
    assert error["error_code"] == "DATABASE_CONNECTION_ERROR" and masked(business_db_url) in error["details"]
