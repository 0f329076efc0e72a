"""Backup of the vector tables, the verified truncate, and the round trip through restore."""
from __future__ import annotations

import csv
import json
import re
import sys
import threading
import time

import psycopg
import pytest

from data_pipeline.errors import VectorStoreError
from data_pipeline.steps import training_load
from data_pipeline.vector.backup import backup_vector_tables
from data_pipeline.vector.restore import restore_backup
from tests.support.vector_tasks import collections, copy_reference_task, step_context, table_rows
from tests.support.waiting import wait_until


@pytest.fixture
def store(make_embedded_db):
    return make_embedded_db(extensions=("vector",))


@pytest.fixture
def loaded(tmp_path, reference_dir, store):
    """A store holding the reference task's documents; returns the training data dir."""
    training_dir = tmp_path / "training_data"
    task_dir = copy_reference_task(reference_dir, training_dir / "task_20250721_213627")
    training_load.run(step_context(task_dir, store, task_id=task_dir.name))
    return training_dir


def read_csv(path) -> list[dict]:
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def lock_waiters(url: str) -> int:
    """Sessions of this database waiting for a lock another transaction holds."""
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from pg_stat_activity where datname = current_database() "
                            "and wait_event_type = 'Lock'").fetchone()[0]


def embedding_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from langchain_pg_embedding").fetchone()[0]


def test_backup_writes_both_tables_with_header_json_metadata_and_a_log(loaded, store, tmp_path):
    backup_dir = tmp_path / "bak"
    result = backup_vector_tables(store, backup_dir, task_id="task_x")

    backup = result["backup"]
    assert result["truncate"] is None
    assert re.fullmatch(r"\d{8}_\d{6}", backup["timestamp"])
    names = sorted(p.name for p in backup_dir.iterdir())
    ts = backup["timestamp"]
    assert names == [f"langchain_pg_collection_{ts}.csv", f"langchain_pg_embedding_{ts}.csv", "vector_backup_log.txt",
                     f"vector_backup_manifest_{ts}.json"]

    collection_rows = read_csv(backup_dir / f"langchain_pg_collection_{ts}.csv")
    embedding_rows = read_csv(backup_dir / f"langchain_pg_embedding_{ts}.csv")
    assert list(collection_rows[0]) == ["uuid", "name", "cmetadata"]
    assert list(embedding_rows[0]) == ["id", "collection_id", "embedding", "document", "cmetadata"]
    assert {r["name"] for r in collection_rows} == {"sql", "ddl", "documentation"}
    assert len(embedding_rows) == embedding_count(store) == 65
    assert [f["rows"] for f in backup["files"]] == [3, 65]
    for row in embedding_rows:
        assert json.loads(row["cmetadata"])["id"] == row["id"]
        assert len(json.loads(row["embedding"])) == 512

    log = (backup_dir / "vector_backup_log.txt").read_text(encoding="utf-8")
    assert log.startswith("=== Vector Table Backup Log ===\nBackup Time: ")
    assert "Task ID: task_x\n" in log
    assert f"✓ langchain_pg_embedding: 65 rows -> langchain_pg_embedding_{ts}.csv (" in log
    assert "Truncate Status:\n- langchain_pg_embedding: NOT TRUNCATED" in log
    assert embedding_count(store) == 65


def test_log_follows_the_reference_layout(loaded, store, tmp_path, reference_dir):
    backup_vector_tables(store, tmp_path / "bak", task_id="task_x", truncate=True)
    ours = (tmp_path / "bak" / "vector_backup_log.txt").read_text(encoding="utf-8").splitlines()
    reference = (reference_dir / "reference_vector_backup" / "vector_backup_log.txt").read_text(
        encoding="utf-8").splitlines()

    def shape(line: str) -> str:
        return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"task_\w+", "T", line))

    assert [shape(line) for line in ours] == [shape(line) for line in reference]


def test_two_backups_in_one_second_get_distinct_names_and_log_entries(loaded, store, tmp_path):
    first = backup_vector_tables(store, tmp_path / "bak")["backup"]["timestamp"]
    second = backup_vector_tables(store, tmp_path / "bak")["backup"]["timestamp"]
    assert first != second
    log = (tmp_path / "bak" / "vector_backup_log.txt").read_text(encoding="utf-8")
    assert log.count("=== Vector Table Backup Log ===") == 2
    assert "Task ID: standalone" in log


def test_backup_truncate_restore_gives_back_identical_rows(loaded, store):
    before_rows, before_collections = table_rows(store), collections(store)
    task_dir = loaded / "task_20250721_213627"

    result = training_load.run(step_context(task_dir, store, task_id=task_dir.name, truncate_vector_tables=True))
    management = result["vector_management"]
    assert management["backup_performed"] and management["truncate_performed"]
    assert management["truncate"] == {"table": "langchain_pg_embedding", "rows_removed": 65}
    assert management["backup"]["backup_dir"] == "vector_bak"

    with psycopg.connect(store) as conn:
        conn.execute("truncate langchain_pg_embedding")
    assert table_rows(store) == [] and collections(store) == before_collections

    restored = restore_backup(store, loaded, backup_path=f"{task_dir.name}/vector_bak",
                              timestamp=management["backup"]["timestamp"])
    assert restored["restored_rows"] == {"langchain_pg_collection": 3, "langchain_pg_embedding": 65}
    assert table_rows(store) == before_rows  # ids, collections, vectors, documents, metadata
    assert collections(store) == before_collections


def test_backup_into_an_unwritable_directory_fails_and_removes_nothing(loaded, store):
    task_dir = loaded / "task_20250721_213627"
    (task_dir / "vector_bak").write_text("a file where the backup directory should be", encoding="utf-8")
    before = table_rows(store)

    with pytest.raises(VectorStoreError) as caught:
        training_load.run(step_context(task_dir, store, task_id=task_dir.name, truncate_vector_tables=True))

    assert caught.value.error_code == "VECTOR_BACKUP_FAILED"
    assert table_rows(store) == before


def test_a_failure_while_writing_leaves_no_partial_files_and_no_truncate(loaded, store, tmp_path):
    backup_dir = tmp_path / "bak"
    backup_dir.mkdir()
    # The store goes away mid-backup: terminate the backend once the COPY has started.

    def kill_backup_backend():
        with psycopg.connect(store, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                killed = conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                      "where application_name = 'data_pipeline_vector' and query ilike 'copy%' "
                                      "and datname = current_database()"
                                      ).fetchall()
                if killed:
                    break
                time.sleep(0.001)

    with psycopg.connect(store, autocommit=True) as conn:  # make the copy slow enough to be caught
        conn.execute("insert into langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) "
                     "select 'bulk-' || g || '-' || id, collection_id, embedding, repeat(document, 20), cmetadata "
                     "from langchain_pg_embedding, generate_series(1, 60) g where id like '%-sql'")
    before = table_rows(store)
    killer = threading.Thread(target=kill_backup_backend)
    killer.start()
    with pytest.raises(VectorStoreError) as caught:
        backup_vector_tables(store, backup_dir, truncate=True)
    killer.join()
    assert caught.value.error_code == "VECTOR_BACKUP_FAILED"
    assert not any(p.name.startswith("langchain_pg_") for p in backup_dir.iterdir())
    assert not any(p.suffix == ".tmp" for p in backup_dir.iterdir())
    assert table_rows(store) == before


def test_a_writer_waiting_on_the_lock_lands_in_the_backup_not_in_the_void(loaded, store, tmp_path):
    """Rows written while the truncate is pending are either in the verified backup or still in
    the table afterwards — never removed unseen."""
    sql_collection = collections(store)["sql"]
    writer = psycopg.connect(store)
    writer.execute("insert into langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) "
                   "values ('late-writer-sql', %s, '[1,0,0]', '{}', '{\"id\": \"late-writer-sql\"}')",
                   [sql_collection])
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(
        backup_vector_tables(store, tmp_path / "bak", truncate=True)))
    worker.start()
    wait_until(lambda: lock_waiters(store), what="the backup waiting for the writer's lock")
    assert worker.is_alive()  # waiting for the writer's transaction
    writer.commit()
    writer.close()
    worker.join(timeout=30)

    backup = outcome["backup"]
    embedding_file = tmp_path / "bak" / backup["files"][1]["file"]
    assert "late-writer-sql" in {r["id"] for r in read_csv(embedding_file)}
    assert outcome["truncate"]["rows_removed"] == backup["files"][1]["rows"] == 66
    assert embedding_count(store) == 0


def test_backup_of_a_store_without_vector_tables_is_empty(make_embedded_db, tmp_path):
    store = make_embedded_db()
    result = backup_vector_tables(store, tmp_path / "bak", truncate=True)
    assert [f["rows"] for f in result["backup"]["files"]] == [0, 0]
    assert result["truncate"]["rows_removed"] == 0
    files = sorted((tmp_path / "bak").glob("*.csv"))
    assert [p.read_text().splitlines() for p in files] == [["uuid,name,cmetadata"],
                                                           ["id,collection_id,embedding,document,cmetadata"]]
