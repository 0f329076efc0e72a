"""Helpers for the vector tests: task directories, step contexts, and reading the tables back the
way a stock Vanna `PG_VectorStore` does."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text

from config import Settings
from data_pipeline.db.databases import sqlalchemy_url
from data_pipeline.steps.context import StepContext

REFERENCE_PAIR_FILE = "qs_highway_db_20250721_234914_pair.json"


def copy_reference_task(reference_dir: Path, task_dir: Path) -> Path:
    """A task directory holding the reference DDL, MD and pair files (outside the project)."""
    task_dir.mkdir(parents=True, exist_ok=True)
    source = reference_dir / "reference_task_output"
    for path in source.iterdir():
        if path.name.endswith((".ddl", "_detail.md", "_pair.json")):
            shutil.copy(path, task_dir / path.name)
    return task_dir


def write_pairs(task_dir: Path, pairs: list[dict], name: str = "qs_highway_db_20250101_000000_pair.json") -> Path:
    path = task_dir / name
    path.write_text(json.dumps(pairs, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def step_context(task_dir: Path, store_url: str, *, task_id: str = "task_20250101_000000",
                 settings: Settings | None = None, **flags) -> StepContext:
    progress: list[tuple[int, int, str]] = []
    ctx = StepContext(task_id=task_id, task_dir=task_dir, settings=settings or Settings(),
                      db_url="", db_name="highway_db", business_context="高速公路服务区管理系统",
                      tables=[], params={}, store_url=store_url,
                      report_progress=lambda done, total, unit: progress.append((done, total, unit)),
                      **flags)
    ctx.progress_reports = progress
    return ctx


def table_rows(url: str) -> list[tuple]:
    """Every embedding row with its vector as text, sorted by id: for exact comparisons."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("select to_regclass('langchain_pg_embedding') is not null").fetchone()[0]
        if not exists:
            return []
        return conn.execute("select id, collection_id::text, embedding::text, document, cmetadata::text "
                            "from langchain_pg_embedding order by id").fetchall()


def collections(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {name: str(uuid) for uuid, name in
                conn.execute("select uuid, name from langchain_pg_collection").fetchall()}


def vanna_training_data(url: str) -> tuple[list[dict], int]:
    """`PG_VectorStore.get_training_data` of Vanna, step for step (without pandas):
    classify each row by the last three characters of `cmetadata["id"]`, `ast.literal_eval` the
    sql documents, skip what does not parse or has an unknown suffix. Returns (rows, skipped)."""
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT cmetadata, document FROM langchain_pg_embedding")).mappings().all()
    finally:
        engine.dispose()
    processed, skipped = [], 0
    for row in rows:
        custom_id = row["cmetadata"]["id"]
        document = row["document"]
        training_data_type = "documentation" if custom_id[-3:] == "doc" else custom_id[-3:]
        if training_data_type == "sql":
            try:
                doc_dict = ast.literal_eval(document)
                question = doc_dict.get("question")
                content = doc_dict.get("sql")
            except (ValueError, SyntaxError):
                skipped += 1
                continue
        elif training_data_type in ["documentation", "ddl"]:
            question = None
            content = document
        else:
            skipped += 1
            continue
        processed.append({"id": custom_id, "question": question, "content": content,
                          "training_data_type": training_data_type})
    return processed, skipped
