"""Issue 14 item 5: a database that accepts connections and never answers cannot block the API.

The database tools run in a bounded pool of their own: requests beyond it are answered at once
(503), a request past its deadline 504, and /health and status reads keep answering while 50 tool
requests hang on silent servers. The bound asserted on /health is a few seconds: a correctness
property (it was 97 s), not a benchmark.
"""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from requests.adapters import HTTPAdapter

from tests.support.api_server import ApiServer, server_env
from tests.support.security_apps import TABLE_DDL, TABLES, TASKS, SilentServer, build_app, error_of
from tests.support.waiting import wait_until

TOOL_REQUESTS = 50
HEALTH_BOUND_SECONDS = 3.0
EXPECTED_ERRORS = {503: "SERVICE_BUSY", 504: "DEADLINE_EXCEEDED", 500: "DATABASE_CONNECTION_ERROR"}


@pytest.fixture
def silent():
    servers = [SilentServer(), SilentServer()]
    yield servers
    for server in servers:
        server.close()


def test_health_and_status_answer_while_50_tool_requests_hang(embedded_pg_dir, tmp_path, silent):
    server = ApiServer(server_env(tmp_path, embedded_pg_dir), tmp_path).start()
    try:
        task_id = server.create_task(task_name="status read while tools hang")
        server.session.mount("http://", HTTPAdapter(pool_maxsize=TOOL_REQUESTS + 4))
        urls = [f"postgresql://u:pw@127.0.0.1:{s.port}/db" for s in silent]
        requests_ = [(TABLES, {"db_connection": urls[0]}), (TABLE_DDL, {"db_connection": urls[1], "table": "t"})]
        accepted_before = sum(s.accepted for s in silent)
        with ThreadPoolExecutor(TOOL_REQUESTS) as pool:
            futures = [pool.submit(server.post, requests_[i % 2][0], json=requests_[i % 2][1], timeout=120)
                       for i in range(TOOL_REQUESTS)]
            # The pool's four workers are each held by a silent server.
            wait_until(lambda: sum(s.accepted for s in silent) - accepted_before >= 4, what="tool requests hanging")
            timings = []
            for _ in range(5):
                for path in ("/api/v0/health", f"{TASKS}/{task_id}"):
                    started = time.monotonic()
                    response = server.get(path, timeout=60)
                    timings.append(time.monotonic() - started)
                    assert response.status_code == 200, response.text
                time.sleep(0.3)
            responses = [future.result() for future in futures]
        assert max(timings) < HEALTH_BOUND_SECONDS, timings
        print(f"\n/health and status reads with {TOOL_REQUESTS} hanging tool requests: max {max(timings):.3f} s")
        codes = Counter((r.status_code, r.json()["error"]["error_code"]) for r in responses)
        assert set(codes) <= set(EXPECTED_ERRORS.items()), codes
        assert codes[(503, "SERVICE_BUSY")] > 0, codes      # the pool is bounded ...
        assert sum(s.accepted for s in silent) <= 8          # ... and so are the connections (4 workers + 4 queued)
    finally:
        server.stop()


def test_a_request_past_its_deadline_is_answered_504(embedded_pg_dir, tmp_path, silent):
    app = build_app(embedded_pg_dir, tmp_path, db_tools_timeout_seconds=1.0)
    started = time.monotonic()
    response = app.test_client().post(TABLES, json={"db_connection": f"postgresql://u@127.0.0.1:{silent[0].port}/db"})
    error_of(response, 504, "DEADLINE_EXCEEDED")
    assert time.monotonic() - started < 4


def test_a_full_pool_answers_503_at_once(embedded_pg_dir, tmp_path, silent):
    app = build_app(embedded_pg_dir, tmp_path, db_tools_workers=1, db_tools_queue=0)
    body = {"db_connection": f"postgresql://u@127.0.0.1:{silent[0].port}/db"}
    with ThreadPoolExecutor(2) as pool:
        accepted_before = silent[0].accepted
        first = pool.submit(app.test_client().post, TABLES, json=body)
        wait_until(lambda: silent[0].accepted > accepted_before, what="the first request hanging")
        started = time.monotonic()
        error_of(app.test_client().post(TABLES, json=body), 503, "SERVICE_BUSY")
        assert time.monotonic() - started < 3  # at once: not after the running one's 5 s connect timeout
        error_of(first.result(), 500, "DATABASE_CONNECTION_ERROR")
