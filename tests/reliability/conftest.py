"""Fixtures of the reliability suite: servers that carry real secrets, a business database the
tests start and stop themselves, and the secret audit that runs when the whole session ends.

Every server started here requires an API key and has its HTTP session watched by the audit;
business databases are reached with a password. At the end of the session (after every other
test of the suite too) no registered secret may appear in any response the audit saw, nor in any
file under the session's temporary directory (every test server's logs and task directories;
PostgreSQL data directories are left out), nor in any row of any of their stores (read as text,
every column of every table).
"""
from __future__ import annotations

import contextlib
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from data_pipeline.db.connection import with_database
from tests.support.api_server import ApiServer, server_env
from tests.support.pg_cluster import PostgresCluster, find_bin_dir
from tests.support.secret_audit import audit
from tests.support.task_runs import task_dir, write_control as control
from tests.support.waiting import wait_until

TASKS = "/api/v0/data_pipeline/tasks"
DEMO_TABLES = ["bss_business_day_data", "bss_car_day_count", "bss_company", "bss_section_route",
               "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]

API_KEY = audit.secret(f"rel-api-key-{uuid.uuid4().hex}")
LLM_KEY = audit.secret(f"sk-rel-llm-{uuid.uuid4().hex}")
EMBEDDING_KEY = audit.secret(f"sk-rel-emb-{uuid.uuid4().hex}")
DB_PASSWORD = audit.secret(f"RelPw-{uuid.uuid4().hex[:16]}")


@pytest.fixture(scope="session", autouse=True)
def secret_audit(tmp_path_factory, embedded_pg_dir):
    """The audit; when the session ends it scans every test server's files of the whole suite, and
    the stores: the private ones (before they are dropped) and the session's embedded store."""
    yield audit
    from data_pipeline.db import embedded_pg

    audit.store(embedded_pg.store_url(embedded_pg_dir))
    audit.directory(tmp_path_factory.getbasetemp())
    leaks = audit.leaks()
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:50])


@contextlib.contextmanager
def running_server(root: Path, embedded_pg_dir: Path, **extra: str):
    """An API server (real subprocess) whose responses the audit checks; stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    server = ApiServer(server_env(root, embedded_pg_dir, DATA_PIPELINE_API_KEY=API_KEY, **extra), root)
    audit.watch(server.session)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def private_store(embedded_base_url):
    """`private_store()`: a fresh store database (with pgvector) on the embedded server, so the
    vector rows these tests load, kill and truncate are nobody else's."""
    from tests.conftest import DatabaseFactory

    factory = DatabaseFactory(embedded_base_url, "dp_rel_store")
    yield lambda: audit.store(factory(extensions=("vector",)))
    for name in factory.created:  # read by the audit before they go
        audit.scan_store(with_database(embedded_base_url, name))
    factory.drop_all()


@pytest.fixture(scope="module")
def rel_server(tmp_path_factory, embedded_pg_dir, private_store):
    """A server with its own store, the session's embedded demo database as default, offline."""
    store = private_store()
    with running_server(tmp_path_factory.mktemp("rel-server"), embedded_pg_dir, DATA_PIPELINE_DB_URL=store) as server:
        server.store_url = store
        yield server
        server.assert_nothing_left_running()


@pytest.fixture(scope="session")
def hostile_server(tmp_path_factory, embedded_pg_dir, private_store):
    """A server for generated and hand-written hostile requests (its own store: restore is fair game)."""
    store = private_store()
    with running_server(tmp_path_factory.mktemp("rel-hostile"), embedded_pg_dir, DATA_PIPELINE_DB_URL=store,
                        FLASK_LOG_LEVEL="WARNING") as server:
        yield server
        server.assert_nothing_left_running(timeout=120)


@pytest.fixture(scope="session")
def gated():
    """A fake LLM and embedding service whose answers the tests hold back (see llm_gate)."""
    from tests.reliability.llm_gate import GatedLLM

    with GatedLLM() as llm:
        yield llm


@pytest.fixture(scope="session")
def gated_server(tmp_path_factory, embedded_pg_dir, gated, private_store):
    """A server whose steps use the gated LLM and embeddings (so a test can freeze them)."""
    from tests.reliability.llm_gate import llm_env

    store = private_store()
    env = llm_env(gated.base_url, LLM_KEY, EMBEDDING_KEY, LLM_TIMEOUT="60", LLM_MAX_RETRIES="0",
                  LLM_CONCURRENCY="4", DATA_PIPELINE_DB_URL=store)
    with running_server(tmp_path_factory.mktemp("rel-gated"), embedded_pg_dir, **env) as server:
        server.store_url = store
        yield server
        server.assert_nothing_left_running()


@pytest.fixture(scope="session")
def business_pg():
    """A PostgreSQL server this session starts and stops itself."""
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; set DATA_PIPELINE_TEST_PG_BIN")
    # Outside pytest's private (0700) temporary root: the server runs as another system user.
    cluster = PostgresCluster.create(Path(tempfile.mkdtemp(prefix="dp-rel-pg-")))
    audit.directory(cluster.root)  # its server log
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def business_db_url(business_pg) -> str:
    """A copy of the demo database on `business_pg`, owned by a role with a password."""
    from data_pipeline.db import demo_db

    url = business_pg.add_database("highway_rel", user="rel_owner", password=DB_PASSWORD)
    with psycopg.connect(url, autocommit=True) as conn:
        demo_db.populate(conn)
    return url


# ---- helpers shared by the reliability tests ---------------------------------------------------

def new_task(server: ApiServer, tables=DEMO_TABLES, **params) -> str:
    task_id = server.create_task(task_name=params.pop("task_name", "可靠性测试"), **params)
    response = server.post(f"{TASKS}/{task_id}/table-list", json={"table_names": list(tables)})
    assert response.status_code == 200, response.text
    return task_id


def run_step(server: ApiServer, task_id: str, step: str, timeout: float = 180) -> dict:
    response = server.execute(task_id, execution_mode="step", step_name=step)
    assert response.status_code == 202, response.text
    return server.wait_for(task_id, timeout=timeout)


@contextlib.contextmanager
def step_frozen(server: ApiServer, llm, task_id: str, step: str, hold_after: int = 0):
    """Start `step` and yield once it waits for an LLM or embedding answer that is held back;
    the answers flow again when the block ends."""
    llm.hold(after=hold_after)
    try:
        response = server.execute(task_id, execution_mode="step", step_name=step)
        assert response.status_code == 202, response.text
        llm.wait_held()
        assert server.task(task_id)["step_status"][step] == "running"
        yield
    finally:
        llm.release()


def upload(server: ApiServer, task_id: str, name: str, content: bytes):
    return server.post(f"{TASKS}/{task_id}/files", files={"file": (name, content)})


def executor_pid(server: ApiServer, task_id: str) -> int:
    def recorded():
        history = server.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"]
        return history[0]["pid"] if history and history[0]["status"] == "running" else None
    return wait_until(recorded, what="executor pid")


def files_snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of a task directory (relative path -> content)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
