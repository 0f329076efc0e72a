"""kill -9 of the executor in each of the four real steps.

Each step is frozen at a known point by holding back the fake LLM's (or embedding service's)
answer, then its executor is killed with SIGKILL. Every time: the task ends `failed` with the
reason, the step `failed`, later steps `pending`; no user file is lost (a file the step moved
aside is in file_bak_<ts>/ byte for byte); no vector row is lost (the interrupted load leaves
nothing half-written, rows of other tasks stay, a truncated table's rows are in the verified
backup); and the task can be executed again.
"""
from __future__ import annotations

import csv
import json
import os
import signal

import psycopg
import pytest

from tests.reliability.conftest import (executor_pid, files_snapshot, new_task, run_step,
                                        step_frozen, task_dir, upload)
from tests.reliability.llm_gate import GatedLLM

VALID_PAIRS = [
    {"question": "有多少家公司？", "sql": "SELECT COUNT(*) FROM bss_company WHERE delete_ts IS NULL"},
    {"question": "服务区有哪些？", "sql": "SELECT service_area_name FROM bss_service_area LIMIT 10"},
    {"question": "每家公司的服务区数量", "sql": "SELECT c.company_name, COUNT(*) FROM bss_service_area a "
                                       "JOIN bss_company c ON c.id = a.company_id GROUP BY c.company_name"},
]
BROKEN_PAIR = {"question": "按天统计营收", "sql": "SELECT oper_date, SUM(pay_sum_wrong) FROM bss_business_day_data "
                                           "GROUP BY oper_date"}


def pair_file_bytes(pairs: list[dict]) -> bytes:
    return json.dumps(pairs, ensure_ascii=False, indent=2).encode("utf-8")


@pytest.fixture
def server(gated_server):
    return gated_server


def kill_mid_step(server, llm: GatedLLM, task_id: str, step: str, hold_after: int = 0) -> dict:
    """Start `step`, wait until it waits for a held answer, SIGKILL its executor; the settled task."""
    with step_frozen(server, llm, task_id, step, hold_after):
        os.kill(executor_pid(server, task_id), signal.SIGKILL)
        task = server.wait_for(task_id, statuses=("failed",), timeout=15)
    assert "SIGKILL" in task["error_message"], task
    assert task["step_status"][step] == "failed"
    steps = list(task["step_status"])
    assert all(task["step_status"][later] == "pending" for later in steps[steps.index(step) + 1:])
    failed_step = next(s for s in task["steps"] if s["step_name"] == step)
    assert "SIGKILL" in failed_step["error_message"]
    # The reason is also in the task log, where an operator looks first.
    assert "SIGKILL" in (task_dir(server, task_id) / "data_pipeline.log").read_text(encoding="utf-8")
    return task


def copies_of(directory, name: str, content: bytes) -> list[str]:
    """Where in the task directory a file with this name and exactly this content is."""
    return [str(p.relative_to(directory)) for p in directory.rglob(name) if p.read_bytes() == content]


def test_kill_during_ddl_generation_keeps_the_users_ddl(server, gated, business_db_url):
    task_id = new_task(server, db_connection=business_db_url)
    mine = b"-- corrected by hand\ncreate table bss_company (id varchar(32) primary key);\n"
    assert upload(server, task_id, "bss_company.ddl", mine).status_code == 200

    kill_mid_step(server, gated, task_id, "ddl_generation")
    directory = task_dir(server, task_id)
    assert copies_of(directory, "bss_company.ddl", mine), "the user's DDL is gone"
    for ddl in directory.glob("*.ddl"):
        assert ddl.read_bytes() == mine or ddl.read_text(encoding="utf-8").rstrip().endswith(";"), ddl

    task = run_step(server, task_id, "ddl_generation")
    assert task["status"] == "partial_completed", task
    assert copies_of(directory, "bss_company.ddl", mine)


def test_kill_during_qa_generation_keeps_documents_and_the_users_pairs(server, gated, business_db_url):
    task_id = new_task(server, db_connection=business_db_url)
    assert run_step(server, task_id, "ddl_generation")["step_status"]["ddl_generation"] == "completed"
    mine = pair_file_bytes(VALID_PAIRS)
    assert upload(server, task_id, "qs_mine_20240101_000000_pair.json", mine).status_code == 200
    directory = task_dir(server, task_id)
    documents = {name: data for name, data in files_snapshot(directory).items()
                 if name.endswith((".ddl", "_detail.md"))}
    assert len(documents) == 14

    kill_mid_step(server, gated, task_id, "qa_generation")
    assert copies_of(directory, "qs_mine_20240101_000000_pair.json", mine), "the user's pair file is gone"
    after = files_snapshot(directory)
    assert {name: after.get(name) for name in documents} == documents


def test_kill_during_sql_validation_leaves_the_pair_file_untouched(server, gated, business_db_url):
    task_id = new_task(server, db_connection=business_db_url)
    mine = pair_file_bytes(VALID_PAIRS + [BROKEN_PAIR])
    name = "qs_highway_rel_20240101_000000_pair.json"
    assert upload(server, task_id, name, mine).status_code == 200

    kill_mid_step(server, gated, task_id, "sql_validation")   # held in the LLM repair of the broken SQL
    assert (task_dir(server, task_id) / name).read_bytes() == mine


def vector_rows(store_url: str, task_id: str) -> set[str]:
    with psycopg.connect(store_url) as conn:
        exists = conn.execute("select to_regclass('langchain_pg_embedding')").fetchone()[0]
        if exists is None:
            return set()
        return {row[0] for row in conn.execute(
            "select id from langchain_pg_embedding where cmetadata->>'task_id' = %s", (task_id,))}


def load_pairs_task(server, business_db_url, count: int = 12, **params) -> str:
    task_id = new_task(server, db_connection=business_db_url, **params)
    pairs = [{"question": f"第{n}个问题：有多少家公司？", "sql": f"SELECT COUNT(*) + {n} FROM bss_company"}
             for n in range(count)]
    assert upload(server, task_id, "qs_highway_rel_20240101_000000_pair.json", pair_file_bytes(pairs)).status_code == 200
    return task_id


def test_kill_during_training_load_loses_no_vector_row(server, gated, business_db_url):
    store = server.store_url
    loaded = load_pairs_task(server, business_db_url)
    assert run_step(server, loaded, "training_load")["step_status"]["training_load"] == "completed"
    before = vector_rows(store, loaded)
    assert len(before) == 12

    interrupted = load_pairs_task(server, business_db_url)
    kill_mid_step(server, gated, interrupted, "training_load", hold_after=2)   # mid-load, batch by batch
    assert vector_rows(store, loaded) == before
    assert vector_rows(store, interrupted) == set(), "a killed load left part of its rows"

    assert run_step(server, interrupted, "training_load")["step_status"]["training_load"] == "completed"
    assert len(vector_rows(store, interrupted)) == 12
    assert vector_rows(store, loaded) == before


def test_kill_after_truncate_leaves_every_row_in_the_verified_backup(server, gated, business_db_url):
    store = server.store_url
    loaded = load_pairs_task(server, business_db_url)
    assert run_step(server, loaded, "training_load")["step_status"]["training_load"] == "completed"
    with psycopg.connect(store) as conn:
        everything = {row[0] for row in conn.execute("select id from langchain_pg_embedding")}
    assert vector_rows(store, loaded) <= everything

    truncating = load_pairs_task(server, business_db_url, truncate_vector_tables=True)
    kill_mid_step(server, gated, truncating, "training_load", hold_after=2)
    with psycopg.connect(store) as conn:
        remaining = {row[0] for row in conn.execute("select id from langchain_pg_embedding")}
    backups = sorted((task_dir(server, truncating) / "vector_bak").glob("langchain_pg_embedding_*.csv"))
    backed_up = set()
    for backup in backups:
        with open(backup, newline="", encoding="utf-8") as handle:
            backed_up |= {row["id"] for row in csv.DictReader(handle)}
    lost = everything - remaining - backed_up
    assert not lost, f"{len(lost)} vector rows neither in the table nor in a backup"

