"""Issue 14 item 3, the whole families the issue names: every function PostgreSQL has under those
names (read from pg_proc, not from a list of our own) is refused by the statement check, and the
database tools answer a system schema with a clear 4xx over HTTP."""
from __future__ import annotations

import re

import psycopg
import pytest

from data_pipeline.validation.outcome import ErrorClass
from data_pipeline.validation.statement_check import check_statement

# The families: XML exports of tables/queries/databases, settings, large objects,
# replication slots and origins, notifications, logical messages, statistics resets, dblink,
# backups, sleeps, plus the file and process functions of the same kind.
FAMILIES = re.compile(r"^(\w+_to_xml\w*|current_setting|set_config|lo_\w+|lo(read|write|open|close|creat)|"
                      r"pg_\w*replication\w*|pg_\w*slot\w*|pg_notify|pg_logical_emit_message|pg_stat_reset\w*|"
                      r"dblink\w*|pg_backup_\w+|pg_start_backup|pg_stop_backup|pg_sleep\w*|pg_read_\w*file|"
                      r"pg_ls_\w+|pg_stat_file|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|"
                      r"pg_switch_wal|pg_create_restore_point|txid_current|pg_advisory\w*|pg_try_advisory\w*)$")


@pytest.fixture(scope="module")
def dangerous_functions(local_pg_admin_url, make_local_db_module):
    """Names in pg_catalog (and dblink's, installed for the purpose) that fall in the families."""
    url = make_local_db_module()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists dblink")
        names = {row[0] for row in conn.execute("select distinct proname from pg_proc")}
    found = sorted(name for name in names if FAMILIES.match(name))
    assert len(found) > 60, found  # the families are there to be refused
    return found


@pytest.fixture(scope="module")
def make_local_db_module(local_pg_admin_url):
    from tests.conftest import DatabaseFactory

    factory = DatabaseFactory(local_pg_admin_url, "dp_test_secweb")
    yield factory
    factory.drop_all()


def test_every_function_of_the_named_families_is_refused(dangerous_functions):
    allowed = []
    for name in dangerous_functions:
        for sql in (f"select {name}()", f"select * from t where id = {name}('x')::int",
                    f'select "{name}"(1, 2)', f"select pg_catalog.{name}(1)"):
            checked = check_statement(sql)
            if checked.ok or checked.error_class != ErrorClass.FUNCTION_NOT_ALLOWED:
                allowed.append((sql, checked.error_class))
    assert allowed == []


@pytest.mark.parametrize("sql", [
    "select 1 from pg_stat_activity", "select 1 from pg_catalog.pg_stat_replication",
    "select 1 from pg_replication_slots", "select 1 from pg_largeobject", "select 1 from pg_shadow",
    "select 1 from pg_user_mappings", "select 1 from information_schema.user_mapping_options",
    'select 1 from "pg_catalog"."pg_authid"', "select 1 from PG_CATALOG.PG_AUTHID", "select 1 from pg_toast.x",
])
def test_system_relations_are_refused_however_spelled(sql):
    checked = check_statement(sql)
    assert not checked.ok and checked.error_class == ErrorClass.RELATION_NOT_ALLOWED, checked


@pytest.mark.parametrize("schema", ["pg_catalog", "information_schema", "pg_toast", "public, pg_catalog",
                                    "PG_CATALOG"])
def test_database_tools_list_no_system_schema_over_http(client, schema):
    response = client.post("/api/v0/database/tables", json={"schema": schema})
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["error_code"] == "SYSTEM_SCHEMA_NOT_ALLOWED" and error["invalid_params"] == ["schema"]


@pytest.mark.parametrize("table", ["pg_catalog.pg_authid", "information_schema.tables", "pg_toast.pg_toast_1255",
                                   "PG_CATALOG.pg_shadow", '"pg_catalog".pg_authid'])
def test_database_tools_document_no_system_table_over_http(client, table):
    response = client.post("/api/v0/database/table/ddl", json={"table": table, "type": "md"})
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["error_code"] == "INVALID_TABLE_NAME" and body["error"]["invalid_params"] == ["table"]
    assert "rolpassword" not in response.get_data(as_text=True)


def test_an_ordinary_role_gets_the_timeout_and_work_mem_but_no_temp_file_limit(local_pg_admin_url, make_local_db_module):
    """temp_file_limit is for superusers to set: validation on an ordinary role still works,
    bounded by the statement timeout and work_mem (docs/security.md says so)."""
    import uuid

    from data_pipeline.db.connection import with_database
    from data_pipeline.validation.explain_validator import SQLValidator

    role = f"dp_test_secweb_{uuid.uuid4().hex[:8]}"
    url = make_local_db_module("create table orders (id integer);")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(local_pg_admin_url, autocommit=True) as admin:
        admin.execute(f'create role "{role}" login')
        admin.execute(f'grant connect on database "{name}" to "{role}"')
    try:
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute(f'grant select on orders to "{role}"')
        role_url = with_database(local_pg_admin_url, name).replace("postgres@", f"{role}@", 1)
        with SQLValidator(role_url, concurrency=1, statement_timeout_ms=150) as validator:
            assert validator.validate("select count(*) from orders").valid
            bomb = validator.validate("select * from orders where id = length(repeat(repeat('x', 1000), 1000000))")
            with validator._pool.connection() as conn:
                settings = dict(conn.execute("select name, setting || coalesce(unit, '') from pg_settings "
                                             "where name in ('work_mem', 'temp_file_limit')").fetchall())
                superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
        assert not superuser and not bomb.valid and bomb.error_class == ErrorClass.TIMEOUT
        assert settings["work_mem"] == "16384kB" and settings["temp_file_limit"] == "-1kB"
    finally:
        with psycopg.connect(local_pg_admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
            admin.execute(f'drop role if exists "{role}"')
