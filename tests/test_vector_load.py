"""training_load into pgvector on the embedded PostgreSQL, read back as a stock Vanna would."""
from __future__ import annotations

import ast
import json
import os
import time
import uuid

import psycopg
import pytest
from langchain_postgres.vectorstores import PGVector

from config import Settings
from data_pipeline.errors import StepFailed, VectorStoreError
from data_pipeline.steps import training_load
from data_pipeline.vector.embeddings import HashEmbeddings
from data_pipeline.vector.store import ensure_collections, store_engine
from tests.support.fake_llm import FakeLLMServer
from tests.support.vector_tasks import (REFERENCE_PAIR_FILE, collections, copy_reference_task, step_context,
                                  table_rows, vanna_training_data, write_pairs)


@pytest.fixture
def task_dir(tmp_path, reference_dir):
    return copy_reference_task(reference_dir, tmp_path / "task_20250721_213627")


@pytest.fixture
def store(make_embedded_db):
    return make_embedded_db(extensions=("vector",))


def reference_pairs(task_dir) -> list[dict]:
    return json.loads((task_dir / REFERENCE_PAIR_FILE).read_text(encoding="utf-8"))


def add_foreign_rows(url: str) -> list[str]:
    """Rows as Vanna's own `train()` writes them: random ids, no source, through stock PGVector."""
    engine = store_engine(url)
    try:
        sql_store = PGVector(embeddings=HashEmbeddings(), connection=engine, collection_name="sql")
        ids = [f"{uuid.uuid4()}-sql" for _ in range(2)]
        documents = [json.dumps({"question": f"别人的问题{i}", "sql": f"SELECT {i};"}, ensure_ascii=False)
                     for i in range(2)]
        sql_store.add_texts(documents, metadatas=[{"id": i, "createdat": None} for i in ids], ids=ids)
    finally:
        engine.dispose()
    return ids


def test_load_writes_one_vanna_document_per_table_file_and_pair(task_dir, store):
    ctx = step_context(task_dir, store, task_id="task_20250721_213627")

    result = training_load.run(ctx)

    pairs = reference_pairs(task_dir)
    ddl_files = sorted(p.name for p in task_dir.glob("*.ddl"))
    md_files = sorted(p.name for p in task_dir.glob("*_detail.md"))
    assert result["data_type_counts"] == {"sql": len(pairs), "ddl": len(ddl_files), "documentation": len(md_files)}
    assert result["total_records"] == len(pairs) + len(ddl_files) + len(md_files)
    assert result["collections"]["sql"] == {"documents": 50, "loaded": 50, "updated": 0, "removed": 0}
    assert result["embedding"] == {"provider": "hash", "model": "hash-ngram-512", "dimension": 512, "calls": 1}
    assert ctx.progress_reports[-1] == (result["total_records"],) * 2 + ("documents",)
    assert set(collections(store)) == {"sql", "ddl", "documentation"}

    rows = table_rows(store)
    assert len(rows) == result["total_records"]
    by_collection = {name: uuid_ for name, uuid_ in collections(store).items()}
    sql_documents = []
    for row_id, collection_id, _, document, metadata_text in rows:
        metadata = json.loads(metadata_text)
        assert metadata["id"] == row_id
        assert metadata["source"] == "data_pipeline" and metadata["task_id"] == "task_20250721_213627"
        assert metadata["embedding_model"] == "hash-ngram-512"
        if row_id.endswith("-sql"):
            assert collection_id == by_collection["sql"]
            parsed_json, parsed_literal = json.loads(document), ast.literal_eval(document)
            assert parsed_json == parsed_literal and set(parsed_json) == {"question", "sql"}
            sql_documents.append(parsed_json)
        elif row_id.endswith("-ddl"):
            assert collection_id == by_collection["ddl"]
            assert document == (task_dir / metadata["file"]).read_text(encoding="utf-8")
            assert metadata["table"].startswith("public.bss_")
        else:
            assert row_id.endswith("-doc") and collection_id == by_collection["documentation"]
            assert document == (task_dir / metadata["file"]).read_text(encoding="utf-8")
            assert metadata["table"]
    assert sorted(sql_documents, key=json.dumps) == sorted(pairs, key=json.dumps)


def test_every_question_finds_its_own_pair_first(task_dir, store):
    training_load.run(step_context(task_dir, store))
    engine = store_engine(store)
    try:
        sql_store = ensure_collections(engine, HashEmbeddings(), ["sql"])["sql"]
        for pair in reference_pairs(task_dir):
            best = sql_store.similarity_search(pair["question"], k=1)[0]
            assert ast.literal_eval(best.page_content) == pair
    finally:
        engine.dispose()


def test_vanna_read_path_classifies_every_row(task_dir, store):
    foreign = add_foreign_rows(store)
    result = training_load.run(step_context(task_dir, store))

    rows, skipped = vanna_training_data(store)

    assert skipped == 0
    assert len(rows) == result["total_records"] + len(foreign)
    counts = {kind: sum(1 for r in rows if r["training_data_type"] == kind) for kind in ("sql", "ddl", "documentation")}
    assert counts == {"sql": 50 + len(foreign), "ddl": 7, "documentation": 8}
    ours = {(r["question"], r["content"]) for r in rows if r["training_data_type"] == "sql"}
    assert {(p["question"], p["sql"]) for p in reference_pairs(task_dir)} <= ours


def test_reload_updates_in_place_and_leaves_others_alone(task_dir, store):
    foreign = add_foreign_rows(store)
    other_dir = task_dir.parent / "task_other"
    other_dir.mkdir()
    write_pairs(other_dir, [{"question": "其他任务的问题", "sql": "SELECT 1;"}])
    training_load.run(step_context(other_dir, store, task_id="task_other"))
    untouched_before = [r for r in table_rows(store) if r[0] in foreign or "task_other" in r[4]]

    first = training_load.run(step_context(task_dir, store))
    rows_after_first = table_rows(store)
    second = training_load.run(step_context(task_dir, store))

    assert table_rows(store) == rows_after_first
    assert second["collections"]["sql"] == {"documents": 50, "loaded": 0, "updated": 50, "removed": 0}
    assert second["total_records"] == first["total_records"]
    assert [r for r in table_rows(store) if r[0] in foreign or "task_other" in r[4]] == untouched_before
    assert len(untouched_before) == len(foreign) + 1


def test_fewer_pairs_remove_only_this_tasks_stale_rows(task_dir, store):
    foreign = add_foreign_rows(store)
    training_load.run(step_context(task_dir, store))
    others_before = [r for r in table_rows(store) if r[0] in foreign]
    pairs = reference_pairs(task_dir)
    newer = write_pairs(task_dir, pairs[:40], name="qs_highway_db_20250722_000000_pair.json")
    os.utime(newer, (time.time() + 5, time.time() + 5))  # newest pair file wins
    (task_dir / "bss_company.ddl").unlink()

    result = training_load.run(step_context(task_dir, store))

    assert result["files"]["pair_file"] == newer.name
    assert result["collections"]["sql"] == {"documents": 40, "loaded": 0, "updated": 40, "removed": 10}
    assert result["collections"]["ddl"]["removed"] == 1
    rows, _ = vanna_training_data(store)
    ours = [r for r in rows if r["id"] not in foreign]
    assert sum(1 for r in ours if r["training_data_type"] == "sql") == 40
    assert [r for r in table_rows(store) if r[0] in foreign] == others_before


def test_store_without_pgvector_fails_before_writing(task_dir, make_local_db):
    store = make_local_db()  # the machine's PostgreSQL 15 has no pgvector
    with pytest.raises(VectorStoreError) as caught:
        training_load.run(step_context(task_dir, store))
    assert caught.value.error_code == "PGVECTOR_NOT_AVAILABLE"
    assert "pgvector" in caught.value.details
    with psycopg.connect(store) as conn:
        assert conn.execute("select count(*) from pg_tables where tablename like 'langchain%'").fetchone()[0] == 0


def test_vectors_of_another_dimension_refuse_the_load_before_writing(task_dir, store, tmp_path):
    training_load.run(step_context(task_dir, store, task_id="task_hash"))
    before = table_rows(store)
    other_dir = tmp_path / "task_openai"
    other_dir.mkdir()
    write_pairs(other_dir, [{"question": "新问题", "sql": "SELECT 2;"}])
    with FakeLLMServer(embedding_dimensions=16) as server:
        settings = Settings().with_overrides(embedding_provider="openai", embedding_base_url=server.base_url,
                                             embedding_model="emb-16")
        with pytest.raises(VectorStoreError) as caught:
            training_load.run(step_context(other_dir, store, task_id="task_openai", settings=settings))
        assert caught.value.error_code == "EMBEDDING_DIMENSION_MISMATCH"
        assert "512" in caught.value.details and "16" in caught.value.details
        assert table_rows(store) == before

        # The same task may switch models: all of its own rows are replaced in the same transaction.
        result = training_load.run(step_context(task_dir, store, task_id="task_hash", settings=settings))
    assert result["embedding"]["dimension"] == 16
    with psycopg.connect(store) as conn:
        assert conn.execute("select array_agg(distinct vector_dims(embedding)) from langchain_pg_embedding"
                            ).fetchone()[0] == [16]
    assert len(table_rows(store)) == len(before)


def test_unusable_pair_file_fails_before_any_truncate(task_dir, store):
    training_load.run(step_context(task_dir, store))
    before = table_rows(store)
    broken = task_dir / "qs_highway_db_20250722_000000_pair.json"
    broken.write_text("[{\"question\": \"未闭合", encoding="utf-8")
    os.utime(broken, (time.time() + 5, time.time() + 5))

    with pytest.raises(StepFailed, match="JSON"):
        training_load.run(step_context(task_dir, store, truncate_vector_tables=True))
    assert table_rows(store) == before
    assert not (task_dir / "vector_bak").exists()


def test_pairs_without_question_or_sql_are_skipped_and_duplicates_loaded_once(tmp_path, store):
    write_pairs(tmp_path, [{"question": "问题一", "sql": "SELECT 1;"}, {"question": "问题一", "sql": "SELECT 1;"},
                           {"question": " ", "sql": "SELECT 2;"}, {"sql": "SELECT 3;"}, "not a pair",
                           {"question": "带 \"引号\" 和 \\ 反斜杠\n换行", "sql": "SELECT '\\n';"}])
    result = training_load.run(step_context(tmp_path, store))
    assert result["data_type_counts"]["sql"] == 2
    assert result["skipped_pairs"] == 3 and result["duplicate_pairs"] == 1
    rows, skipped = vanna_training_data(store)
    assert skipped == 0
    assert {r["question"] for r in rows} == {"问题一", "带 \"引号\" 和 \\ 反斜杠\n换行"}


def test_a_task_without_training_files_fails(tmp_path, store):
    with pytest.raises(StepFailed, match="没有可加载的训练数据"):
        training_load.run(step_context(tmp_path, store))


def test_documents_name_their_tables_and_ids_are_deterministic(tmp_path):
    from data_pipeline.vector.documents import collect

    (tmp_path / "Sales__Orders.ddl").write_text(
        '-- 中文名: 订单\ncreate table "Sales"."Orders (2024)" (\n  id integer\n);\n', encoding="utf-8")
    (tmp_path / "Sales__Orders_detail.md").write_text("## Sales.\"Orders (2024)\"（订单表）\n订单表\n",
                                                      encoding="utf-8")
    (tmp_path / "empty.ddl").write_text("  \n", encoding="utf-8")
    first = collect(tmp_path, "task_a", "m")
    again = collect(tmp_path, "task_a", "m")
    other_task = collect(tmp_path, "task_b", "m")

    tables = {d.collection: d.metadata["table"] for d in first.documents}
    assert tables == {"ddl": '"Sales"."Orders (2024)"', "documentation": 'Sales."Orders (2024)"'}
    assert [d.id for d in first.documents] == [d.id for d in again.documents]
    assert not {d.id for d in first.documents} & {d.id for d in other_task.documents}
    assert [d.id[-4:] for d in first.documents] == ["-ddl", "-doc"]
