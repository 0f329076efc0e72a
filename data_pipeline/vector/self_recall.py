"""Retrieval self-recall of a task's pairs, measured after training_load: for every pair, a
similarity search with its question over the `sql` collection (cosine distance, as Vanna's
PG_VectorStore searches it, with the configured embeddings): is that pair first (recall@1), is it
among the first k (recall@k)? A hit is a row with the pair's own document text, whichever task
loaded it. The figures go to the quality report (data_pipeline/qa/quality.py).

The collection's vectors are read once and the cosine distances computed here, a block of
questions at a time: the same order pgvector's `<=>` gives, without one scan per pair.
"""
from __future__ import annotations

import numpy as np

from data_pipeline.vector.documents import sql_document
from data_pipeline.vector.embeddings import TextEmbeddings
from data_pipeline.vector.store import COLLECTION_TABLE, EMBEDDING_TABLE, VectorTables, connect_store

K = 5
BLOCK = 512


def self_recall(store_url: str, embeddings: TextEmbeddings, pairs: list[tuple[str, str]], k: int = K) -> dict:
    """{"k", "self_recall_at_1", "self_recall_at_5"} over `pairs` (question, sql); zeros when none.
    (The key keeps the issue's name; `k` says how many rows were looked at.)"""
    if not pairs:
        return {"k": k, "self_recall_at_1": 0.0, "self_recall_at_5": 0.0}
    queries = _unit(np.asarray(embeddings.embed_array([question for question, _ in pairs]), dtype=np.float32))
    with connect_store(store_url) as conn:
        tables = VectorTables(conn)
        tables.register_vector_type()
        rows = tables.execute(
            f"select e.document, e.embedding from {EMBEDDING_TABLE} e join {COLLECTION_TABLE} c "
            f"on c.uuid = e.collection_id where c.name = 'sql'").fetchall()
        conn.rollback()
    if not rows:
        return {"k": k, "self_recall_at_1": 0.0, "self_recall_at_5": 0.0}
    documents = [document for document, _ in rows]
    stored = _unit(np.stack([np.asarray(vector, dtype=np.float32) for _, vector in rows]))
    first = within = 0
    for start in range(0, len(pairs), BLOCK):
        similarity = queries[start:start + BLOCK] @ stored.T
        top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        for (question, sql), found in zip(pairs[start:start + BLOCK], top):
            own = sql_document(question, sql)
            texts = [documents[i] for i in found]
            first += texts[0] == own
            within += own in texts
    return {"k": k, "self_recall_at_1": round(first / len(pairs), 4), "self_recall_at_5": round(within / len(pairs), 4)}


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)
