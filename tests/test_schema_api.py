"""The database tools endpoints in-process (Flask's test client), and step 1 through a running
service (real HTTP, real executor)."""
from __future__ import annotations

import json

import pytest

from data_pipeline.db.demo_db import DEMO_TABLES
from tests.support.envelope import data_of, error_of, text_of
from tests.test_schema_formats import check_ddl, check_md

TABLES = "/api/v0/database/tables"
TABLE_DDL = "/api/v0/database/table/ddl"
SECRET = "Sup3r-secret-pw"


@pytest.fixture(scope="module")
def ods_db(local_pg_admin_url):
    from tests.conftest import DatabaseFactory

    factory = DatabaseFactory(local_pg_admin_url, "dp_test_api")
    yield factory("""
        create schema ods;
        create table public.bss_company (id varchar(32) primary key, company_name varchar(255));
        create table ods.bss_company (id integer);
        create table ods.orders (id integer);
        create view public.bss_view as select 1 as x;""")
    factory.drop_all()


def test_tables_of_the_default_demo_database(client):
    data = data_of(client.post(TABLES, json={}), "获取表列表成功")
    assert data["tables"] == [f"public.{t}" for t in sorted(DEMO_TABLES)]
    assert data["total"] == 7 and data["db_connection_info"] == {"database": "highway_db"}


def test_tables_with_schemas_pattern_and_views(client, ods_db):
    data = data_of(client.post(TABLES, json={"db_connection": ods_db, "schema": "public, ODS",
                                                   "table_name_pattern": "bss_*"}), "获取表列表成功")
    assert data["tables"] == ["ods.bss_company", "public.bss_company"]
    assert data["schemas"] == ["public", "ods"] and data["table_name_pattern"] == "bss_*"
    with_views = data_of(client.post(TABLES, json={"db_connection": ods_db, "include_views": True,
                                                         "schema": "public"}), "获取表列表成功")
    assert with_views["tables"] == ["public.bss_company", "public.bss_view"]


def test_table_ddl_of_the_demo_database(client):
    data = data_of(client.post(TABLE_DDL, json={"table": "public.bss_company", "type": "both",
                                                      "business_context": "高速公路服务区管理系统"}), "获取表DDL成功")
    check_ddl(data["ddl"])
    check_md(data["md"])
    assert data["table_info"]["full_name"] == "public.bss_company" and data["table_info"]["row_count"] == 8
    assert data["fields"][0]["column_name"] == "id" and data["fields"][0]["max_length"] == 32
    assert data["generation_info"]["database"] == "highway_db"
    assert data["generation_info"]["has_llm_comments"] is False
    only_md = data_of(client.post(TABLE_DDL, json={"table": "bss_company", "type": "md"}), "获取表DDL成功")
    assert "ddl" not in only_md and only_md["md"].startswith("## bss_company（服务区管理公司信息表）")


@pytest.mark.parametrize("body, status, code, param", [
    ({"table": "public.no_such_table"}, 404, "TABLE_NOT_FOUND", "table"),
    ({}, 400, "VALIDATION_ERROR", "table"),
    ({"table": "bss_company", "type": "pdf"}, 400, "VALIDATION_ERROR", "type"),
    ({"table": "bad name;"}, 400, "INVALID_TABLE_NAME", "table"),
    ({"table": "bss_company", "db_connection": "mysql://x/y"}, 400, "VALIDATION_ERROR", "db_connection"),
])
def test_table_ddl_errors(client, body, status, code, param):
    error = error_of(client.post(TABLE_DDL, json=body), status, code)["error"]
    assert param in error["invalid_params"]


def test_include_views_must_be_a_boolean(client):
    error = error_of(client.post(TABLES, json={"include_views": "yes"}), 400, "VALIDATION_ERROR")["error"]
    assert error["invalid_params"] == ["include_views"]


@pytest.mark.parametrize("path, body", [(TABLES, {}), (TABLE_DDL, {"table": "t"})])
def test_unreachable_database_is_a_connection_error_without_password(client, path, body):
    url = f"postgresql://nobody:{SECRET}@127.0.0.1:1/somedb"
    response = client.post(path, json={**body, "db_connection": url})
    error_of(response, 500, "DATABASE_CONNECTION_ERROR")
    assert SECRET not in text_of(response)


def test_ddl_generation_step_through_the_executor(embedded_api):
    task_id = embedded_api.create_task(task_name="ddl step", business_context="高速公路服务区管理系统")
    embedded_api.set_table_list(task_id, list(DEMO_TABLES) + ["public.no_such_table"])
    assert embedded_api.execute(task_id, execution_mode="step", step_name="ddl_generation").status_code == 202
    task = embedded_api.wait_for(task_id)
    assert task["step_status"]["ddl_generation"] == "completed", task
    task_dir = embedded_api.training_data_dir / task_id
    result = json.loads((task_dir / "ddl_generation_result.json").read_text(encoding="utf-8"))
    assert (result["total_tables"], result["processed_successfully"], result["failed"]) == (8, 7, 1)
    assert result["errors"] == [{"table": "public.no_such_table", "error": "表不存在: public.no_such_table"}]
    for table in DEMO_TABLES:
        check_ddl((task_dir / f"{table}.ddl").read_text(encoding="utf-8"))
        check_md((task_dir / f"{table}_detail.md").read_text(encoding="utf-8"))
    assert "public.bss_company -> bss_company.ddl, bss_company_detail.md" in (
        task_dir / "filename_mapping.txt").read_text(encoding="utf-8")
    log = (task_dir / "data_pipeline.log").read_text(encoding="utf-8")
    assert "DDLGenerator: 表 public.bss_company 已生成" in log
