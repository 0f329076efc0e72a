"""Listing and restoring vector backups: the reference backup, confinement, one transaction."""
from __future__ import annotations

import json
import shutil

import psycopg
import pytest

from data_pipeline.errors import NotFoundError, ValidationError, VectorStoreError
from data_pipeline.steps import training_load
from data_pipeline.vector.backup import backup_vector_tables
from data_pipeline.vector.manifest import adopt_backup_set, manifest_name
from data_pipeline.vector.restore import create_global_backup, list_backups, restore_backup
from tests.support.vector_tasks import collections, copy_reference_task, step_context, table_rows, vanna_training_data

REFERENCE_TS = "20250721_215758"


@pytest.fixture
def store(make_embedded_db):
    return make_embedded_db(extensions=("vector",))


@pytest.fixture
def training_dir(tmp_path, reference_dir):
    """A training data dir with the reference backup as a global backup set, adopted (its manifest
    written) as an operator would after checking it."""
    root = tmp_path / "training_data"
    shutil.copytree(reference_dir / "reference_vector_backup", root / "vector_bak")
    adopt_backup_set(root / "vector_bak", REFERENCE_TS)
    return root


def test_list_finds_global_and_task_backup_sets(training_dir, store, reference_dir):
    task_dir = copy_reference_task(reference_dir, training_dir / "task_20250801_120000")
    training_load.run(step_context(task_dir, store, task_id=task_dir.name, backup_vector_tables=True))
    (training_dir / "task_20250801_120000" / "vector_bak" / "langchain_pg_embedding_20250101_000000.csv").write_text(
        "id\n")  # half a set is not a set
    (training_dir / "task_without_backups").mkdir()

    listing = list_backups(training_dir)

    locations = listing["backup_locations"]
    assert [(l["type"], l["relative_path"]) for l in locations] == [
        ("global", "vector_bak"), ("task", "task_20250801_120000/vector_bak")]
    reference = locations[0]["backups"][0]
    assert reference == {
        "timestamp": REFERENCE_TS,
        "collection_file": f"langchain_pg_collection_{REFERENCE_TS}.csv",
        "embedding_file": f"langchain_pg_embedding_{REFERENCE_TS}.csv",
        "collection_size": "204.0 B", "embedding_size": "764.0 KB",
        "collection_size_bytes": 204, "embedding_size_bytes": 782328,
        "backup_date": "2025-07-21 21:57:58", "has_log": True, "has_manifest": True,
    }
    assert locations[1]["task_id"] == "task_20250801_120000"
    assert len(locations[1]["backups"]) == 1 and locations[1]["backups"][0]["has_log"]
    assert listing["summary"] | {"scan_time": None} == {
        "total_locations": 2, "total_backup_sets": 2, "global_backup_sets": 1, "task_backup_sets": 1,
        "scan_time": None}


def test_list_of_an_empty_or_missing_dir(tmp_path):
    assert list_backups(tmp_path / "missing")["summary"]["total_backup_sets"] == 0
    assert list_backups(tmp_path)["backup_locations"] == []


def test_reference_backup_restores_with_python_literal_metadata(training_dir, store):
    manifest = json.loads((training_dir / "vector_bak" / manifest_name(REFERENCE_TS)).read_text())
    assert [entry["rows"] for entry in manifest["files"]] == [4, 58]  # records, not lines (multi-line documents)
    result = restore_backup(store, training_dir, backup_path="vector_bak", timestamp=REFERENCE_TS)

    assert result["restored_rows"] == {"langchain_pg_collection": 4, "langchain_pg_embedding": 58}
    assert set(collections(store)) == {"sql", "ddl", "documentation", "error_sql"}
    rows = table_rows(store)
    assert len(rows) == 58
    sql_row = next(r for r in rows if r[0].endswith("-sql"))
    assert json.loads(sql_row[4]) == {"id": sql_row[0], "createdat": None}  # was "{'id': ..., 'createdat': None}"
    with psycopg.connect(store) as conn:
        assert conn.execute("select array_agg(distinct vector_dims(embedding)) from langchain_pg_embedding"
                            ).fetchone()[0] == [1024]
    classified, skipped = vanna_training_data(store)
    assert skipped == 0 and len(classified) == 58


def test_restore_refuses_mixed_dimensions_and_rolls_back(training_dir, store, reference_dir):
    task_dir = copy_reference_task(reference_dir, training_dir / "task_20250801_120000")
    training_load.run(step_context(task_dir, store, task_id=task_dir.name))  # 512-dimensional rows
    before = table_rows(store)

    with pytest.raises(VectorStoreError) as caught:
        restore_backup(store, training_dir, backup_path="vector_bak", timestamp=REFERENCE_TS)
    assert caught.value.error_code == "VECTOR_RESTORE_FAILED" and "维度" in caught.value.details
    assert table_rows(store) == before
    assert "error_sql" not in collections(store)

    result = restore_backup(store, training_dir, backup_path="vector_bak", timestamp=REFERENCE_TS,
                            truncate_before_restore=True)
    assert result["truncated_rows"] == len(before)
    assert len(table_rows(store)) == 58
    # The reference's collections have other uuids than ours: its rows join ours by name.
    ours = collections(store)
    with psycopg.connect(store) as conn:
        by_collection = dict(conn.execute(
            "select collection_id::text, count(*) from langchain_pg_embedding group by 1").fetchall())
    assert by_collection == {ours["sql"]: 43, ours["ddl"]: 7, ours["documentation"]: 8}


def test_restore_is_one_transaction(training_dir, store, reference_dir):
    task_dir = copy_reference_task(reference_dir, training_dir / "task_20250801_120000")
    training_load.run(step_context(task_dir, store, task_id=task_dir.name))
    backup = backup_vector_tables(store, task_dir / "vector_bak")["backup"]
    embedding_file = task_dir / "vector_bak" / backup["files"][1]["file"]
    with open(embedding_file, "a", encoding="utf-8") as stream:  # one bad row at the very end
        stream.write('broken-sql,00000000-0000-0000-0000-000000000000,"[1,2]",doc,"{not json nor python"\n')
    with pytest.raises(ValidationError, match="SHA-256"):
        restore_backup(store, training_dir, backup_path=f"{task_dir.name}/vector_bak", timestamp=backup["timestamp"])
    adopt_backup_set(task_dir / "vector_bak", backup["timestamp"])  # the manifest verifies: the row reaches COPY
    before = table_rows(store)

    with pytest.raises(VectorStoreError, match="cmetadata"):
        restore_backup(store, training_dir, backup_path=f"{task_dir.name}/vector_bak",
                       timestamp=backup["timestamp"], truncate_before_restore=True)
    assert table_rows(store) == before  # the truncate was rolled back with the rest


def test_restore_only_the_embedding_table(training_dir, store, reference_dir):
    task_dir = copy_reference_task(reference_dir, training_dir / "task_20250801_120000")
    training_load.run(step_context(task_dir, store, task_id=task_dir.name))
    before = table_rows(store)
    backup = backup_vector_tables(store, task_dir / "vector_bak", truncate=True)["backup"]

    result = restore_backup(store, training_dir, backup_path=f"{task_dir.name}/vector_bak",
                            timestamp=backup["timestamp"], tables=["langchain_pg_embedding"])
    assert result["restored_rows"] == {"langchain_pg_embedding": len(before)}
    assert table_rows(store) == before


@pytest.mark.parametrize("backup_path", ["../outside", "/etc", "vector_bak/../../outside", "task/../../x"])
def test_paths_outside_the_training_data_dir_are_refused(training_dir, store, backup_path):
    (training_dir.parent / "outside").mkdir(exist_ok=True)
    with pytest.raises(ValidationError) as caught:
        restore_backup(store, training_dir, backup_path=backup_path, timestamp=REFERENCE_TS)
    assert caught.value.error_code == "INVALID_FILE_PATH"


def test_a_symlink_out_of_the_training_data_dir_is_refused(training_dir, store, tmp_path, reference_dir):
    outside = tmp_path / "elsewhere"
    shutil.copytree(reference_dir / "reference_vector_backup", outside)
    (training_dir / "sneaky").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValidationError) as caught:
        restore_backup(store, training_dir, backup_path="sneaky", timestamp=REFERENCE_TS)
    assert caught.value.error_code == "INVALID_FILE_PATH"
    assert all(l["relative_path"] != "sneaky/vector_bak" for l in list_backups(training_dir)["backup_locations"])


def test_bad_parameters_and_missing_backups(training_dir, store):
    with pytest.raises(ValidationError) as caught:
        restore_backup(store, training_dir, backup_path="vector_bak", timestamp="2025-07-21")
    assert caught.value.invalid_params == ["timestamp"]
    with pytest.raises(ValidationError) as caught:
        restore_backup(store, training_dir, backup_path="vector_bak", timestamp=REFERENCE_TS,
                       tables=["pg_authid"])
    assert caught.value.invalid_params == ["tables"]
    with pytest.raises(NotFoundError) as caught:
        restore_backup(store, training_dir, backup_path="vector_bak", timestamp="20990101_000000")
    assert caught.value.error_code == "FILE_NOT_FOUND"
    with pytest.raises(NotFoundError):
        restore_backup(store, training_dir, backup_path="no_such_dir", timestamp=REFERENCE_TS)


def test_global_backup_is_listed_and_restorable(tmp_path, store, reference_dir):
    training_dir = tmp_path / "training_data"
    task_dir = copy_reference_task(reference_dir, training_dir / "task_20250801_120000")
    training_load.run(step_context(task_dir, store, task_id=task_dir.name))
    before = table_rows(store)

    backup = create_global_backup(store, training_dir)

    assert backup["backup_dir"] == "vector_bak"
    listing = list_backups(training_dir)
    assert listing["backup_locations"][0]["type"] == "global"
    assert listing["backup_locations"][0]["backups"][0]["timestamp"] == backup["timestamp"]
    with psycopg.connect(store) as conn:
        conn.execute("delete from langchain_pg_embedding where id like '%-sql'")
    restore_backup(store, training_dir, backup_path="vector_bak", timestamp=backup["timestamp"])
    assert table_rows(store) == before


def test_list_filters_by_task_or_global(training_dir, reference_dir):
    task_backup = training_dir / "task_20250801_120000" / "vector_bak"
    shutil.copytree(reference_dir / "reference_vector_backup", task_backup)
    assert [l["type"] for l in list_backups(training_dir)["backup_locations"]] == ["global", "task"]
    assert [l["type"] for l in list_backups(training_dir, global_only=True)["backup_locations"]] == ["global"]
    only_task = list_backups(training_dir, task_id="task_20250801_120000")["backup_locations"]
    assert [(l["type"], l["task_id"]) for l in only_task] == [("task", "task_20250801_120000")]
    assert list_backups(training_dir, task_id="task_20990101_000000")["backup_locations"] == []
