"""Retrieval self-recall of a task's pairs, measured after training_load: for every pair, a
similarity search with its question over the `sql` collection (cosine distance, as Vanna's
PG_VectorStore searches it, with the configured embeddings): is that pair first (recall@1), is it
among the first k (recall@k)? A hit is a row with the pair's own document text, whichever task
loaded it. The figures go to the quality report (data_pipeline/qa/quality.py).
"""
from __future__ import annotations

from data_pipeline.vector.documents import sql_document
from data_pipeline.vector.embeddings import TextEmbeddings
from data_pipeline.vector.store import COLLECTION_TABLE, EMBEDDING_TABLE, VectorTables, connect_store

K = 5


def self_recall(store_url: str, embeddings: TextEmbeddings, pairs: list[tuple[str, str]], k: int = K) -> dict:
    """{"k", "self_recall_at_1", "self_recall_at_5"} over `pairs` (question, sql); zeros when none.
    (The key keeps the issue's name; `k` says how many rows were looked at.)"""
    if not pairs:
        return {"k": k, "self_recall_at_1": 0.0, "self_recall_at_5": 0.0}
    vectors = embeddings.embed_array([question for question, _ in pairs])
    first = within = 0
    with connect_store(store_url) as conn:
        tables = VectorTables(conn)
        tables.register_vector_type()
        collection = tables.execute(f"select uuid from {COLLECTION_TABLE} where name = 'sql'").fetchone()
        if collection is None:
            return {"k": k, "self_recall_at_1": 0.0, "self_recall_at_5": 0.0}
        for (question, sql), vector in zip(pairs, vectors):
            found = [row[0] for row in conn.execute(
                f"select document from {EMBEDDING_TABLE} where collection_id = %s "
                f"order by embedding <=> %s limit %s", (collection[0], vector, k))]
            own = sql_document(question, sql)
            first += bool(found) and found[0] == own
            within += own in found
        conn.rollback()
    return {"k": k, "self_recall_at_1": round(first / len(pairs), 4), "self_recall_at_5": round(within / len(pairs), 4)}
