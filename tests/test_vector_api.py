"""The vector backup endpoints: list, restore, standalone backup.

Each service here has a store of its own: a server process on a fresh database with pgvector on
the embedded server (so restoring 1024-dimensional reference vectors cannot disturb any other
test's store), and an in-process app on one of the machine's PostgreSQL, which has no pgvector.
"""
from __future__ import annotations

import ast
import json
import shutil
import uuid

import psycopg
import pytest

from data_pipeline.db.connection import with_database
from data_pipeline.db.demo_db import DEMO_TABLES
from data_pipeline.tasks.directory import pair_files
from data_pipeline.vector.embeddings import HashEmbeddings
from data_pipeline.vector.manifest import adopt_backup_set
from data_pipeline.vector.store import ensure_collections, store_engine
from tests.support.api_server import ApiServer, own_directories_env
from tests.support.envelope import data_of, error_of
from tests.support.in_process import build_app, close_app
from tests.support.vector_tasks import copy_reference_task, table_rows

VECTOR = "/api/v0/data_pipeline/vector"
REFERENCE_TS = "20250721_215758"


def with_reference_backup(root, reference_dir):
    """`root` whose training data directory holds the reference vector backup set."""
    shutil.copytree(reference_dir / "reference_vector_backup", root / "training_data" / "vector_bak")
    adopt_backup_set(root / "training_data" / "vector_bak", REFERENCE_TS)
    return root


def start_server(tmp_path_factory, embedded_pg_dir, reference_dir, store: str, name: str) -> ApiServer:
    root = with_reference_backup(tmp_path_factory.mktemp(name), reference_dir)
    env = own_directories_env(root, embedded_pg_dir, DATA_PIPELINE_DB_URL=store, LLM_BASE_URL="", LLM_MODEL="",
                              EMBEDDING_PROVIDER="hash", DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING="1")
    return ApiServer(env, root).start()


def fresh_database(admin_url: str, extensions: tuple[str, ...] = ()) -> str:
    name = f"dp_vecapi_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(admin_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        for extension in extensions:
            conn.execute(f'create extension if not exists "{extension}"')
    return url


def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def vector_api(tmp_path_factory, embedded_pg_dir, embedded_base_url, reference_dir):
    store = fresh_database(embedded_base_url, ("vector",))
    server = start_server(tmp_path_factory, embedded_pg_dir, reference_dir, store, "vector-api")
    server.store = store
    yield server
    server.stop()
    drop_database(embedded_base_url, store)


@pytest.fixture(scope="module")
def plain_client(tmp_path_factory, embedded_pg_dir, local_pg_admin_url, reference_dir):
    """The service in-process (Flask's test client), its store on the machine's PostgreSQL: no pgvector."""
    store = fresh_database(local_pg_admin_url)
    root = with_reference_backup(tmp_path_factory.mktemp("plain-app"), reference_dir)
    app = build_app(embedded_pg_dir, root, db_url=store, embedding_provider="hash")
    yield app.test_client()
    close_app(app)
    drop_database(local_pg_admin_url, store)


def test_list_shows_the_reference_backup(vector_api):
    body = vector_api.get(f"{VECTOR}/restore/list").json()
    assert body["success"] is True
    location = body["data"]["backup_locations"][0]
    assert (location["type"], location["relative_path"]) == ("global", "vector_bak")
    assert location["backups"][0]["timestamp"] == REFERENCE_TS
    assert location["backups"][0]["embedding_size"] == "764.0 KB"
    assert body["data"]["summary"]["global_backup_sets"] >= 1
    only_tasks = vector_api.get(f"{VECTOR}/restore/list", params={"task_id": "task_20250101_000000"}).json()
    assert only_tasks["data"]["backup_locations"] == []


def test_restore_backup_and_restore_again_over_http(vector_api):
    restored = vector_api.post(f"{VECTOR}/restore", json={
        "backup_path": "vector_bak", "timestamp": REFERENCE_TS, "truncate_before_restore": True})
    assert restored.status_code == 200, restored.text
    assert restored.json()["data"]["restored_rows"] == {"langchain_pg_collection": 4, "langchain_pg_embedding": 58}
    before = table_rows(vector_api.store)
    assert len(before) == 58

    backup = vector_api.post(f"{VECTOR}/backup", json={})
    assert backup.status_code == 200, backup.text
    data = backup.json()["data"]
    assert data["backup_dir"] == "vector_bak" and [f["rows"] for f in data["files"]] == [4, 58]
    assert str(vector_api.training_data_dir) not in backup.text
    assert (vector_api.training_data_dir / "vector_bak" / data["files"][1]["file"]).is_file()
    listed = vector_api.get(f"{VECTOR}/restore/list").json()["data"]["backup_locations"][0]["backups"]
    assert [b["timestamp"] for b in listed][:2] == [data["timestamp"], REFERENCE_TS]

    with psycopg.connect(vector_api.store) as conn:
        conn.execute("delete from langchain_pg_embedding where id like '%-doc'")
    again = vector_api.post(f"{VECTOR}/restore", json={
        "backup_path": "vector_bak", "timestamp": data["timestamp"], "tables": ["langchain_pg_embedding"]})
    assert again.status_code == 200, again.text
    assert table_rows(vector_api.store) == before


@pytest.mark.parametrize("body, status, code, param", [
    ({"backup_path": "vector_bak", "timestamp": "2025-07-21"}, 400, "VALIDATION_ERROR", "timestamp"),
    ({"backup_path": "vector_bak", "timestamp": REFERENCE_TS, "truncate_before_restore": "yes"}, 400,
     "VALIDATION_ERROR", "truncate_before_restore"),
    ({"backup_path": "vector_bak", "timestamp": REFERENCE_TS, "tables": ["pg_authid"]}, 400, "VALIDATION_ERROR",
     "tables"),
    ({"timestamp": REFERENCE_TS}, 400, "VALIDATION_ERROR", "backup_path"),
    ({"backup_path": "vector_bak", "timestamp": REFERENCE_TS, "force": True}, 400, "VALIDATION_ERROR", "force"),
    ({"backup_path": "../../etc", "timestamp": REFERENCE_TS}, 400, "INVALID_FILE_PATH", "backup_path"),
    ({"backup_path": "/tmp", "timestamp": REFERENCE_TS}, 400, "INVALID_FILE_PATH", "backup_path"),
    ({"backup_path": "vector_bak", "timestamp": "20990101_000000"}, 404, "FILE_NOT_FOUND", "timestamp"),
])
def test_restore_refuses_bad_requests(vector_api, body, status, code, param):
    error_of(vector_api.post(f"{VECTOR}/restore", json=body), status, code, param)


def test_backup_takes_no_parameters(vector_api):
    error_of(vector_api.post(f"{VECTOR}/backup", json={"truncate": True}), 400, "VALIDATION_ERROR", "truncate")


def test_restore_into_a_store_without_pgvector_is_a_clear_error(plain_client):
    response = plain_client.post(f"{VECTOR}/restore", json={"backup_path": "vector_bak", "timestamp": REFERENCE_TS})
    body = error_of(response, 500, "PGVECTOR_NOT_AVAILABLE")
    assert body["error"]["type"] == "VectorStoreError" and "pgvector" in body["error"]["details"]


def test_backup_of_a_store_without_vector_tables_is_empty(plain_client):
    assert [f["rows"] for f in data_of(plain_client.post(f"{VECTOR}/backup"))["files"]] == [0, 0]


def test_training_load_step_through_the_executor(vector_api, reference_dir):
    """The real step in the real executor: backup + verified truncate, load, result in the status."""
    task_id = vector_api.create_task(task_name="向量加载", backup_vector_tables=True)
    vector_api.set_table_list(task_id, ["bss_company"])
    task_dir = vector_api.training_data_dir / task_id
    copy_reference_task(reference_dir, task_dir)

    response = vector_api.execute(task_id, execution_mode="step", step_name="training_load",
                                  truncate_vector_tables=True)
    assert response.status_code == 202, response.text
    task = vector_api.wait_for(task_id)

    assert task["step_status"]["training_load"] == "completed", task
    result = json.loads((task_dir / "training_load_result.json").read_text(encoding="utf-8"))
    assert result["data_type_counts"] == {"sql": 50, "ddl": 7, "documentation": 8}
    assert result["vector_management"]["truncate_performed"] is True
    backup = result["vector_management"]["backup"]
    assert (task_dir / "vector_bak" / backup["files"][1]["file"]).is_file()
    assert len(table_rows(vector_api.store)) == 65  # whatever was there before went into the backup
    listed = vector_api.get(f"{VECTOR}/restore/list", params={"task_id": task_id}).json()["data"]
    assert listed["backup_locations"][0]["backups"][0]["timestamp"] == backup["timestamp"]
    log = (task_dir / "data_pipeline.log").read_text(encoding="utf-8")
    assert "TrainingDataLoader" in log and "向量加载完成" in log


def test_complete_offline_workflow_on_the_demo_database(vector_api):
    """All four steps on the demo database with no LLM, then the store read as Vanna would."""
    task_id = vector_api.create_task(task_name="完整流程", business_context="高速公路服务区管理系统",
                                     truncate_vector_tables=True)
    vector_api.set_table_list(task_id, list(DEMO_TABLES))
    task_dir = vector_api.training_data_dir / task_id

    assert vector_api.execute(task_id, execution_mode="complete").status_code == 202
    task = vector_api.wait_for(task_id, timeout=600)

    assert task["status"] == "completed", task
    result = json.loads((task_dir / "training_load_result.json").read_text(encoding="utf-8"))
    with psycopg.connect(vector_api.store) as conn:
        stored = dict(conn.execute(
            """select c.name, count(*) from langchain_pg_embedding e
                 join langchain_pg_collection c on c.uuid = e.collection_id
                where e.cmetadata @> %s group by c.name""", [json.dumps({"task_id": task_id})]).fetchall())
        sql_documents = [row[0] for row in conn.execute(
            "select document from langchain_pg_embedding where cmetadata @> %s and id like '%%-sql'",
            [json.dumps({"task_id": task_id})]).fetchall()]
    assert stored == result["data_type_counts"]
    assert result["data_type_counts"]["ddl"] == len(DEMO_TABLES)

    pairs = json.loads(pair_files(task_dir)[0].read_text(encoding="utf-8"))
    assert len(sql_documents) == len(pairs) == result["data_type_counts"]["sql"]
    for document in sql_documents:
        parsed = json.loads(document)
        assert parsed == ast.literal_eval(document) and set(parsed) == {"question", "sql"}
    assert sorted(map(json.loads, sql_documents), key=json.dumps) == sorted(pairs, key=json.dumps)

    engine = store_engine(vector_api.store)
    try:
        sql_store = ensure_collections(engine, HashEmbeddings(), ["sql"])["sql"]
        misses = [pair["question"] for pair in pairs
                  if json.loads(sql_store.similarity_search(pair["question"], k=1)[0].page_content) != pair]
    finally:
        engine.dispose()
    assert misses == []
