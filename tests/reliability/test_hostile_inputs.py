"""Hostile input, written by hand: SQL injection attempts in table names, table name patterns,
schema lists, sort fields, task name filters and log keywords; oversized and malformed multipart
uploads, also as raw bytes on the socket.

Every answer is a 4xx in the JSON envelope (or a 200 that treats the input as plain text), never
a 5xx or a stack trace; a canary table in the business database and the store's tasks survive;
nothing in the task directory changes when an upload is refused.
"""
from __future__ import annotations

import json
import re
import socket

import psycopg
import pytest

from tests.reliability.conftest import TASKS, files_snapshot, new_task, run_step, task_dir, upload

ENTRY = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\w+\] [^:]+: (.*)")
INJECTIONS = [
    "bss_company; drop table rel_canary; --",
    "bss_company' or '1'='1",
    "bss_company\"; drop table rel_canary; --",
    "\"bss_company\"\"; drop table rel_canary; --\"",
    "public.bss_company) union select usename, passwd from pg_shadow --",
    "x'||pg_sleep(5)||'",
    "%' or 1=1 --",
    "*'; drop table rel_canary; --",
    "bss_\\' or 1=1; --",
    "$$; drop table rel_canary; $$",
    "\x00bss_company",
]


@pytest.fixture(scope="module")
def canary(business_db_url):
    with psycopg.connect(business_db_url, autocommit=True) as conn:
        conn.execute("create table if not exists rel_canary (id int primary key)")
        conn.execute("insert into rel_canary values (1) on conflict do nothing")
    yield business_db_url
    with psycopg.connect(business_db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from rel_canary").fetchone()[0] == 1, "the canary table was touched"
        assert conn.execute("select count(*) from bss_company").fetchone()[0] > 0


@pytest.fixture(scope="module")
def logged_task(hostile_server, canary):
    task_id = new_task(hostile_server, db_connection=canary, tables=["bss_company", "bss_service_area"])
    assert run_step(hostile_server, task_id, "ddl_generation")["step_status"]["ddl_generation"] == "completed"
    return task_id


def refused_or_plain(response, allowed=(200, 400, 404)) -> dict:
    assert response.status_code in allowed, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert body["code"] == response.status_code
    return body


@pytest.mark.parametrize("attack", INJECTIONS)
def test_table_names(hostile_server, canary, attack):
    server = hostile_server
    body = refused_or_plain(server.post("/api/v0/database/table/ddl", json={"table": attack, "db_connection": canary}),
                            allowed=(400, 404))
    assert body["error"]["error_code"] in ("INVALID_TABLE_NAME", "TABLE_NOT_FOUND", "VALIDATION_ERROR")
    task_id = server.create_task(task_name="注入测试")
    refused_or_plain(server.post(f"{TASKS}/{task_id}/table-list", json={"table_names": [attack]}), allowed=(200, 400))


@pytest.mark.parametrize("attack", INJECTIONS)
def test_patterns_and_schema_lists(hostile_server, canary, attack):
    server = hostile_server
    listed = refused_or_plain(server.post("/api/v0/database/tables",
                                          json={"db_connection": canary, "table_name_pattern": attack}), allowed=(200, 400))
    if listed["success"]:
        assert listed["data"]["tables"] == [], "a pattern made of SQL matched tables"
    schemas = refused_or_plain(server.post("/api/v0/database/tables", json={"db_connection": canary, "schema": attack}),
                               allowed=(200, 400))
    if schemas["success"]:
        assert schemas["data"]["tables"] == []


def test_pattern_wildcards_are_only_star_and_question_mark(hostile_server, canary):
    def tables(pattern):
        return hostile_server.post("/api/v0/database/tables", json={"db_connection": canary,
                                                                    "table_name_pattern": pattern}).json()["data"]["tables"]
    assert tables("bss_company") == ["public.bss_company"]
    assert tables("bss%") == [] and tables("bss_compan_") == []
    assert tables("BSS_COMPAN?") == ["public.bss_company"]
    assert "public.bss_company" in tables("bss*") and "public.rel_canary" not in tables("bss*")


@pytest.mark.parametrize("attack", INJECTIONS)
def test_sort_fields_and_filters(hostile_server, logged_task, attack):
    server = hostile_server
    body = refused_or_plain(server.post(f"{TASKS}/query", json={"sort_by": attack}), allowed=(400,))
    assert body["error"]["invalid_params"] == ["sort_by"]
    body = refused_or_plain(server.post(f"{TASKS}/query", json={"sort_order": attack}), allowed=(400,))
    assert body["error"]["invalid_params"] == ["sort_order"]
    body = refused_or_plain(server.post(f"{TASKS}/{logged_task}/logs/query", json={"sort_by": attack}), allowed=(400,))
    assert body["error"]["invalid_params"] == ["sort_by"]
    for field in ("task_name", "created_by", "db_name"):
        body = refused_or_plain(server.post(f"{TASKS}/query", json={field: attack}), allowed=(200, 400))
        if body["success"]:
            assert body["data"]["pagination"]["total"] == 0, f"{field} {attack!r} matched tasks"
    refused_or_plain(server.get(f"{TASKS}", params={"status": attack}), allowed=(400,))
    refused_or_plain(server.get(f"{TASKS}/{attack}"), allowed=(400, 404))


@pytest.mark.parametrize("keyword", INJECTIONS[:-1] + [".*", "[", "(?i)", "\\", "%", "_", "步骤' OR 1=1"])
def test_log_keywords_are_plain_text(hostile_server, logged_task, keyword):
    server = hostile_server
    body = refused_or_plain(server.post(f"{TASKS}/{logged_task}/logs/query", json={"keyword": keyword, "page_size": 500}))
    log = (task_dir(server, logged_task) / "data_pipeline.log").read_text(encoding="utf-8")
    messages = []   # each entry's message, continuation lines included
    for line in log.splitlines():
        header = ENTRY.match(line)
        if header:
            messages.append(header.group(1))
        elif messages:
            messages[-1] += "\n" + line.strip()
    expected = sum(1 for message in messages if keyword.lower() in message.lower())
    assert body["data"]["pagination"]["total"] == expected, keyword


@pytest.mark.parametrize("path, body, param", [
    (TASKS, {"created_by": "a\x00b"}, "created_by"),
    (TASKS, {"task_name": "名\x00"}, "task_name"),
    (f"{TASKS}/query", {"task_name": "\x00"}, "task_name"),
    ("/api/v0/database/tables", {"table_name_pattern": "bss\x00*"}, "table_name_pattern"),
    ("/api/v0/database/tables", {"schema": "public\x00"}, "schema"),
])
def test_nul_characters_are_the_clients_error(hostile_server, path, body, param):
    """PostgreSQL text cannot hold NUL: 400 naming the parameter, not a 500 from the database."""
    answer = refused_or_plain(hostile_server.post(path, json=body), allowed=(400,))
    assert answer["error"]["invalid_params"] == [param]


def test_store_is_intact(hostile_server):
    listed = hostile_server.get(TASKS, params={"limit": 100}).json()["data"]
    assert listed["total"] > 0 and all(t["task_id"].startswith("task_") for t in listed["tasks"])


# ---- uploads ------------------------------------------------------------------------------------

@pytest.fixture
def upload_target(hostile_server):
    task_id = new_task(hostile_server, tables=["bss_company"])
    assert upload(hostile_server, task_id, "mine.sql", b"select 1;\n").status_code == 200
    before = files_snapshot(task_dir(hostile_server, task_id))
    yield task_id
    after = files_snapshot(task_dir(hostile_server, task_id))
    changed = {name for name in set(before) | set(after)
               if before.get(name) != after.get(name) and name != "data_pipeline.log"}
    assert not changed, f"a refused upload changed {changed}"


@pytest.mark.parametrize("name, content, status, code", [
    ("big.sql", b"-" * (10 * 1024 * 1024 + 1), 413, "PAYLOAD_TOO_LARGE"),
    ("../../escape.sql", b"select 1;", 400, "INVALID_FILE_PATH"),
    ("..\\escape.sql", b"select 1;", 400, "INVALID_FILE_PATH"),
    ("/etc/passwd.txt", b"x", 400, "INVALID_FILE_PATH"),
    ("nul\x00.sql", b"select 1;", 400, None),
    ("binary.sql", b"\x00\x01\x02\xff" * 100, 400, "INVALID_FILE"),
    ("x" * 5000 + ".sql", b"select 1;", 400, "INVALID_FILE"),
    ("evil.exe", b"MZ", 400, "INVALID_FILE"),
    ("", b"select 1;", 400, None),
    ("qs_bad_pair.json", b"{\"not\": \"a list\"}", 400, "INVALID_FILE"),
    ("qs_bad_pair.json", b"[" * 100_000, 400, "INVALID_FILE"),
    ("task_config.json", b"{}", 400, "INVALID_FILE"),
])
def test_refused_uploads(hostile_server, upload_target, name, content, status, code):
    response = hostile_server.post(f"{TASKS}/{upload_target}/files", files={"file": (name, content)})
    body = refused_or_plain(response, allowed=(status,))
    if code:
        assert body["error"]["error_code"] == code, body


def test_oversized_table_list(hostile_server, upload_target):
    content = ("bss_company\n" * 200_000).encode()   # 2.4 MB, over the 2 MB limit
    response = hostile_server.post(f"{TASKS}/{upload_target}/upload-table-list", files={"file": ("t.txt", content)})
    refused_or_plain(response, allowed=(400, 413))


def test_body_over_the_server_limit(hostile_server, upload_target):
    response = hostile_server.post(f"{TASKS}/{upload_target}/files",
                                   files={"file": ("huge.sql", b"-" * (13 * 1024 * 1024))})
    body = refused_or_plain(response, allowed=(413,))
    assert body["error"]["error_code"] == "PAYLOAD_TOO_LARGE"


def raw_request(server, request: bytes, timeout: float = 20) -> tuple[int, bytes]:
    """Send bytes as they are; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head else None), body


def multipart_request(server, task_id: str, body: bytes, content_type: str, length: int | None = None) -> bytes:
    auth = server.session.headers["Authorization"]
    return (f"POST {TASKS}/{task_id}/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body) if length is None else length}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


PART = (b"--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"raw.sql\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\nselect 1;\r\n")


@pytest.mark.parametrize("body, content_type", [
    (PART, "multipart/form-data; boundary=BOUND"),                                # never closed
    (PART + b"--BOUND--\r\n", "multipart/form-data"),                              # no boundary given
    (PART + b"--BOUND--\r\n", "multipart/form-data; boundary=OTHER"),              # wrong boundary
    (b"\xff\xfe garbage \x00" * 100, "multipart/form-data; boundary=BOUND"),       # not multipart at all
    (b"--BOUND\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nno filename\r\n--BOUND--\r\n",
     "multipart/form-data; boundary=BOUND"),                                       # a field, not a file
    (b"".join(b"--BOUND\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n" % n for n in range(3000))
     + b"--BOUND--\r\n", "multipart/form-data; boundary=BOUND"),                   # thousands of fields
    (json.dumps({"file": "select 1;"}).encode(), "application/json"),              # not multipart
    (PART + b"--BOUND--\r\n", "multipart/form-data; boundary=" + "B" * 5000),      # absurd boundary
])
def test_malformed_multipart(hostile_server, upload_target, body, content_type):
    status, answer = raw_request(hostile_server, multipart_request(hostile_server, upload_target, body, content_type))
    assert 400 <= status < 500, (status, answer[:300])
    assert b"Traceback" not in answer and b'File "' not in answer
    envelope = json.loads(answer)
    assert envelope["success"] is False and envelope["code"] == status


def test_content_length_larger_than_the_body(hostile_server, upload_target):
    """A client that promises more bytes than it sends, then hangs up: nothing is stored, no 5xx
    (the server may just close the connection), and the server goes on serving."""
    request = multipart_request(hostile_server, upload_target, PART + b"--BOUND--\r\n",
                                "multipart/form-data; boundary=BOUND", length=len(PART) + 5000)
    status, answer = raw_request(hostile_server, request)
    assert status is None or 400 <= status < 500, (status, answer[:300])
    assert b"Traceback" not in answer
    assert hostile_server.get(f"{TASKS}/{upload_target}/files").status_code == 200


def test_json_nested_beyond_any_reason(hostile_server):
    response = hostile_server.post(f"{TASKS}/query", data=b"[" * 100_000, headers={"Content-Type": "application/json"})
    body = refused_or_plain(response, allowed=(400,))
    assert body["error"]["invalid_params"] == ["body"]
