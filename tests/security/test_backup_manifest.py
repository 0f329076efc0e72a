"""Issue 14 item 6: a restore takes only backup sets the service wrote. Every backup writes a
manifest (row counts, SHA-256 of each file); restore refuses a set whose manifest is missing or
does not verify; an upload can never create a file that looks like a backup or land in vector_bak/."""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys

import psycopg
import pytest

from config import PROJECT_ROOT
from data_pipeline.steps import training_load
from tests.security.conftest import build_app
from tests.support.vector_tasks import step_context, table_rows

TASKS = "/api/v0/data_pipeline/tasks"
VECTOR = "/api/v0/data_pipeline/vector"
FORGED_TS = "20240101_000000"
PAIRS = [{"question": "每个服务区有多少辆车?", "sql": "SELECT service_area_id, count(*) FROM bss_car_day_count GROUP BY 1"},
         {"question": "公司有哪些?", "sql": "SELECT company_name FROM bss_company"}]


@pytest.fixture(scope="module")
def vector_app(embedded_pg_dir, embedded_base_url, tmp_path_factory):
    """The service with a store of its own (pgvector), holding one task's training data."""
    from tests.conftest import DatabaseFactory

    factory = DatabaseFactory(embedded_base_url, "dp_test_secweb")
    store = factory(extensions=("vector",))
    app = build_app(embedded_pg_dir, tmp_path_factory.mktemp("manifest"), db_url=store)
    client = app.test_client()
    task_id = client.post(TASKS, json={"task_name": "vectors"}).get_json()["data"]["task_id"]
    for name, content in (("bss_company.ddl", b"create table bss_company (id int, company_name text);"),
                          ("qs_x_20240101_000000_pair.json", json.dumps(PAIRS).encode())):
        assert upload(client, task_id, name, content).status_code == 200
    training_data_dir = app.extensions["data_pipeline"].settings.training_data_dir
    training_load.run(step_context(training_data_dir / task_id, store, task_id=task_id))
    app.store, app.task_id, app.training_data_dir = store, task_id, training_data_dir
    yield app
    factory.drop_all()


def upload(client, task_id: str, name: str, content: bytes):
    return client.post(f"{TASKS}/{task_id}/files", data={"file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def forged_set(store: str) -> dict[str, bytes]:
    """Two CSVs shaped like a backup whose embedding row replaces a stored `-sql` row's SQL."""
    with psycopg.connect(store) as conn:
        uuid, name = conn.execute("select uuid, name from langchain_pg_collection where name = 'sql'").fetchone()
        row_id, embedding, metadata = conn.execute(
            "select id, embedding::text, cmetadata::text from langchain_pg_embedding "
            "where collection_id = %s order by id limit 1", (uuid,)).fetchone()
    forged = json.dumps({"question": "x", "sql": "DROP TABLE bss_company"})
    return {
        f"langchain_pg_collection_{FORGED_TS}.csv": f'uuid,name,cmetadata\n{uuid},{name},\n'.encode(),
        f"langchain_pg_embedding_{FORGED_TS}.csv":
            ('id,collection_id,embedding,document,cmetadata\n'
             f'{row_id},{uuid},"{embedding}","{forged.replace(chr(34), chr(34) * 2)}","{metadata.replace(chr(34), chr(34) * 2)}"\n').encode(),
    }


def documents(store: str) -> list[str]:
    with psycopg.connect(store) as conn:
        return [row[0] for row in conn.execute("select document from langchain_pg_embedding order by id")]


def restore(client, backup_path: str, timestamp: str):
    return client.post(f"{VECTOR}/restore", json={"backup_path": backup_path, "timestamp": timestamp})


def test_uploads_named_like_a_backup_are_refused(vector_app):
    client = vector_app.test_client()
    task_id = vector_app.task_id
    for name, content in forged_set(vector_app.store).items():
        response = upload(client, task_id, name, content)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["error"]["error_code"] in ("INVALID_FILE", "INVALID_FILE_PATH")
    for name in ("vector_bak/x.csv", "LANGCHAIN_PG_EMBEDDING_20240101_000000.csv",
                 "ｌａｎｇｃｈａｉｎ_pg_embedding_20240101_000000.csv", f"vector_backup_manifest_{FORGED_TS}.json",
                 "vector_backup_log.txt", "langchain_pg_collection.csv"):
        response = upload(client, task_id, name, b"id\n1\n")
        assert response.status_code == 400, (name, response.get_data(as_text=True))
    task_dir = vector_app.training_data_dir / task_id
    assert not any(p.name.lower().startswith(("langchain_pg", "vector_backup")) for p in task_dir.iterdir())
    assert not (task_dir / "vector_bak").exists()


def test_a_set_without_a_manifest_is_never_restored(vector_app):
    """The issue's attack: backup-shaped CSVs in a task directory, restored with backup_path = task id."""
    client = vector_app.test_client()
    task_dir = vector_app.training_data_dir / vector_app.task_id
    for name, content in forged_set(vector_app.store).items():
        (task_dir / name).write_bytes(content)  # however they got there
    before = table_rows(vector_app.store)
    try:
        response = restore(client, vector_app.task_id, FORGED_TS)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["error"]["error_code"] == "BACKUP_NOT_VERIFIED"
    finally:
        for name in forged_set(vector_app.store):
            (task_dir / name).unlink()
    assert table_rows(vector_app.store) == before
    assert not any("DROP TABLE" in document for document in documents(vector_app.store))


@pytest.fixture
def verified_backup(vector_app):
    client = vector_app.test_client()
    response = client.post(f"{VECTOR}/backup", json={})
    assert response.status_code == 200, response.get_data(as_text=True)
    backup = response.get_json()["data"]
    return vector_app.training_data_dir / backup["backup_dir"], backup["timestamp"]


def test_a_backup_writes_a_manifest_of_row_counts_and_sha256(vector_app, verified_backup):
    directory, timestamp = verified_backup
    manifest = json.loads((directory / f"vector_backup_manifest_{timestamp}.json").read_text())
    files = {entry["table"]: entry for entry in manifest["files"]}
    assert set(files) == {"langchain_pg_collection", "langchain_pg_embedding"}
    with psycopg.connect(vector_app.store) as conn:
        for table, entry in files.items():
            path = directory / entry["file"]
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["size_bytes"] == path.stat().st_size
            assert entry["rows"] == conn.execute(f"select count(*) from {table}").fetchone()[0] > 0
    listed = vector_app.test_client().get(f"{VECTOR}/restore/list").get_json()["data"]
    sets = [b for loc in listed["backup_locations"] for b in loc["backups"] if b["timestamp"] == timestamp]
    assert sets and sets[0]["has_manifest"] is True
    response = restore(vector_app.test_client(), directory.name, timestamp)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_changed_file_or_a_wrong_count_fails_verification(vector_app, verified_backup):
    client = vector_app.test_client()
    directory, timestamp = verified_backup
    embedding = directory / f"langchain_pg_embedding_{timestamp}.csv"
    manifest_path = directory / f"vector_backup_manifest_{timestamp}.json"
    original, manifest_text = embedding.read_bytes(), manifest_path.read_text()
    before = table_rows(vector_app.store)
    try:
        embedding.write_bytes(original.replace(b"SELECT company_name", b"DROP TABLE bss_company --"))
        response = restore(client, directory.name, timestamp)
        assert response.status_code == 400 and response.get_json()["error"]["error_code"] == "BACKUP_NOT_VERIFIED"
        assert "SHA-256" in response.get_json()["error"]["details"]

        # A manifest rewritten to match the file is still held to the rows the file holds.
        manifest = json.loads(manifest_text)
        for entry in manifest["files"]:
            entry["sha256"] = hashlib.sha256((directory / entry["file"]).read_bytes()).hexdigest()
            entry["size_bytes"] = (directory / entry["file"]).stat().st_size
            if entry["table"] == "langchain_pg_embedding":
                entry["rows"] += 1
        manifest_path.write_text(json.dumps(manifest))
        response = restore(client, directory.name, timestamp)
        assert response.status_code >= 400 and "行" in response.get_json()["error"]["details"]

        manifest_path.write_text("{not json")
        response = restore(client, directory.name, timestamp)
        assert response.status_code == 400 and response.get_json()["error"]["error_code"] == "BACKUP_NOT_VERIFIED"
    finally:
        embedding.write_bytes(original)
        manifest_path.write_text(manifest_text)
    assert table_rows(vector_app.store) == before
    assert restore(client, directory.name, timestamp).status_code == 200


def test_the_operator_adopts_a_set_without_a_manifest_on_the_server(vector_app, verified_backup):
    """What docs/vectors.md tells an operator to run for a backup of the earlier implementation."""
    client = vector_app.test_client()
    directory, timestamp = verified_backup
    (directory / f"vector_backup_manifest_{timestamp}.json").unlink()
    refused = restore(client, directory.name, timestamp)
    assert refused.status_code == 400 and refused.get_json()["error"]["error_code"] == "BACKUP_NOT_VERIFIED"
    adopted = subprocess.run([sys.executable, "-m", "data_pipeline.vector.manifest", str(directory), timestamp],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert adopted.returncode == 0, adopted.stderr
    assert restore(client, directory.name, timestamp).status_code == 200
