"""sql_validation against real PostgreSQL: the reference pairs, injected failures, LLM repair
through the fake OpenAI-compatible server, timeouts, and a database that goes away."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from config import Settings
from data_pipeline.errors import DatabaseError
from data_pipeline.llm.client import LLMClient
from data_pipeline.qa.documents import load_table_documents, render_create_table
from data_pipeline.steps import sql_validation
from data_pipeline.steps.context import StepContext
from data_pipeline.schema.names import parse_table_name
from data_pipeline.validation.explain_validator import SQLValidator
from data_pipeline.validation.outcome import ErrorClass
from data_pipeline.validation.statement_check import check_statement
from tests.support.fake_llm import FakeLLMServer, Reply
from tests.support.tcp_proxy import TcpProxy

REFERENCE_PAIRS = "qs_highway_db_20250721_234914_pair.json"
REFERENCE_TABLES = ["bss_car_day_count", "bss_business_day_data", "bss_company", "bss_section_route",
                    "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]

# What PostgreSQL says about the reference's 50 "all valid" pairs on tables built from its own DDL.
_SERVICE_NAME = ('column s.service_name does not exist'
                 '（提示: Perhaps you meant to reference the column "d.service_name".）')
_SERVICE_AREA_ID = ('column b.service_area_id does not exist（提示: Perhaps you meant to reference the column '
                    '"c.service_area_id" or the column "l.service_area_id".）')
REFERENCE_FAILURES = {
    14: (ErrorClass.AMBIGUOUS_COLUMN, 'column reference "delete_ts" is ambiguous'),
    21: (ErrorClass.UNDEFINED_COLUMN, _SERVICE_NAME),
    26: (ErrorClass.UNDEFINED_COLUMN, _SERVICE_NAME),
    28: (ErrorClass.UNDEFINED_COLUMN, _SERVICE_NAME),
    29: (ErrorClass.UNDEFINED_COLUMN, _SERVICE_NAME),
    32: (ErrorClass.UNDEFINED_COLUMN, _SERVICE_AREA_ID),
    39: (ErrorClass.UNDEFINED_COLUMN, _SERVICE_AREA_ID),
}

SHOP_SQL = """
create table shop (id integer primary key, shop_name varchar(50) not null, city varchar(20));
create table sale (id integer primary key, shop_id integer references shop(id), amount numeric(10,2),
                   sale_date date, delete_ts timestamp);
insert into shop values (1, '庐山店', '九江'), (2, '宜春店', '宜春');
insert into sale select g, 1 + g % 2, g * 1.5, date '2023-01-01' + g % 30, null from generate_series(1, 200) g;
"""

SHOP_DDL = """-- 中文名: 销售记录表
-- 描述: 销售记录表，每笔销售一行。
create table public.sale (
  id integer not null, -- 主键ID
  shop_id integer, -- 店铺ID
  amount numeric(10,2), -- 销售金额
  sale_date date, -- 销售日期
  delete_ts timestamp, -- 删除时间
  primary key (id)
  -- foreign key (shop_id) references public.shop(id)
);
"""


def make_context(task_dir: Path, db_url: str, *, llm: LLMClient | None = None, tables=(), settings=None,
                 **params) -> StepContext:
    settings = settings or Settings()
    return StepContext(task_id="task_test", task_dir=task_dir, settings=settings, db_url=db_url,
                       db_name="test_db", business_context="测试", tables=list(tables),
                       params={"enable_llm_repair": True, "modify_original_file": True, **params}, llm=llm)


def write_pairs(task_dir: Path, pairs: list[dict], name: str = "qs_test_db_20250101_000000_pair.json") -> Path:
    path = task_dir / name
    path.write_text(json.dumps(pairs, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def read_report(task_dir: Path, result: dict) -> list[dict]:
    return json.loads((task_dir / result["report_file"]).read_text(encoding="utf-8"))["pairs"]


def table_state(db_url: str) -> dict:
    with psycopg.connect(db_url) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public' order by 1")]
        return {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}


# --- the statement check, before any database ------------------------------------------------

@pytest.mark.parametrize("sql, error_class", [
    ("DROP TABLE sale", ErrorClass.NOT_A_QUERY),
    ("UPDATE sale SET amount = 0", ErrorClass.NOT_A_QUERY),
    ("SELECT 1; DELETE FROM sale", ErrorClass.MULTIPLE_STATEMENTS),
    ("WITH d AS (DELETE FROM sale RETURNING *) SELECT * FROM d", ErrorClass.WRITES_OR_LOCKS),
    ("SELECT * INTO sale_copy FROM sale", ErrorClass.WRITES_OR_LOCKS),
    ("SELECT * FROM sale FOR UPDATE", ErrorClass.WRITES_OR_LOCKS),
    ("SELECT * FROM (SELECT * FROM sale FOR SHARE) s", ErrorClass.WRITES_OR_LOCKS),
    ("SELECT nextval('sale_id_seq')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("TRUNCATE sale", ErrorClass.NOT_A_QUERY),
    ("EXPLAIN ANALYZE DELETE FROM sale", ErrorClass.NOT_A_QUERY),
    ("  ;  ", ErrorClass.EMPTY),
    ("SELEC amount FROM sale", ErrorClass.SYNTAX),
    ("SELECT 1 -- \x00", ErrorClass.SYNTAX),
])
def test_statement_check_refuses_everything_but_one_read_only_query(sql, error_class):
    checked = check_statement(sql)
    assert not checked.ok
    assert checked.error_class == error_class


@pytest.mark.parametrize("sql", [
    "SELECT 1;",
    "WITH t AS (SELECT amount FROM sale) SELECT sum(amount) FROM t",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "select * from sale where note like '%a;b%' -- trailing; comment",
])
def test_statement_check_accepts_queries(sql):
    assert check_statement(sql).ok


# --- acceptance: the reference's 50 pairs ----------------------------------------------------

def test_reference_pairs_on_tables_built_from_reference_ddl(reference_dir, make_local_db, tmp_path):
    source = reference_dir / "reference_task_output"
    docs, missing = load_table_documents(source, [parse_table_name(t) for t in REFERENCE_TABLES])
    assert not missing and len(docs) == 7
    db_url = make_local_db("\n".join(render_create_table(doc) + ";" for doc in docs))
    shutil.copy(source / REFERENCE_PAIRS, tmp_path / REFERENCE_PAIRS)

    # The tables are empty: EXPLAIN only (the execution check would call every named value missing).
    result = sql_validation.run(make_context(tmp_path, db_url, enable_llm_repair=False, modify_original_file=False,
                                             validate_by_execution=False))

    assert result["original_sql_count"] == 50
    assert result["valid_sql_count"] == 43, "the reference claimed 50 valid; 7 fail on its own schema"
    failures = {entry["index"]: (entry["error_class"], entry["error"])
                for entry in read_report(tmp_path, result) if not entry["valid"]}
    assert failures == REFERENCE_FAILURES
    assert result["error_class_counts"] == {ErrorClass.AMBIGUOUS_COLUMN: 1, ErrorClass.UNDEFINED_COLUMN: 6}
    assert (tmp_path / REFERENCE_PAIRS).read_bytes() == (source / REFERENCE_PAIRS).read_bytes()
    assert not list(tmp_path.glob("*.backup"))
    summary = (tmp_path / result["summary_file"]).read_text(encoding="utf-8")
    assert "无效: 7" in summary and "column b.service_area_id does not exist" in summary


# --- injected failures, repair, file modification ---------------------------------------------

def test_injected_failures_repair_and_file_rewrite(make_local_db, tmp_path):
    db_url = make_local_db(SHOP_SQL)
    (tmp_path / "sale.ddl").write_text(SHOP_DDL, encoding="utf-8")
    before = table_state(db_url)
    pairs = [
        {"question": "总销售额是多少？", "sql": "SELECT SUM(amount) FROM sale WHERE delete_ts IS NULL"},
        {"question": "每个店铺的销售额", "sql": "SELECT shop_id, SUM(ammount) FROM sale GROUP BY shop_id"},
        {"question": "各城市销售额", "sql": "SELECT city, SUM(amount) FROM sale_by_city GROUP BY city"},
        {"question": "删表", "sql": "DROP TABLE sale"},
        {"question": "查询后删除", "sql": "SELECT 1; DELETE FROM sale"},
        {"question": "清零", "sql": "UPDATE sale SET amount = 0"},
        {"question": "按日期统计", "sql": "SELECT sale_date, COUNT(*) FROM sale GROUP BY sale_date"},
    ]
    pair_path = write_pairs(tmp_path, pairs)
    original = pair_path.read_bytes()

    def responder(request):
        prompt = request["messages"][-1]["content"]
        if "ammount" in prompt:
            return Reply(content='{"sql": "SELECT shop_id, SUM(amount) FROM sale GROUP BY shop_id"}')
        return Reply(content='```json\n{"sql": "SELECT city, SUM(amount) FROM sales_by_town GROUP BY city"}\n```')

    with FakeLLMServer(responder) as server:
        llm = LLMClient(base_url=server.base_url, model="fake", max_retries=0)
        result = sql_validation.run(make_context(tmp_path, db_url, llm=llm, tables=["sale"]))
        prompts = [r["messages"][-1]["content"] for r in server.chat_requests()]

    assert table_state(db_url) == before
    assert result["original_sql_count"] == 7
    assert result["valid_sql_count"] == 3
    assert result["repair_stats"] == {"attempted": 2, "successful": 1, "failed": 1}
    assert result["file_modification_stats"] == {"modified": 1, "deleted": 4, "failed_modifications": 0}
    assert result["error_class_counts"] == {ErrorClass.UNDEFINED_COLUMN: 1, ErrorClass.UNDEFINED_TABLE: 1,
                                            ErrorClass.NOT_A_QUERY: 2, ErrorClass.MULTIPLE_STATEMENTS: 1}
    # Only repairable failures reach the LLM: one round for the typo, two for the hopeless one.
    assert len(prompts) == 3
    typo_prompt = next(p for p in prompts if "ammount" in p)
    assert "每个店铺的销售额" in typo_prompt and 'column "ammount" does not exist' in typo_prompt
    assert "create table public.sale" in typo_prompt
    assert not any("DROP TABLE" in p or "DELETE FROM" in p or "UPDATE sale" in p for p in prompts)

    report = {entry["index"]: entry for entry in read_report(tmp_path, result)}
    assert report[1]["repaired"] and report[1]["rounds"] == 1 and report[1]["valid"]
    assert report[2]["rounds"] == 2 and not report[2]["repaired"]
    # The hopeless repair's candidates failed: they are nowhere in the task directory.
    assert [attempt["sql"] for attempt in report[2]["repair_attempts"]] == [None, None]
    assert not [p.name for p in tmp_path.iterdir() if b"FROM sales_by_town" in p.read_bytes()]
    assert report[2]["error_class"] == ErrorClass.UNDEFINED_TABLE
    for index in (3, 4, 5):
        assert not report[index]["valid"] and report[index]["rounds"] == 0
    assert all({"valid", "error", "error_class", "repaired", "rounds", "time"} <= set(e) for e in report.values())

    assert (tmp_path / (pair_path.name + ".backup")).read_bytes() == original
    rewritten = json.loads(pair_path.read_text(encoding="utf-8"))
    assert rewritten == [pairs[0], {"question": "每个店铺的销售额",
                                    "sql": "SELECT shop_id, SUM(amount) FROM sale GROUP BY shop_id"}, pairs[6]]
    log = (tmp_path / result["modification_log"]).read_text(encoding="utf-8")
    assert log.count("[第") == 5 and "SUM(ammount)" in log and "DROP TABLE sale" in log


def test_repair_disabled_without_file_changes_keeps_everything(make_local_db, tmp_path):
    db_url = make_local_db(SHOP_SQL)
    pair_path = write_pairs(tmp_path, [{"question": "q", "sql": "SELECT nope FROM sale"}])
    original = pair_path.read_bytes()
    result = sql_validation.run(make_context(tmp_path, db_url, enable_llm_repair=False, modify_original_file=False))
    assert result["invalid_sql_count"] == 1 and result["repair_stats"]["attempted"] == 0
    assert pair_path.read_bytes() == original
    assert not (tmp_path / (pair_path.name + ".backup")).exists()


# --- timeouts and a database that goes away ----------------------------------------------------

def test_statement_timeout_is_reported_as_timeout(make_local_db, tmp_path):
    db_url = make_local_db(SHOP_SQL)
    # Immutable over constants, so the planner computes it while planning: EXPLAIN alone takes seconds.
    pairs = [{"question": "慢", "sql": "SELECT * FROM sale WHERE id = length(repeat(repeat('x', 1000), 1000000))"},
             {"question": "快", "sql": "SELECT * FROM sale WHERE id = 1"}]
    write_pairs(tmp_path, pairs)
    settings = Settings().with_overrides(sql_explain_timeout_ms=100)
    result = sql_validation.run(make_context(tmp_path, db_url, settings=settings, enable_llm_repair=False))
    report = read_report(tmp_path, result)
    assert report[0]["error_class"] == ErrorClass.TIMEOUT and not report[0]["valid"]
    assert report[0]["time"] < 0.9, "the timeout, not the one-second planning, must end the EXPLAIN"
    assert report[1]["valid"]
    assert result["error_class_counts"] == {ErrorClass.TIMEOUT: 1}


def test_unreachable_database_fails_with_database_connection_error(tmp_path):
    write_pairs(tmp_path, [{"question": "q", "sql": "SELECT 1"}] * 50)
    url = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseError) as caught:
        sql_validation.run(make_context(tmp_path, url))
    assert caught.value.error_code == "DATABASE_CONNECTION_ERROR"
    assert "s3cret-pw" not in caught.value.details
    assert not list(tmp_path.glob("sql_validation_*"))


def test_broken_connections_are_retried_and_a_dead_database_stops_the_run(make_local_db):
    db_url = make_local_db(SHOP_SQL)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        proxied = db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        with SQLValidator(proxied, concurrency=4, connect_timeout=2) as validator:
            assert all(o.valid for o in validator.validate_many(["SELECT * FROM sale"] * 20))
            proxy.drop_connections()  # every pooled connection breaks; the server is still there
            outcomes = validator.validate_many(["SELECT amount FROM sale"] * 40)
            assert all(o.valid for o in outcomes)
            assert validator.retries > 0

            proxy.stop_listening()  # now the database is gone for good
            with pytest.raises(DatabaseError) as caught:
                validator.validate_many(["SELECT 1 FROM sale"] * 400)
            assert caught.value.error_code == "DATABASE_CONNECTION_ERROR"
