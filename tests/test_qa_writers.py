"""The output files' formats, and duplicate removal."""
from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import psycopg

from data_pipeline.qa.dedupe import remove_duplicates
from data_pipeline.qa.model import QAPair, Theme
from data_pipeline.qa.writers import pair_file_name, render_metadata_sql

def run_sql_file(db_url: str, path: Path) -> None:
    """Run a SQL file as a user would: with psql, stopping at the first error (or, on a machine
    without psql, as one multi-statement query)."""
    if shutil.which("psql"):
        run = subprocess.run(["psql", db_url, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(path)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    else:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(path.read_text(encoding="utf-8"))


AWKWARD = [
    Theme(topic_name="O'Reilly 的主题 -- 不是注释", description="含 ' 单引号、\\ 反斜杠、\n换行 和 $$ 美元符",
          related_tables=["public.bss_company", "s.\"Odd Table\""], biz_entities=[], biz_metrics=["营收'占比"]),
    Theme(topic_name="长" * 150, description="", related_tables=[], biz_entities=["a", "b"], biz_metrics=[]),
]


def test_metadata_sql_survives_awkward_text(make_local_db, tmp_path):
    text = render_metadata_sql(AWKWARD, db_name="db\n; drop table x", business_context="背景\n; drop table y;",
                               when=datetime(2025, 7, 21, 23, 49, 14))
    assert "-- 生成时间: 2025-07-21 23:49:14" in text
    path = tmp_path / "metadata.txt"
    path.write_text(text, encoding="utf-8")
    db_url = make_local_db("create table x (a int); create table y (a int);")
    for _ in range(2):  # CREATE TABLE IF NOT EXISTS: the file can run twice
        run_sql_file(db_url, path)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select topic_name, description, related_tables, biz_entities, biz_metrics "
                            "from metadata order by id").fetchall()
        tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
    assert tables == {"x", "y", "metadata"}
    first = rows[0]
    assert first == (AWKWARD[0].topic_name, AWKWARD[0].description, AWKWARD[0].related_tables, [], ["营收'占比"])
    assert rows[1][0] == "长" * 100 and rows[1][2] == [] and rows[1][3] == ["a", "b"]
    assert len(rows) == 4


def test_pair_file_name():
    assert pair_file_name("highway_db", datetime(2025, 7, 21, 23, 49, 14)) == "qs_highway_db_20250721_234914_pair.json"
    assert pair_file_name("../etc/x", datetime(2025, 1, 2, 3, 4, 5)) == "qs__etc_x_20250102_030405_pair.json"


def test_duplicates_and_near_duplicates_removed_but_different_values_kept():
    pairs = [QAPair(q, "SELECT 1") for q in [
        "2023年4月各服务区的营收合计是多少？",
        "2023年4月 各服务区的营收合计是多少",      # spacing and punctuation only
        "请问2023年4月各服务区的营收合计是多少？",  # a politer wording: near-duplicate
        "2023年5月各服务区的营收合计是多少？",      # another month: a different question
        "查询服务区“庐山服务区”的营收",
        "查询服务区“宜春服务区”的营收",            # another value: a different question
        "营收最高的服务区是哪个？",
        "营收最低的服务区是哪个？",                # one character, opposite meaning: kept
    ]]
    kept, removed = remove_duplicates(pairs)
    assert [p.question for p in kept] == ["2023年4月各服务区的营收合计是多少？", "2023年5月各服务区的营收合计是多少？",
                                          "查询服务区“庐山服务区”的营收", "查询服务区“宜春服务区”的营收",
                                          "营收最高的服务区是哪个？", "营收最低的服务区是哪个？"]
    assert removed == 2
