"""Secrets: no password, API key, LLM key or embedding key in any response the reliability tests
received, in any log file or in any task file of any test server so far.

This file runs last among the reliability tests; the session fixture `secret_audit` (conftest)
repeats the scan when the whole suite has run, over every test server's directory.
"""
from __future__ import annotations

from pathlib import Path

import requests

from tests.reliability.conftest import API_KEY, DB_PASSWORD, EMBEDDING_KEY, LLM_KEY
from tests.support.secret_audit import SecretAudit


def test_the_audit_finds_a_planted_secret(tmp_path):
    probe = SecretAudit()
    secret = probe.secret("planted-secret-0123456789")
    (tmp_path / "task_x").mkdir()
    (tmp_path / "task_x" / "data_pipeline.log").write_text(f"... password={secret} ...", encoding="utf-8")
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("18")
    (tmp_path / "pg" / "rows").write_text(secret)   # a database's own files are not the service's output
    probe.directory(tmp_path)
    response = requests.Response()
    response.status_code, response._content = 200, f'{{"db_connection": "{secret}"}}'.encode()
    response.request = requests.Request("GET", "http://127.0.0.1/api/v0/x").prepare()
    probe.check_response(response)
    leaks = probe.leaks()
    assert len(leaks) == 2 and "data_pipeline.log" in leaks[1] and "/api/v0/x" in leaks[0]


def test_the_audit_reads_every_store_table(make_embedded_db):
    probe = SecretAudit()
    secret = probe.secret("planted-store-secret-42")
    url = probe.store(make_embedded_db(f"""
        create schema other;
        create table other.notes (id int, body jsonb);
        insert into other.notes values (1, '{{"db_connection": "postgresql://u:{secret}@h/db"}}');
        create table public.clean (id int, note text);
        insert into public.clean values (1, 'nothing here');"""))
    leaks = probe.leaks()
    assert leaks == ["store table other.notes: 1 row(s) contain secret pla…(23 chars)"]
    assert probe.tables_checked == 2


def test_no_secret_anywhere(secret_audit, tmp_path_factory, gated):
    assert {API_KEY, DB_PASSWORD, LLM_KEY, EMBEDDING_KEY} <= secret_audit.secrets
    # The keys were really handed over: the fake LLM and embedding service saw them, each on the
    # calls of its kind that this session's tests made (run in parallel, a session may make one kind).
    for suffix, key in (("/chat/completions", LLM_KEY), ("/embeddings", EMBEDDING_KEY)):
        authorizations = {r.get("_authorization") for r in gated.server.requests if r["_path"].endswith(suffix)}
        assert not authorizations or authorizations == {f"Bearer {key}"}, (suffix, authorizations)
    secret_audit.directory(Path(tmp_path_factory.getbasetemp()))
    leaks = secret_audit.leaks()
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:50])
    print(f"\nsecret audit: {secret_audit.responses_checked} responses, {secret_audit.files_checked} files, "
          f"{secret_audit.tables_checked} store tables, {len(secret_audit.secrets)} secrets: nothing found")
