"""Step 1 end to end: real databases, real files, the LLM path through a real HTTP server."""
from __future__ import annotations

import json
import re

import psycopg
import pytest

from config import Settings
from data_pipeline.errors import StepFailed
from data_pipeline.llm.client import LLMClient, extract_json
from data_pipeline.steps import ddl_generation
from data_pipeline.steps.context import StepContext
from tests.conftest import DatabaseFactory
from tests.support.fake_llm import ConcurrencyProbe, FakeLLMServer, Reply
from tests.test_schema_formats import check_ddl, check_md

STEP_SQL = """
create schema sales;
create table public.customer (
  id uuid primary key, name varchar(100) not null, level smallint, region varchar(20), note text);
comment on table public.customer is '客户信息表';
comment on column public.customer.id is '客户ID';
comment on column public.customer.name is 'Customer name';
insert into public.customer
  select md5(i::text)::uuid, 'c' || i, i % 3, (array['华东', '华北'])[1 + i % 2], null from generate_series(1, 30) i;
create table sales."order" (
  order_no bigint not null, line_no integer not null, customer_id uuid references public.customer(id),
  amount numeric(19,4), "Order Date" date, tags text[], extra jsonb, created timestamptz default now(),
  primary key (order_no, line_no));
comment on column sales."order".amount is '订单金额';
create table public."MixedCase" ("Id" serial primary key, "user" text);
create table public.empty_table (id integer);
"""
STEP_TABLES = ["public.customer", 'sales."order"', 'public."MixedCase"', "empty_table"]
STEMS = ["customer", "sales__order", "MixedCase", "empty_table"]
FORBIDDEN_IN_FILES = ("HTTP", "500", "LLM", "失败", "抱歉", "error", "Error", "重试")


@pytest.fixture(scope="module")
def step_db(local_pg_admin_url):
    factory = DatabaseFactory(local_pg_admin_url, "dp_test_step")
    yield factory(STEP_SQL)
    factory.drop_all()


def make_ctx(task_dir, db_url, tables, llm=None, **settings) -> StepContext:
    progress = []
    ctx = StepContext(task_id="task_test", task_dir=task_dir, settings=Settings().with_overrides(**settings),
                      db_url=db_url, db_name=db_url.rsplit("/", 1)[1], business_context="电商订单系统",
                      tables=list(tables), params={}, llm=llm,
                      report_progress=lambda done, total, unit: progress.append((done, total, unit)))
    ctx.progress = progress
    return ctx


def fake_client(server: FakeLLMServer, **options) -> LLMClient:
    return LLMClient(base_url=server.base_url, model="fake", backoff_base=0.01,
                     **{"max_retries": 1, "timeout": 5.0, "concurrency": 4, **options})


def prompt_facts(request) -> dict:
    return extract_json(request["messages"][1]["content"])


def good_answer(request) -> str:
    """Comments for every column, in reverse order, named as the prompt names them."""
    facts = prompt_facts(request)
    return json.dumps({"table_name_cn": "测试" + facts["table"].split(".")[-1].strip('"') + "表",
                       "table_description": "用于测试的业务表。",
                       "columns": [{"name": c["name"], "comment": f"{c['name']}说明",
                                    "enum_meanings": {**{v: f"含义{v}" for v in c.get("enum_values", [])},
                                                      "编造的值": "不存在的取值"}}
                                   for c in reversed(facts["columns"])]}, ensure_ascii=False)


def read_outputs(task_dir) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in task_dir.iterdir() if p.is_file()}


def test_offline_step_documents_every_table(step_db, tmp_path):
    ctx = make_ctx(tmp_path, step_db, STEP_TABLES)
    result = ddl_generation.run(ctx)
    assert {k: result[k] for k in ("total_tables", "processed_successfully", "failed", "files_generated")} == {
        "total_tables": 4, "processed_successfully": 4, "failed": 0, "files_generated": 9}
    assert result["errors"] == [] and result["duration"] > 0
    json.dumps(result)
    files = read_outputs(tmp_path)
    assert set(files) == {f"{s}{suffix}" for s in STEMS for suffix in (".ddl", "_detail.md")} | {"filename_mapping.txt"}
    assert files["filename_mapping.txt"] == (
        "# 文件名映射报告\n# 格式: 原始表名 -> 实际文件名\n\n"
        "public.customer -> customer.ddl, customer_detail.md\n"
        "sales.order -> sales__order.ddl, sales__order_detail.md\n"
        'public."MixedCase" -> MixedCase.ddl, MixedCase_detail.md\n'
        "public.empty_table -> empty_table.ddl, empty_table_detail.md\n")
    for stem in STEMS:
        check_ddl(files[f"{stem}.ddl"])
        check_md(files[f"{stem}_detail.md"])
    assert ctx.progress[-1] == (4, 4, "tables")
    assert [p[0] for p in ctx.progress] == sorted(p[0] for p in ctx.progress)
    assert "  \"user\" text" in files["MixedCase.ddl"]
    assert "comment on column public.customer.name is 'Customer name';" in files["customer.ddl"]


def test_step_output_runs_on_an_empty_database(step_db, tmp_path, make_local_db):
    ddl_generation.run(make_ctx(tmp_path, step_db, STEP_TABLES))
    empty = make_local_db()
    with psycopg.connect(empty, autocommit=True) as conn:
        for path in sorted(tmp_path.glob("*.ddl")):
            conn.execute(path.read_text(encoding="utf-8"))
    query = """select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                      (select array_agg(k.attname order by k.attnum) from pg_index i
                       join pg_attribute k on k.attrelid = i.indrelid and k.attnum = any(i.indkey)
                       where i.indrelid = c.oid and i.indisprimary)
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
               where c.relkind = 'r' and n.nspname in ('public', 'sales') order by 1, 2, a.attnum"""
    with psycopg.connect(step_db) as original, psycopg.connect(empty) as rebuilt:
        assert rebuilt.execute(query).fetchall() == original.execute(query).fetchall()


def test_bad_and_unknown_tables_are_reported_and_the_rest_documented(step_db, tmp_path):
    result = ddl_generation.run(make_ctx(tmp_path, step_db, ["customer", "no_such_table", "bad name!", "ghost.t"]))
    assert (result["processed_successfully"], result["failed"]) == (1, 3)
    assert sorted(e["table"] for e in result["errors"]) == ["bad name!", "ghost.t", "no_such_table"]
    assert (tmp_path / "customer.ddl").is_file() and not (tmp_path / "no_such_table.ddl").exists()


def test_names_that_clean_up_to_the_same_file_stem_get_distinct_files(tmp_path, make_local_db):
    db_url = make_local_db('create table public.a_b (id integer); create table public."a/b" (id integer);')
    result = ddl_generation.run(make_ctx(tmp_path, db_url, ["a_b", '"a/b"']))
    assert result["processed_successfully"] == 2
    mapping = (tmp_path / "filename_mapping.txt").read_text(encoding="utf-8")
    assert "public.a_b -> a_b.ddl, a_b_detail.md\n" in mapping
    assert 'public."a/b" -> a_b_2.ddl, a_b_2_detail.md\n' in mapping
    assert 'create table public."a/b" (' in (tmp_path / "a_b_2.ddl").read_text(encoding="utf-8")


def test_step_fails_when_no_table_can_be_documented(step_db, tmp_path):
    with pytest.raises(StepFailed, match="no_such_table"):
        ddl_generation.run(make_ctx(tmp_path, step_db, ["no_such_table"]))
    with pytest.raises(StepFailed) as caught:
        ddl_generation.run(make_ctx(tmp_path, "postgresql://postgres:Pw0rd-secret@127.0.0.1:1/x", ["t"]))
    assert "Pw0rd-secret" not in caught.value.details


def test_llm_comments_land_in_ddl_and_md(step_db, tmp_path):
    with FakeLLMServer(lambda request: Reply(content=good_answer(request))) as server:
        client = fake_client(server)
        result = ddl_generation.run(make_ctx(tmp_path, step_db, STEP_TABLES, llm=client))
        requests = server.chat_requests()
    assert len(requests) == 4 and result["llm_comment_tables"] == 4 and result["errors"] == []
    assert result["llm_usage"]["calls"] == 4
    assert "电商订单系统" in requests[0]["messages"][1]["content"]
    files = read_outputs(tmp_path)
    customer = check_ddl(files["customer.ddl"])
    assert customer["columns"]["id"]["comment"] == "客户ID"               # the database's Chinese comment stays
    assert customer["columns"]["name"]["comment"] == "name说明"           # the English one is replaced
    assert customer["columns"]["region"]["comment"] == "region说明（华东=含义华东；华北=含义华北）"
    assert "编造的值" not in files["customer.ddl"] + files["customer_detail.md"]
    assert customer["table_comment"] == "客户信息表"
    order = check_ddl(files["sales__order.ddl"])
    assert order["columns"]["Order Date"]["comment"] == "Order Date说明"  # matched by name, not position
    assert order["columns"]["amount"]["comment"] == "订单金额"
    assert order["table_comment"] == "测试order表"
    md = check_md(files["sales__order_detail.md"])
    assert md["chinese_name"] == "测试order表" and md["fields"]["tags"]["comment"] == "tags说明"
    assert files["sales__order_detail.md"].split("\n")[1] == 'sales."order" 表用于测试的业务表。'


def test_a_malformed_answer_is_re_asked(step_db, tmp_path):
    def responder(request):
        first_ask = len(request["messages"]) == 2
        return Reply(content="好的，这是注释：表是订单" if first_ask else good_answer(request))

    with FakeLLMServer(responder) as server:
        result = ddl_generation.run(make_ctx(tmp_path, step_db, ["customer"], llm=fake_client(server)))
        requests = server.chat_requests()
    assert len(requests) == 2 and result["errors"] == [] and result["llm_comment_tables"] == 1
    assert requests[1]["messages"][2] == {"role": "assistant", "content": "好的，这是注释：表是订单"}
    assert "region说明" in (tmp_path / "customer.ddl").read_text(encoding="utf-8")


def test_a_failing_llm_leaves_database_comments_and_reports_the_tables(step_db, tmp_path):
    with FakeLLMServer(lambda request: Reply(status=500)) as server:
        result = ddl_generation.run(make_ctx(tmp_path, step_db, STEP_TABLES, llm=fake_client(server)))
        assert len(server.chat_requests()) == 4 * 2     # each table: one try and one retry
    assert (result["processed_successfully"], result["failed"], result["llm_comment_tables"]) == (4, 0, 0)
    assert sorted(e["table"] for e in result["errors"]) == sorted(
        ["public.customer", "sales.order", 'public."MixedCase"', "public.empty_table"])
    assert all("HTTP 500" in e["error"] for e in result["errors"])
    files = read_outputs(tmp_path)
    customer = check_ddl(files["customer.ddl"])
    assert customer["columns"]["id"]["comment"] == "客户ID"
    assert customer["columns"]["name"]["comment"] == "Customer name"
    for name, text in files.items():
        for forbidden in FORBIDDEN_IN_FILES:
            assert forbidden not in text, f"{forbidden!r} in {name}"


def test_tables_are_documented_concurrently_up_to_the_llm_bound(step_db, tmp_path):
    responder = ConcurrencyProbe(lambda request: Reply(content=good_answer(request)), hold=0.3)

    tables = STEP_TABLES + ["customer", "public.customer"]   # duplicates are documented once
    with FakeLLMServer(responder) as server:
        result = ddl_generation.run(make_ctx(tmp_path, step_db, tables, llm=fake_client(server, concurrency=2),
                                             llm_concurrency=2))
        assert len(server.chat_requests()) == 4
    assert (result["total_tables"], result["processed_successfully"], result["failed"]) == (4, 4, 0)
    assert responder.peak == 2


def parse_reference_ddl(text: str) -> tuple[str, list[tuple[str, str, bool]], list[str]]:
    """(table, [(column, type, not null)], primary key) from a reference file (not valid SQL)."""
    table = re.search(r"create table (\S+) \(", text).group(1)
    columns = [(m.group(1), m.group(2), bool(m.group(3)))
               for m in re.finditer(r"^  (\w+) ([a-z]+(?:\(\d+(?:,\d+)?\))?)( not null)?\s+--", text, re.M)]
    primary_key = re.search(r"primary key \(([^)]*)\)", text).group(1).replace(" ", "").split(",")
    return table, columns, primary_key


def test_reference_tables_are_fully_described(reference_dir, tmp_path, make_local_db):
    reference = {}
    for path in sorted((reference_dir / "reference_task_output").glob("*.ddl")):
        table, columns, primary_key = parse_reference_ddl(path.read_text(encoding="utf-8"))
        reference[table] = (columns, primary_key)
    assert len(reference) == 7 and all(columns for columns, _ in reference.values())
    setup = ";\n".join(
        f"create table {table} ({', '.join(f'{c} {t}' + (' not null' if nn else '') for c, t, nn in columns)}, "
        f"primary key ({', '.join(primary_key)}))" for table, (columns, primary_key) in reference.items())
    db_url = make_local_db(setup)
    result = ddl_generation.run(make_ctx(tmp_path, db_url, list(reference)))
    assert result["processed_successfully"] == 7
    for table, (columns, primary_key) in reference.items():
        stem = table.split(".")[1]
        ddl = check_ddl((tmp_path / f"{stem}.ddl").read_text(encoding="utf-8"))
        md = check_md((tmp_path / f"{stem}_detail.md").read_text(encoding="utf-8"))
        assert [(name, c["type"], c["not_null"]) for name, c in ddl["columns"].items()] == columns
        assert ddl["primary_key"] == primary_key
        assert [(name, f["type"]) for name, f in md["fields"].items()] == [(c, t) for c, t, _ in columns]


def test_demo_database(demo_db_url, tmp_path):
    from data_pipeline.db.demo_db import COLUMN_COMMENTS, DEMO_TABLES, TABLE_COMMENTS

    result = ddl_generation.run(make_ctx(tmp_path, demo_db_url, DEMO_TABLES))
    assert (result["processed_successfully"], result["failed"], result["errors"]) == (7, 0, [])
    for table in DEMO_TABLES:
        ddl = check_ddl((tmp_path / f"{table}.ddl").read_text(encoding="utf-8"))
        md = check_md((tmp_path / f"{table}_detail.md").read_text(encoding="utf-8"))
        assert ddl["table_comment"] == TABLE_COMMENTS[table]
        for column, comment in COLUMN_COMMENTS[table].items():
            assert ddl["columns"][column]["comment"] == comment
            assert md["fields"][column]["comment"] == comment
    service_area = (tmp_path / "bss_service_area_detail.md").read_text(encoding="utf-8")
    assert "- company_id 关联 public.bss_company.id\n" in service_area
    assert "- service_area_type 为枚举字段，包含取值：信息化服务区、智能化服务区\n" in service_area
