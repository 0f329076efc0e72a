"""Issue 14 item 3, the load side: a pair whose SQL the guard refuses never becomes training data,
whether or not sql_validation ran (validation disabled, a pair file uploaded afterwards)."""
from __future__ import annotations

import psycopg

from data_pipeline.steps import training_load
from tests.support.vector_tasks import step_context, write_pairs

HOSTILE = ["SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/x')", "SELECT pg_notify('c', 'x')",
           "SELECT pg_sleep(1e6)", "DELETE FROM bss_company", "SELECT 1; DROP TABLE bss_company",
           "SELECT * FROM pg_authid", "SELECT * FROM t WHERE id = (table_to_xml('t', true, true, ''))::text::int"]
FINE = ["SELECT count(*) FROM bss_company", "SELECT company_name FROM bss_company ORDER BY 1 LIMIT 5"]


def test_refused_sql_is_never_loaded(make_embedded_db, tmp_path):
    store = make_embedded_db(extensions=("vector",))
    task_dir = tmp_path / "task_20250101_000000"
    task_dir.mkdir()
    (task_dir / "bss_company.ddl").write_text("create table bss_company (id int, company_name text);")
    write_pairs(task_dir, [{"question": f"问题{i}", "sql": sql} for i, sql in enumerate(HOSTILE + FINE)])

    result = training_load.run(step_context(task_dir, store, task_id=task_dir.name))

    assert result["refused_pairs"] == len(HOSTILE) and result["data_type_counts"]["sql"] == len(FINE)
    with psycopg.connect(store) as conn:
        documents = [row[0] for row in conn.execute("select document from langchain_pg_embedding")]
    loaded = "\n".join(documents)
    assert all(sql in loaded for sql in FINE)
    assert not any(word in loaded for word in ("lo_export", "pg_notify", "pg_sleep", "DELETE", "DROP", "pg_authid",
                                               "table_to_xml"))
