"""qa_generation without an LLM, on real databases: the demo database documented by step 1, and
documents that promise a column the database does not have."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from collections import Counter

import psycopg
import pytest

from config import Settings
from data_pipeline.db.demo_db import DEMO_TABLES
from data_pipeline.qa import column_roles
from data_pipeline.qa.documents import Column, load_table_documents
from data_pipeline.qa.offline import generate_offline
from data_pipeline.steps import ddl_generation, qa_generation, sql_validation, training_load
from data_pipeline.steps.context import StepContext
from data_pipeline.schema.names import parse_table_name
from data_pipeline.validation.explain_validator import SQLValidator
from tests.support.pair_quality import check_pair_quality
from tests.test_qa_writers import run_sql_file

PAIR_FILE = re.compile(r"^qs_highway_db_\d{8}_\d{6}_pair\.json$")


def make_context(task_dir, db_url, tables, **overrides) -> StepContext:
    settings = Settings().with_overrides(**overrides) if overrides else Settings()
    return StepContext(task_id="task_test", task_dir=task_dir, settings=settings, db_url=db_url,
                       db_name="highway_db", business_context="高速公路服务区管理系统", tables=list(tables),
                       params={"enable_llm_repair": True, "modify_original_file": True})


@pytest.fixture(scope="module")
def demo_task(demo_db_url, tmp_path_factory):
    """A task directory documented by the real step 1 on the demo database, then step 2 offline."""
    task_dir = tmp_path_factory.mktemp("demo_task")
    ctx = make_context(task_dir, demo_db_url, DEMO_TABLES)
    assert ddl_generation.run(ctx)["processed_successfully"] == len(DEMO_TABLES)
    progress = []
    ctx.report_progress = lambda done, total, unit: progress.append((done, total, unit))
    result = qa_generation.run(ctx)
    return task_dir, ctx, result, progress


def test_offline_result_and_files(demo_task):
    task_dir, _, result, progress = demo_task
    assert PAIR_FILE.match(result["output_file"]), "a file name relative to the task directory"
    assert set(result) >= {"output_file", "total_questions", "total_themes", "successful_themes", "failed_themes",
                           "duration"}
    assert result["total_themes"] == result["successful_themes"] == len(DEMO_TABLES)
    assert result["failed_themes"] == [] and result["generator"] == "offline"
    pairs = json.loads((task_dir / result["output_file"]).read_text(encoding="utf-8"))
    assert len(pairs) == result["total_questions"]
    assert all(set(pair) == {"question", "sql"} for pair in pairs)
    assert len({pair["question"] for pair in pairs}) == len(pairs)
    assert progress[-1] == (len(DEMO_TABLES), len(DEMO_TABLES), "themes")
    scope = (task_dir / "db_query_decision_prompt.txt").read_text(encoding="utf-8")
    assert scope.startswith("=== 数据库业务范围 ===\n当前数据库存储的是高速公路服务区管理系统的相关数据")
    assert "核心业务实体：\n- " in scope and "关键业务指标：\n- 支付总金额：" in scope
    detail = (task_dir / "metadata_detail.md").read_text(encoding="utf-8")
    assert detail.startswith("## metadata（存储分析主题元数据）")
    assert "- `related_tables` (text[]) - 涉及的数据表 [示例: bss_company, bss_section_route, bss_service_area]" in detail


def test_every_generated_pair_passes_explain_and_respects_soft_delete(demo_task, demo_db_url):
    task_dir, _, result, _ = demo_task
    pairs = json.loads((task_dir / result["output_file"]).read_text(encoding="utf-8"))
    with psycopg.connect(demo_db_url) as conn:
        conn.read_only = True
        for pair in pairs:
            conn.execute("EXPLAIN " + pair["sql"])  # raises on the first pair that does not pass
        conn.rollback()
    soft_deleted = [t for t in DEMO_TABLES if t != "bss_section_route_area_link"]
    for pair in pairs:
        for table, alias in re.findall(r"(?:FROM|JOIN) (\w+)(?: ([a-z])(?= ))?", pair["sql"]):
            if table in soft_deleted:
                column = f"{alias}.delete_ts IS NULL" if alias else "delete_ts IS NULL"
                assert column in pair["sql"], pair["sql"]


def test_at_least_ten_pairs_per_table_with_three_or_more_columns(demo_task):
    task_dir, _, result, _ = demo_task
    pairs = json.loads((task_dir / result["output_file"]).read_text(encoding="utf-8"))
    anchors = Counter(re.search(r"FROM (\w+)", pair["sql"]).group(1) for pair in pairs)
    for table in DEMO_TABLES:
        if table != "bss_section_route_area_link":  # two columns
            assert anchors[table] >= 10, (table, anchors)
    kinds = " ".join(pair["sql"] for pair in pairs)
    for shape in ("GROUP BY car_type", "JOIN bss_service_area p ON", "JOIN bss_company g ON", "LIMIT 10",
                  "date_trunc('month', oper_date)", "SUM(pay_sum)", "car_type = '", "service_area_type = '"):
        assert shape in kinds, shape


def test_pairs_are_exact_varied_and_the_report_recounts(demo_task):
    """Issue 16 on the demo database: no duplicate, few bookkeeping pairs, exact literals, a
    by-time question per fact table, the report equal to a recount; and a spread of complexity."""
    task_dir, _, result, _ = demo_task
    report = check_pair_quality(task_dir)
    assert report["pairs_total"] == result["total_questions"]
    levels = report["complexity"]
    assert sum(1 for count in levels.values() if count) >= 3, levels
    assert (levels["complex"] + levels["highly_complex"]) / report["pairs_total"] >= 0.15, levels
    assert report["retrieval"] is None and report["llm_fallbacks"] == 0
    assert "| bss_car_day_count |" in (task_dir / "quality_report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name, bookkeeping", [
    ("last_update", True), ("updated_at", True), ("modified_by", True), ("modified_date", True),
    ("created_by", True), ("version", True), ("etl_load_time", True), ("synced_at", True), ("dw_batch_id", True),
    ("delete_ts", False), ("is_deleted", False), ("amount", False), ("order_date", False), ("status", False),
])
def test_bookkeeping_columns_by_name(name, bookkeeping):
    assert column_roles.is_bookkeeping(Column(name, "timestamp")) is bookkeeping


def test_literals_are_typed_for_their_column_and_domains_by_their_base_type():
    """`release_year = '2016'` and `activebool = 'true'` were the issue's examples."""
    from data_pipeline.qa.documents import TableDoc
    from data_pipeline.qa.templates import filter_on

    columns = [Column("release_year", "year"), Column("activebool", "boolean"), Column("rental_date", "timestamptz"),
               Column("paid_on", "public.payday"), Column("rating", "mpaa_rating", enum_values=["PG"])]
    column_roles.resolve_domains([TableDoc(parse_table_name("film"), columns=columns)],
                                 "create domain public.year as integer constraint year_check check (value > 1900);\n"
                                 "create domain public.payday as date;\n")
    assert filter_on(columns[0], "2016") == ("release_year = 2016", "release_year为“2016”")
    assert filter_on(columns[0], "20x6") is None
    assert filter_on(columns[1], "t") == ("activebool = TRUE", "activebool为“true”")
    assert filter_on(columns[2], "2022-05-26 08:24:26+00") == (
        "CAST(rental_date AS date) = DATE '2022-05-26'", "rental_date为“2022-05-26”当天")
    assert filter_on(columns[3], "2024-01-31") == ("paid_on = DATE '2024-01-31'", "paid_on为“2024-01-31”")
    assert filter_on(columns[4], "PG") == ("rating = 'PG'", "rating为“PG”")


def test_configured_bookkeeping_columns_are_left_alone(demo_task, demo_db_url, tmp_path):
    """DATA_PIPELINE_BOOKKEEPING_COLUMNS extends the list: no pair uses such a column, and the
    report counts the share with the same list."""
    for path in list(demo_task[0].glob("*.ddl")) + list(demo_task[0].glob("*_detail.md")):
        if path.name != "metadata_detail.md":
            shutil.copy(path, tmp_path / path.name)
    ctx = make_context(tmp_path, demo_db_url, DEMO_TABLES, bookkeeping_columns=("car_type", "service_area_t*"))
    result = qa_generation.run(ctx)
    pairs = json.loads((tmp_path / result["output_file"]).read_text(encoding="utf-8"))
    assert pairs and not [p["sql"] for p in pairs if "car_type" in p["sql"] or "service_area_type" in p["sql"]]
    assert any("customer_count" in p["sql"] for p in pairs)
    report = check_pair_quality(tmp_path, bookkeeping=("car_type", "service_area_t*"))
    assert report["bookkeeping_share"] == 0.0


def test_column_roles_are_worked_out_once_per_table_per_run(demo_task, demo_db_url, tmp_path, monkeypatch):
    """One qa_generation run decides each table's column roles once and carries them to the
    templates, the themes and the business scope."""
    task_dir = demo_task[0]
    for path in list(task_dir.glob("*.ddl")) + list(task_dir.glob("*_detail.md")):
        if path.name != "metadata_detail.md":
            shutil.copy(path, tmp_path / path.name)
    original, calls = column_roles.table_roles, Counter()

    def counting(doc, *args):
        calls[doc.table.full_name] += 1
        return original(doc, *args)

    # Wherever a module holds the function, so an import by name elsewhere is counted too.
    holders = [m for name, m in list(sys.modules.items())
               if name.startswith("data_pipeline.") and getattr(m, "table_roles", None) is original]
    assert column_roles in holders
    for module in holders:
        monkeypatch.setattr(module, "table_roles", counting)
    result = qa_generation.run(make_context(tmp_path, demo_db_url, DEMO_TABLES))
    assert result["generator"] == "offline" and result["total_questions"] > 0
    assert calls == Counter({parse_table_name(t).full_name: 1 for t in DEMO_TABLES})


def test_then_sql_validation_finds_nothing_to_fix(demo_task, demo_db_url):
    task_dir, ctx, result, _ = demo_task
    validated = sql_validation.run(ctx)
    assert validated["pair_file"] == result["output_file"]
    assert validated["valid_sql_count"] == validated["original_sql_count"] == result["total_questions"]


def test_training_load_self_recall_with_hash_embeddings(demo_task, make_embedded_db):
    """Issue 16: after training_load, every demo pair's question finds its pair among the first
    5 of the `sql` collection at least 90% of the time (hash embeddings); the report says so."""
    task_dir, ctx, _, _ = demo_task
    loaded = training_load.run(dataclasses.replace(ctx, store_url=make_embedded_db()))
    retrieval = loaded["retrieval"]
    assert retrieval["k"] == 5 and retrieval["self_recall_at_5"] >= 0.9, retrieval
    assert 0 < retrieval["self_recall_at_1"] <= retrieval["self_recall_at_5"]
    report = json.loads((task_dir / "quality_report.json").read_text(encoding="utf-8"))
    assert report["retrieval"] == retrieval
    assert report["pairs_total"] == loaded["data_type_counts"]["sql"]
    print(f"\ndemo self-recall (hash embeddings): {retrieval}")


def test_metadata_sql_runs(demo_task, make_local_db):
    task_dir, _, result, _ = demo_task
    db_url = make_local_db()
    run_sql_file(db_url, task_dir / "metadata.txt")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select topic_name, related_tables, biz_metrics from metadata order by id").fetchall()
    assert len(rows) == result["successful_themes"]
    assert rows[0][0] == "服务区管理公司信息分析" and rows[0][1] == ["bss_company"]
    assert rows[-1][1] == ["bss_car_day_count", "bss_service_area"] and "车辆数量合计" in rows[-1][2]


GHOST_SQL = """
create table shop (id integer primary key, shop_name varchar(50), city varchar(20), delete_ts timestamp);
create table sale (id integer primary key, shop_id integer references shop(id), amount numeric(10,2),
                   quantity integer, sale_date date, channel varchar(10), delete_ts timestamp);
"""

GHOST_DDL = """-- 中文名: 销售记录表
-- 描述: 每笔销售一行
create table public.sale (
  id integer not null, -- 主键ID
  shop_id integer, -- 店铺ID
  amount numeric(10,2), -- 销售金额
  refund_total numeric(10,2), -- 退款总金额
  quantity integer, -- 销售数量
  sale_date date, -- 销售日期
  channel varchar(10), -- 销售渠道
  delete_ts timestamp, -- 删除时间
  primary key (id)
  -- foreign key (shop_id) references public.shop(id)
);
"""

GHOST_MD = """## sale（销售记录表）
sale 表每笔销售一行
字段列表：
- id (integer) - 主键ID [主键, 非空]
- shop_id (integer) - 店铺ID [外键] [示例: 1, 2]
- amount (numeric(10,2)) - 销售金额 [示例: 10.50]
- refund_total (numeric(10,2)) - 退款总金额
- quantity (integer) - 销售数量 [示例: 3]
- sale_date (date) - 销售日期 [示例: 2023-01-05]
- channel (varchar(10)) - 销售渠道 [示例: 线上, O'Brien]
- delete_ts (timestamp) - 删除时间
字段补充说明：
- id 为主键
- shop_id 关联 public.shop.id
- channel 为枚举字段，包含取值：线上、门店、O'Brien
"""

SHOP_DDL = """-- 中文名: 店铺表
-- 描述: 店铺
create table public.shop (
  id integer not null, -- 主键ID
  shop_name varchar(50), -- 店铺名称
  city varchar(20), -- 城市
  delete_ts timestamp, -- 删除时间
  primary key (id)
);
"""


def test_sql_failing_explain_is_dropped_and_replaced(make_local_db, tmp_path):
    """The documents promise `refund_total`, which the database lacks: every template using it
    fails EXPLAIN, is dropped, and the next candidates take its place."""
    db_url = make_local_db(GHOST_SQL)
    (tmp_path / "sale.ddl").write_text(GHOST_DDL, encoding="utf-8")
    (tmp_path / "sale_detail.md").write_text(GHOST_MD, encoding="utf-8")
    (tmp_path / "shop.ddl").write_text(SHOP_DDL, encoding="utf-8")
    docs, _ = load_table_documents(tmp_path, [parse_table_name("sale"), parse_table_name("shop")])
    with SQLValidator(db_url, concurrency=2) as validator:
        result = generate_offline(docs, validator, per_table=12)
    sale_pairs = [p for p in result.pairs if p.theme == "销售记录分析"]
    assert result.rejected > 0
    assert len(sale_pairs) == 12
    assert not any("refund_total" in p.sql for p in result.pairs)
    assert any("channel = 'O''Brien'" in p.sql for p in sale_pairs), "sample values are quoted literals"
    with psycopg.connect(db_url) as conn:
        for pair in result.pairs:
            conn.execute("EXPLAIN " + pair.sql)
