"""Hostile input, generated: schemathesis reads GET /api/v0/openapi.json of a live server and sends
thousands of requests over every endpoint, valid and invalid (negative mode), with real task ids
and real file names mixed in so requests get past the 404s to the code behind them.

Every response: no 5xx but the documented 500 DATABASE_CONNECTION_ERROR (and that only for a
request naming a database of its own: the service's databases are up), no stack trace, and
under /api/ always the JSON envelope (file downloads and the OpenAPI document aside) whose `code`
is the HTTP status. SCHEMATHESIS_EXAMPLES sets the examples per operation and generation mode
(default 60: about 2,500 requests).
"""
from __future__ import annotations

import os
import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.reliability.conftest import TASKS, new_task, run_step, upload

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60"))
STACK_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")
ERROR_TYPES = {"ValidationError", "AuthenticationError", "NotFoundError", "ConflictError", "PayloadTooLarge",
               "DatabaseError", "VectorStoreError", "InternalError"}


@pytest.fixture
def server(hostile_server):
    return hostile_server


@pytest.fixture(scope="module")
def real_ids(hostile_server):
    server = hostile_server
    """Tasks with files and logs, whose ids and file names the generated requests borrow."""
    done = new_task(server, tables=["bss_company", "bss_service_area"], task_name="fuzz")
    run_step(server, done, "ddl_generation")
    upload(server, done, "qs_fuzz_20240101_000000_pair.json", b'[{"question": "q", "sql": "SELECT 1"}]')
    fresh = server.create_task(task_name="fuzz-empty")
    files = [f["file_name"] for f in server.get(f"{TASKS}/{done}/files").json()["data"]["files"]]
    # DELETE gets tasks of its own, so the others stay for the operations after it.
    victims = [server.create_task(task_name=f"fuzz-victim-{n}") for n in range(5)]
    return {"task_id": [done, fresh], "file_name": files, "victims": victims}


def names_a_database(case) -> bool:
    """Whether the request asks for a database of its own (which may well be unreachable)."""
    return isinstance(case.body, dict) and case.body.get("db_connection") is not None


def problems_of(response, case) -> list[str]:
    text = response.text
    found = []
    if response.status_code >= 500:
        try:
            code = response.json()["error"]["error_code"]
        except (ValueError, KeyError, TypeError):
            code = None
        # The service's own databases are up: only a database the request names can be unreachable.
        if code != "DATABASE_CONNECTION_ERROR" or not names_a_database(case):
            found.append(f"status {response.status_code} {code}")
    if STACK_TRACE.search(text):
        found.append("stack trace in the body")
    path = response.request.path_url
    json_body = response.headers.get("Content-Type", "").startswith("application/json")
    if path.startswith("/api/") and not path.startswith("/api/v0/openapi.json") and (
            response.status_code != 200 or json_body):
        try:
            body = response.json()
            assert body["code"] == response.status_code and body["success"] is (response.status_code < 400)
            if response.status_code >= 400:
                assert body["error"]["type"] in ERROR_TYPES and body["error"]["error_code"]
        except (ValueError, KeyError, TypeError, AssertionError):
            found.append(f"not the JSON envelope: {text[:200]!r}")
    return found


def test_generated_requests_over_every_endpoint(server, real_ids):
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v0/openapi.json",
                                           headers=dict(server.session.headers))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    statuses, failures, per_operation = Counter(), [], Counter()

    for operation in operations:
        strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                             operation.as_strategy(GenerationMode.NEGATIVE))
        borrowed = {name: values for name, values in real_ids.items() if f"{{{name}}}" in operation.path}
        if operation.method.upper() == "DELETE":
            borrowed["task_id"] = real_ids["victims"]

        @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=strategy, borrow=st.booleans(), picks=st.randoms(use_true_random=False))
        def exercise(case, borrow, picks):
            if borrow and borrowed and isinstance(case.path_parameters, dict):
                for name, values in borrowed.items():
                    case.path_parameters[name] = picks.choice(values)
            response = case.call(base_url=server.url, session=server.session, timeout=60)
            statuses[response.status_code] += 1
            per_operation[operation.label] += 1
            for problem in problems_of(response, case):
                failures.append(f"{operation.label}: {problem}\n    {case.as_curl_command(base_url=server.url)}"[:1500])

        exercise()

    print(f"\nschemathesis: {sum(statuses.values())} requests over {len(operations)} operations; "
          f"statuses {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} bad responses:\n" + "\n".join(failures[:15])
    assert sum(statuses.values()) >= 1000
    assert set(per_operation) == {operation.label for operation in operations}
