"""The service functions behind POST /database/tables and /database/table/ddl, on real databases."""
from __future__ import annotations

import json
import time

import pytest

from data_pipeline.errors import DatabaseError, NotFoundError, ValidationError
from data_pipeline.llm.client import LLMClient, extract_json
from data_pipeline.schema.tools import list_tables, table_document
from tests.support.fake_llm import FakeLLMServer, Reply
from tests.test_schema_formats import check_ddl, check_md

TOOLS_SQL = """
create schema ods;
create table public.bss_company (id varchar(32) primary key, company_name varchar(255) not null, company_no text);
comment on table public.bss_company is '服务区管理公司信息表';
comment on column public.bss_company.id is '主键ID';
insert into public.bss_company select md5(i::text), '公司' || i, 'H0' || (i % 3) from generate_series(1, 15) i;
create table public.bss_service_area (id varchar(32) primary key, company_id varchar(32) references bss_company(id));
create table ods.bss_company (id integer);
create table public.a_b (id integer);
create table public.axb (id integer);
create table public."100%" (id integer);
create table public."Mixed" (id integer);
create view public.bss_view as select id from public.bss_company;
create materialized view public.bss_matview as select id from public.bss_company;
create table public.bss_log (id integer, day date not null) partition by range (day);
create table public.bss_log_2024 partition of public.bss_log for values from ('2024-01-01') to ('2025-01-01');
"""


@pytest.fixture(scope="module")
def tools_db(local_pg_admin_url):
    from tests.conftest import DatabaseFactory

    factory = DatabaseFactory(local_pg_admin_url, "dp_test_tools")
    yield factory(TOOLS_SQL)
    factory.drop_all()


def test_all_user_tables_without_views_partitions_or_system_schemas(tools_db):
    data = list_tables(tools_db)
    assert data["tables"] == ['ods.bss_company', 'public."100%"', 'public."Mixed"', "public.a_b", "public.axb",
                              "public.bss_company", "public.bss_log", "public.bss_service_area"]
    assert data["total"] == 8
    assert data["schemas"] == ["ods", "public"]
    assert data["db_connection_info"] == {"database": tools_db.rsplit("/", 1)[1]}


def test_schemas_patterns_and_views(tools_db):
    data = list_tables(tools_db, ["public", "ods"], "bss_*")
    assert data["tables"] == ["ods.bss_company", "public.bss_company", "public.bss_log", "public.bss_service_area"]
    assert data["schemas"] == ["public", "ods"] and data["table_name_pattern"] == "bss_*"
    assert list_tables(tools_db, ["public"], "bss_*", include_views=True)["tables"] == [
        "public.bss_company", "public.bss_log", "public.bss_matview", "public.bss_service_area", "public.bss_view"]
    assert list_tables(tools_db, None, "a_b")["tables"] == ["public.a_b"]           # `_` is literal
    assert list_tables(tools_db, None, "a?b")["tables"] == ["public.a_b", "public.axb"]
    assert list_tables(tools_db, None, "100%")["tables"] == ['public."100%"']       # `%` is literal
    assert list_tables(tools_db, None, "mixed")["tables"] == ['public."Mixed"']     # case-insensitive
    assert list_tables(tools_db, None, "x'; drop table axb; --")["tables"] == []
    with pytest.raises(ValidationError):  # system schemas are refused (tests/security/test_sql_guard.py)
        list_tables(tools_db, ["pg_catalog", "information_schema"])
    assert "public.axb" in list_tables(tools_db)["tables"]


def test_table_document_both(tools_db):
    data = table_document(tools_db, "public.bss_company", "both", "高速公路服务区管理系统")
    check_ddl(data["ddl"])
    check_md(data["md"])
    assert "comment on table public.bss_company is '服务区管理公司信息表';" in data["ddl"]
    assert data["table_info"] == {
        "table_name": "bss_company", "schema_name": "public", "full_name": "public.bss_company",
        "table_type": "table", "comment": "服务区管理公司信息表", "chinese_name": "服务区管理公司信息表",
        "description": "服务区管理公司信息表", "field_count": 3, "row_count": 15, "row_count_exact": True,
        "row_count_method": "exact"}
    first = data["fields"][0]
    assert {k: first[k] for k in ("column_name", "data_type", "max_length", "is_nullable", "is_primary_key",
                                  "comment")} == {"column_name": "id", "data_type": "varchar", "max_length": 32,
                                                  "is_nullable": False, "is_primary_key": True, "comment": "主键ID"}
    assert data["fields"][2]["enum_values"] == ["H00", "H01", "H02"]
    assert data["generation_info"] == {"business_context": "高速公路服务区管理系统", "output_type": "both",
                                       "has_llm_comments": False, "database": tools_db.rsplit("/", 1)[1]}
    json.dumps(data)


def test_table_document_single_outputs_and_default_schema(tools_db):
    ddl_only = table_document(tools_db, "bss_service_area", "ddl")
    assert "ddl" in ddl_only and "md" not in ddl_only
    assert "  -- foreign key (company_id) references public.bss_company(id)" in ddl_only["ddl"]
    md_only = table_document(tools_db, "ods.bss_company", "md")
    assert md_only["md"].startswith("## ods.bss_company（公司表）") and "ddl" not in md_only
    assert table_document(tools_db, '"Mixed"', "ddl")["table_info"]["full_name"] == 'public."Mixed"'


def test_unknown_tables_and_bad_input(tools_db):
    for name in ("public.nope", "nope.bss_company", "mixed"):
        with pytest.raises(NotFoundError) as caught:
            table_document(tools_db, name)
        assert caught.value.error_code == "TABLE_NOT_FOUND" and caught.value.status == 404
    with pytest.raises(ValidationError) as caught:
        table_document(tools_db, "bad name; drop")
    assert caught.value.error_code == "INVALID_TABLE_NAME" and caught.value.invalid_params == ["table"]
    with pytest.raises(ValidationError) as caught:
        table_document(tools_db, "bss_company", "pdf")
    assert caught.value.invalid_params == ["type"]


@pytest.mark.parametrize("url", [
    "postgresql://nobody_here:S3cretPw!x@127.0.0.1:5432/postgres",     # bad credentials
    "postgresql://postgres:S3cretPw!x@127.0.0.1:1/postgres",           # nothing listening
    "postgresql://postgres:S3cretPw!x@10.255.255.1:5432/postgres",     # unreachable: the connect timeout
])
def test_connection_failures_are_quick_and_without_password(url):
    for call in (lambda: list_tables(url), lambda: table_document(url, "t")):
        started = time.monotonic()
        with pytest.raises(DatabaseError) as caught:
            call()
        assert time.monotonic() - started < 8
        assert caught.value.error_code == "DATABASE_CONNECTION_ERROR"
        assert "S3cretPw" not in caught.value.details and "***" in caught.value.details


def _llm_responder(request):
    facts = extract_json(request["messages"][-1]["content"])
    return Reply(content=json.dumps({
        "table_name_cn": "公司信息表", "table_description": "存储服务区所属公司。",
        "columns": [{"name": c["name"], "comment": f"{c['name']}的说明"} for c in facts["columns"]]},
        ensure_ascii=False))


def test_table_document_with_llm_comments(tools_db):
    with FakeLLMServer(_llm_responder) as server:
        llm = LLMClient(base_url=server.base_url, model="fake", max_retries=0)
        data = table_document(tools_db, "public.bss_company", "both", "服务区", llm)
    assert data["generation_info"]["has_llm_comments"] is True
    assert "comment on column public.bss_company.id is '主键ID';" in data["ddl"]     # the database's stays
    assert "company_name的说明" in data["ddl"] and "company_name的说明" in data["md"]
    assert data["table_info"]["comment"] == "服务区管理公司信息表"


def test_table_document_when_the_llm_fails(tools_db):
    with FakeLLMServer(lambda r: Reply(status=500)) as server:
        llm = LLMClient(base_url=server.base_url, model="fake", max_retries=1, backoff_base=0.01)
        data = table_document(tools_db, "public.bss_company", "both", None, llm)
    assert data["generation_info"]["has_llm_comments"] is False
    assert "HTTP 500" in data["generation_info"]["llm_error"]
    assert "500" not in data["ddl"] and "LLM" not in data["md"]
    assert "comment on column public.bss_company.id is '主键ID';" in data["ddl"]


def test_table_document_of_a_table_using_an_enum_type_gives_its_types(make_local_db):
    url = make_local_db("create type level as enum ('low', 'high');"
                        " create table alert (id integer primary key, level level not null);"
                        " insert into alert values (1, 'low'), (2, 'high');")
    data = table_document(url, "alert")
    assert data["types_ddl"].splitlines()[2:] == ["create type public.level as enum ('low', 'high');"]
    assert next(f for f in data["fields"] if f["column_name"] == "level")["enum_values"] == ["low", "high"]
    assert "types_ddl" not in table_document(url, "alert", "md")
