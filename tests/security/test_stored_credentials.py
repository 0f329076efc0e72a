"""Issue 14 item 1: db_connection passwords are encrypted at rest. After a real run with a password
in db_connection, no table of the store holds it; the key comes from DATA_PIPELINE_SECRET_KEY or a
0600 key file; another key means a clear answer asking for the db_connection again; rows stored in
clear text before encryption are sealed when the service starts, and still run."""
from __future__ import annotations

import stat

import psycopg
import pytest
from cryptography.fernet import Fernet

from config import ConfigError, Settings
from tests.conftest import DatabaseFactory
from tests.support.secret_audit import store_leaks
from tests.support.security_apps import TASKS, build_app, error_of, wait_for_task

PASSWORD = "Sec-conn-stored-pw-8812"
KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def store_factory(embedded_base_url):
    factory = DatabaseFactory(embedded_base_url, "sec_conn_store")
    yield lambda: factory(extensions=("vector",))
    factory.drop_all()


@pytest.fixture(scope="module")
def business_url(local_pg_admin_url):
    """A business database reached with a password in its URL (the machine's server takes any)."""
    factory = DatabaseFactory(local_pg_admin_url, "sec_conn_biz")
    url = factory("create table public.shop (id integer primary key, name text); insert into shop values (1, 'a');")
    yield url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    factory.drop_all()


def stored_connection(store_url: str, task_id: str) -> str:
    with psycopg.connect(store_url) as conn:
        return conn.execute("select db_connection from dp_tasks where task_id = %s", (task_id,)).fetchone()[0]


def new_task(client, db_connection: str) -> str:
    response = client.post(TASKS, json={"db_connection": db_connection, "task_name": "sec-conn"})
    assert response.status_code == 201, response.get_data(as_text=True)
    task_id = response.get_json()["data"]["task_id"]
    listed = client.post(f"{TASKS}/{task_id}/table-list", json={"table_names": ["public.shop"]})
    assert listed.status_code == 200, listed.get_data(as_text=True)
    return task_id


def test_no_clear_password_in_any_store_table_after_a_run(embedded_pg_dir, store_factory, business_url, tmp_path):
    store = store_factory()
    client = build_app(embedded_pg_dir, tmp_path, db_url=store, secret_key=KEY).test_client()
    task_id = new_task(client, business_url)
    assert stored_connection(store, task_id).startswith("fernet:")

    response = client.post(f"{TASKS}/{task_id}/execute", json={"execution_mode": "step", "step_name": "ddl_generation"})
    assert response.status_code == 202, response.get_data(as_text=True)
    task = wait_for_task(client, task_id)
    assert task["step_status"]["ddl_generation"] == "completed", task  # the executor decrypted it
    assert task["parameters"]["db_connection"].startswith("postgresql://postgres:***@")

    leaks, tables = store_leaks(store, {PASSWORD})
    assert tables >= 4 and leaks == []
    for path in (tmp_path / "training_data").rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path


def test_the_key_file_is_created_once_with_mode_0600(tmp_path):
    from data_pipeline.db.credentials import CredentialCipher, load_key

    settings = Settings(embedded_pg_dir=tmp_path / "data" / "pg")
    key = load_key(settings)
    path = tmp_path / "data" / "secret.key"
    assert path == settings.secret_key_file and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(settings) == key
    sealed = CredentialCipher.from_settings(settings).seal(f"postgresql://u:{PASSWORD}@h/db")
    assert PASSWORD not in sealed and CredentialCipher(key).open(sealed) == f"postgresql://u:{PASSWORD}@h/db"
    # DATA_PIPELINE_SECRET_KEY wins over the file.
    assert load_key(settings.with_overrides(secret_key=KEY)) == KEY.encode()


def test_a_secret_key_that_is_not_a_fernet_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="DATA_PIPELINE_SECRET_KEY"):
        Settings.from_env({"DATA_PIPELINE_SECRET_KEY": "hunter2"}, dotenv_path=tmp_path / "none")


def test_another_key_asks_for_the_db_connection_again(embedded_pg_dir, store_factory, business_url, tmp_path):
    store = store_factory()
    first = build_app(embedded_pg_dir, tmp_path / "a", db_url=store, secret_key=KEY).test_client()
    task_id = new_task(first, business_url)
    other_key = Fernet.generate_key().decode()
    second = build_app(embedded_pg_dir, tmp_path / "a", db_url=store, secret_key=other_key).test_client()

    response = second.post(f"{TASKS}/{task_id}/execute", json={"execution_mode": "complete"})
    error = error_of(response, 409, "DB_CONNECTION_UNREADABLE")
    assert "db_connection" in error["invalid_params"] and "重新输入 db_connection" in error["details"]
    assert second.get(f"{TASKS}/{task_id}").get_json()["data"]["status"] == "pending"


def test_clear_text_rows_from_before_are_sealed_at_start(embedded_pg_dir, store_factory, business_url, tmp_path):
    from data_pipeline.store import TaskStore

    store = store_factory()
    old = TaskStore(store)
    old.migrate()
    legacy = old.create_task(task_id_base="task_20240101_000000", task_name="legacy", created_by="guest",
                             db_name="biz", business_context=None, db_connection=business_url,
                             parameters={"db_connection": "postgresql://postgres:***@..."})
    old.dispose()
    assert stored_connection(store, legacy.task_id) == business_url

    app = build_app(embedded_pg_dir, tmp_path, db_url=store, secret_key=KEY)
    assert stored_connection(store, legacy.task_id).startswith("fernet:")
    assert store_leaks(store, {PASSWORD})[0] == []
    (tmp_path / "training_data" / legacy.task_id).mkdir(parents=True)
    (tmp_path / "training_data" / legacy.task_id / "table_list.txt").write_text("public.shop\n")
    client = app.test_client()
    response = client.post(f"{TASKS}/{legacy.task_id}/execute",
                           json={"execution_mode": "step", "step_name": "ddl_generation"})
    assert response.status_code == 202, response.get_data(as_text=True)
    assert wait_for_task(client, legacy.task_id)["step_status"]["ddl_generation"] == "completed"
