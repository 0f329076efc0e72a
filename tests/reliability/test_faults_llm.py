"""The LLM (and embedding) server hanging, answering 500s, answering garbage, through all four real
steps (LLM_TIMEOUT=1, LLM_MAX_RETRIES=1, so each failure is quick).

Every time: ddl_generation documents the tables from the database's comments and reports the LLM
failure per table; qa_generation fails saying the LLM cannot be reached (hang, 500s) or, when it
answers garbage, makes the pairs with the offline generator and counts the fallback (issue 17);
then, with the user's pair file put back, sql_validation keeps the unrepaired
pair's original in the backup; training_load fails with a clear embedding error and writes no
vector row. No garbage and no apology text ends up in any task file, and no user file is lost.
"""
from __future__ import annotations

import itertools
import json
import threading
import uuid

import psycopg
import pytest

from tests.reliability.conftest import (EMBEDDING_KEY, LLM_KEY, files_snapshot, new_task, run_step, running_server,
                                        task_dir, upload)
from tests.reliability.llm_gate import llm_env
from tests.reliability.test_faults_executor import BROKEN_PAIR, VALID_PAIRS, copies_of, pair_file_bytes
from tests.support.fake_llm import FakeLLMServer, Reply

MARKER = f"GARBAGE{uuid.uuid4().hex[:8]}"
PAIR_FILE = "qs_highway_rel_20240101_000000_pair.json"

GARBAGE = [
    Reply(raw_body=f"<html><body><h1>502 Bad Gateway</h1>{MARKER}</body></html>"),        # not JSON
    Reply(content=f"抱歉，作为一个AI模型，我无法完成这个请求。{MARKER}"),                  # an apology
    Reply(raw_body=json.dumps({"object": "list", "data": MARKER, "choices": MARKER})),  # JSON, wrong shape
]
FAULTS = {"hang": [Reply(hang=True)], "http_500": [Reply(status=500)], "garbage": GARBAGE}


class FaultyLLM:
    """Chat and embeddings both answer with the current fault (garbage of each kind in turn)."""
    handles_embeddings = True

    def __init__(self):
        self.replies = itertools.cycle(FAULTS["http_500"])
        self.lock = threading.Lock()

    def answer_with(self, replies: list[Reply]) -> None:
        with self.lock:
            self.replies = itertools.cycle(replies)

    def __call__(self, request: dict) -> Reply:
        with self.lock:
            return next(self.replies)


@pytest.fixture(scope="module")
def faulty():
    responder = FaultyLLM()
    with FakeLLMServer(responder) as server:
        server._httpd.handle_error = lambda request, client_address: None  # hung clients give up
        responder.server = server
        yield responder


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedded_pg_dir, faulty, private_store):
    store = private_store()
    env = llm_env(faulty.server.base_url, LLM_KEY, EMBEDDING_KEY, LLM_TIMEOUT="1", LLM_MAX_RETRIES="1",
                  LLM_CONCURRENCY="8", DATA_PIPELINE_DB_URL=store)
    with running_server(tmp_path_factory.mktemp("rel-llm"), embedded_pg_dir, **env) as api:
        api.store_url = store
        yield api
        api.assert_nothing_left_running()


def vector_row_count(store_url: str) -> int:
    with psycopg.connect(store_url) as conn:
        if conn.execute("select to_regclass('langchain_pg_embedding')").fetchone()[0] is None:
            return 0
        return conn.execute("select count(*) from langchain_pg_embedding").fetchone()[0]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_step_with_a_failing_llm(server, faulty, business_db_url, fault):
    faulty.answer_with(FAULTS[fault])
    task_id = new_task(server, db_connection=business_db_url)
    directory = task_dir(server, task_id)
    original_pairs = pair_file_bytes(VALID_PAIRS + [BROKEN_PAIR])
    assert upload(server, task_id, PAIR_FILE, original_pairs).status_code == 200

    task = run_step(server, task_id, "ddl_generation")
    assert task["step_status"]["ddl_generation"] == "completed", task
    result = next(s for s in task["steps"] if s["step_name"] == "ddl_generation")["result"]
    assert result["processed_successfully"] == 7 and result["llm_comment_tables"] == 0
    assert len(result["errors"]) == 7 and all("LLM" in e["error"] for e in result["errors"]), result["errors"]

    task = run_step(server, task_id, "qa_generation")
    if fault == "garbage":   # the model answers, unusably: the offline generator makes the pairs
        assert task["step_status"]["qa_generation"] == "completed", task
        result = next(s for s in task["steps"] if s["step_name"] == "qa_generation")["result"]
        assert result["generator"] == "offline" and result["llm_fallbacks"] >= 1, result
        for generated in directory.glob("qs_*_pair.json"):
            generated.unlink()   # the test goes on with the user's own pair file
    else:
        assert task["status"] == "failed" and task["step_status"]["qa_generation"] == "failed", task
        assert "LLM服务无法连接" in task["error_message"], task["error_message"]
    # The step moved the pair files it would replace aside, byte for byte; the user puts theirs back.
    assert copies_of(directory, PAIR_FILE, original_pairs)
    assert upload(server, task_id, PAIR_FILE, original_pairs).status_code == 200

    task = run_step(server, task_id, "sql_validation")
    assert task["step_status"]["sql_validation"] == "completed", task
    assert (directory / f"{PAIR_FILE}.backup").read_bytes() == original_pairs
    assert json.loads((directory / PAIR_FILE).read_text(encoding="utf-8")) == VALID_PAIRS
    report = next(directory.glob("sql_validation_*_report.json")).read_text(encoding="utf-8")
    assert "LLM" in report

    rows_before = vector_row_count(server.store_url)
    task = run_step(server, task_id, "training_load")
    assert task["step_status"]["training_load"] == "failed", task
    assert "Embedding" in task["error_message"], task["error_message"]
    assert "Traceback" not in task["error_message"]
    assert vector_row_count(server.store_url) == rows_before

    tainted = [name for name, data in files_snapshot(directory).items()
               if MARKER.encode() in data or "抱歉".encode() in data]
    assert not tainted, f"LLM garbage written into {tainted}"
