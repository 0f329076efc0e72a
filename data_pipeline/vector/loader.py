"""Loading one task's documents into the vector store, in one transaction.

Order matters: everything that can refuse the load (no pgvector, vectors of another dimension in
the collections) is checked before anything is written. Then `PGVector` creates whatever is
missing (extension, tables, collections), and one transaction upserts the task's documents by id,
embedded batch by batch as they stream into COPY, and removes the rows this task loaded earlier
that it no longer has. Rows anyone else wrote (other tasks, an assistant's own training) are
never touched: only rows whose metadata carries this task's id and our `source` are candidates.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

from sqlalchemy import event

from data_pipeline.errors import VectorStoreError
from data_pipeline.vector.documents import COLLECTIONS, TrainingDocument, owner_metadata
from data_pipeline.vector.embeddings import TextEmbeddings
from data_pipeline.vector.store import VectorTables, connect_store, ensure_collections, store_engine

_LOAD_LOCK_NAMESPACE = 0x5645_4354  # pg_advisory_xact_lock(namespace, key): one load per store at a time

Progress = Callable[[int, int, str], None]


def load_documents(store_url: str, embeddings: TextEmbeddings, task_id: str,
                   documents: list[TrainingDocument], *, progress: Progress | None = None,
                   logger: logging.Logger | None = None) -> dict:
    """Upsert `documents` for `task_id`, remove its stale rows; counts by collection."""
    logger = logger or logging.getLogger("TrainingLoader")
    progress = progress or (lambda done, total, unit: None)
    started = time.monotonic()
    dimension = embeddings.dimension
    engine = store_engine(store_url)
    setup_statements = _count_statements(engine)
    with connect_store(store_url) as conn:
        tables = VectorTables(conn)
        tables.execute("select pg_advisory_xact_lock(%s, %s)", [_LOAD_LOCK_NAMESPACE, 0])
        tables.require_pgvector()
        owner = owner_metadata(task_id)
        foreign = tables.foreign_dimensions(COLLECTIONS, dimension, except_owner=owner)
        if foreign:
            described = "，".join(f"{name}: {dims}" for name, dims in sorted(foreign.items()))
            raise VectorStoreError(
                f"向量集合中已有其他维度的向量（{described}），当前embedding模型 {embeddings.model_name} "
                f"的维度是 {dimension}。混合维度会使相似度检索失败；请改用相同的模型，"
                "或先备份并清空向量表（truncate_vector_tables）。",
                error_code="EMBEDDING_DIMENSION_MISMATCH")
        try:
            ensure_collections(engine, embeddings, COLLECTIONS)
        finally:
            engine.dispose()
        tables.register_vector_type()
        collection_ids = tables.collection_ids(COLLECTIONS)
        previous = tables.owned_rows(owner, collection_ids.values())

        written = tables.upsert(_rows(documents, embeddings, collection_ids, progress))
        if written != len(documents):
            raise VectorStoreError(f"写入了 {written} 行，应为 {len(documents)} 行；已回滚")
        current_ids = {document.id for document in documents}
        stale = [row_id for row_id in previous if row_id not in current_ids]
        removed = tables.delete(stale)
    progress(len(documents), len(documents), "documents")

    by_uuid = {value: name for name, value in collection_ids.items()}
    summary = {name: {"documents": 0, "loaded": 0, "updated": 0, "removed": 0} for name in COLLECTIONS}
    for document in documents:
        counts = summary[document.collection]
        counts["documents"] += 1
        counts["updated" if document.id in previous else "loaded"] += 1
    for row_id in stale:
        summary[by_uuid[previous[row_id]]]["removed"] += 1
    duration = time.monotonic() - started
    logger.info("向量加载完成: %d 个文档（新增 %d，更新 %d，删除过期 %d），用时 %.2fs",
                len(documents), sum(c["loaded"] for c in summary.values()),
                sum(c["updated"] for c in summary.values()), removed, duration)
    return {
        "collections": summary,
        "total_records": len(documents),
        "data_type_counts": {name: summary[name]["documents"] for name in COLLECTIONS},
        "embedding": {"model": embeddings.model_name, "dimension": dimension, "calls": embeddings.calls},
        "sql_round_trips": tables.statements + setup_statements[0],
        "duration": round(duration, 3),
    }


def _rows(documents: list[TrainingDocument], embeddings: TextEmbeddings, collection_ids: dict,
          progress: Progress) -> Iterator[tuple]:
    """Rows for COPY, embedding one batch at a time so memory does not grow with the load."""
    step = max(1, embeddings.batch_size)
    for start in range(0, len(documents), step):
        batch = documents[start:start + step]
        vectors = embeddings.embed_array([document.text for document in batch])
        for document, vector in zip(batch, vectors):
            yield document.id, collection_ids[document.collection], vector, document.text, document.metadata
        progress(start + len(batch), len(documents), "documents")


def _count_statements(engine) -> list[int]:
    counter = [0]

    def count(*args) -> None:
        counter[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    return counter

