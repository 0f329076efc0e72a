"""Issue 14 item 3: the SQL guard works from allowlists (functions, relations), covers what
planning evaluates, and validation sessions are bounded — on real PostgreSQL."""
from __future__ import annotations

import json

import psycopg
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres

from config import Settings
from data_pipeline.db.demo_db import DEMO_TABLES
from data_pipeline.errors import ValidationError
from data_pipeline.qa.column_roles import roles_by_table
from data_pipeline.qa.documents import load_table_documents
from data_pipeline.qa.templates import table_candidates
from data_pipeline.schema.names import parse_table_name
from data_pipeline.schema.tools import list_tables, table_document
from data_pipeline.steps import ddl_generation
from data_pipeline.steps.context import StepContext
from data_pipeline.validation.allowed_functions import ALLOWED_FUNCTIONS, ALLOWED_NODES
from data_pipeline.validation.explain_validator import SESSION_WORK_MEM, SQLValidator
from data_pipeline.validation.outcome import ErrorClass
from data_pipeline.validation.statement_check import check_statement
from tests.conftest import DatabaseFactory

SECRET = "TOPSECRET-4711"
LEAK_SQL = f"""
create table account (id integer primary key, name text, secret text);
insert into account values (1, 'alice', '{SECRET}');
create table orders (id integer primary key, account_id integer, amount numeric(10, 2), ordered_at timestamp);
insert into orders select g, 1, g * 2.5, timestamp '2024-01-01' + g * interval '1 day' from generate_series(1, 50) g;
"""

# Each reached the report or the training data before the allowlists (issue 14 item 3).
REFUSED = [
    ("select * from orders where id = (table_to_xml('account', true, true, ''))::text::int",
     ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select * from orders where id = (database_to_xml(true, true, ''))::text::int", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select * from orders where id = (query_to_xml('select secret from account', true, true, ''))::text::int",
     ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select * from orders where id = current_setting('data_directory')::int", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select rolpassword from pg_authid", ErrorClass.RELATION_NOT_ALLOWED),
    ("select * from pg_catalog.pg_authid", ErrorClass.RELATION_NOT_ALLOWED),
    ("select * from pg_hba_file_rules", ErrorClass.RELATION_NOT_ALLOWED),
    ("select query from pg_stat_activity", ErrorClass.RELATION_NOT_ALLOWED),
    ("select setting from pg_settings", ErrorClass.RELATION_NOT_ALLOWED),
    ("select * from information_schema.tables", ErrorClass.RELATION_NOT_ALLOWED),
    ("select * from pg_toast.pg_toast_1255", ErrorClass.RELATION_NOT_ALLOWED),
    ("select * from other_db.public.orders", ErrorClass.RELATION_NOT_ALLOWED),
    # A CTE shadows only where PostgreSQL says it does: a non-recursive CTE body sees earlier ones.
    ("with a as (select * from pg_authid), pg_authid as (select 1) select * from a", ErrorClass.RELATION_NOT_ALLOWED),
    ("select * from (with pg_authid as (select 1) select * from pg_authid) s, pg_authid",
     ErrorClass.RELATION_NOT_ALLOWED),
    ("select lo_import('/etc/passwd')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select lo_from_bytea(0, 'x')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select lo_put(1, 0, 'x')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select lo_export(1, '/tmp/x')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_create_logical_replication_slot('s', 'test_decoding')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select * from pg_logical_slot_get_changes('s', null, null)", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_drop_replication_slot('s')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_notify('channel', 'x')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_logical_emit_message(true, 'p', 'x')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_stat_reset()", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_stat_reset_shared('bgwriter')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select * from dblink('host=x', 'select 1') as t(x int)", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select dblink_exec('host=x', 'drop table orders')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select pg_backup_start('x')", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select * from orders where pg_sleep(1e6) is not null", ErrorClass.FUNCTION_NOT_ALLOWED),
    ('select "pg_sleep"(1)', ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select version()", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select current_user", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select set_config('work_mem', '1TB', false)", ErrorClass.FUNCTION_NOT_ALLOWED),
    ("select public.lower(name) from account", ErrorClass.FUNCTION_NOT_ALLOWED),  # a business schema's function
]

# What pairs and LLM helpers write: CTEs, window functions and the ordinary functions (demo schema).
ANALYTICAL = [
    """with daily as (
         select oper_date, service_name, sum(pay_sum) as total
           from bss_business_day_data where delete_ts is null group by oper_date, service_name)
       select service_name, oper_date, total,
              row_number() over (partition by service_name order by total desc) as rn,
              rank() over (order by total desc), dense_rank() over (order by total desc),
              lag(total) over (partition by service_name order by oper_date) as previous,
              lead(total, 1, 0) over (partition by service_name order by oper_date),
              sum(total) over (partition by service_name order by oper_date
                               rows between unbounded preceding and current row) as running
         from daily""",
    """select date_trunc('month', oper_date) as month, extract(year from oper_date) as year,
              to_char(oper_date, 'YYYY-MM') as label, count(distinct service_no) as areas,
              coalesce(sum(wx), 0) as wx, nullif(sum(order_sum), 0) as orders,
              round(avg(pay_sum)::numeric, 2) as average, string_agg(distinct service_name, ',') as names,
              max(oper_date) - min(oper_date) as span, count(*) filter (where pay_sum > 1000) as big_days
         from bss_business_day_data where oper_date >= current_date - interval '1 year'
        group by 1, 2, 3 order by month desc nulls last limit 12""",
    """select a.service_area_name, c.company_name,
              case when a.service_state = '开放' then 1 else 0 end as open,
              percentile_cont(0.5) within group (order by d.pay_sum) as median,
              greatest(max(d.wx), max(d.zfb)), upper(left(a.service_area_no, 3)), length(trim(c.company_name))
         from bss_service_area a join bss_company c on c.id = a.company_id
         left join bss_business_day_data d on d.service_area_id = a.id and d.delete_ts is null
        where a.delete_ts is null and a.service_area_name like '%服务区' and exists (
              select 1 from bss_car_day_count k where k.service_area_id = a.id and k.car_type in ('危化品', '城际'))
        group by 1, 2, 3, a.service_area_no""",
    """with recursive days(d) as (select date '2023-04-01' union all select d + 1 from days where d < date '2023-04-07')
       select days.d, coalesce(sum(k.customer_count), 0) from days
         left join bss_car_day_count k on k.count_date = days.d group by days.d order by days.d""",
    "select s.d::date, ntile(4) over (order by s.d) from generate_series(date '2023-01-01', date '2023-01-31', "
    "interval '1 day') as s(d)",
]


@pytest.fixture(scope="module")
def leak_db(local_pg_admin_url):
    factory = DatabaseFactory(local_pg_admin_url, "dp_test_guard")
    yield factory(LEAK_SQL)
    factory.drop_all()


@pytest.mark.parametrize("sql, error_class", REFUSED)
def test_statement_check_refuses_what_is_not_allowed(sql, error_class):
    checked = check_statement(sql)
    assert not checked.ok and checked.error_class == error_class, checked


def test_planning_time_functions_never_reach_the_database(leak_db):
    with SQLValidator(leak_db, concurrency=2) as validator:
        outcomes = validator.validate_many([sql for sql, _ in REFUSED])
        reference = validator.validate("select sum(amount) from orders where id = 1")
    assert reference.valid
    for (sql, _), outcome in zip(REFUSED, outcomes):
        assert not outcome.valid and outcome.sqlstate is None, (sql, outcome)  # refused before any EXPLAIN
        assert SECRET not in (outcome.error or "")
    # A system catalog is not a mistake an LLM repair should work around.
    assert all(not o.repairable for o in outcomes if o.error_class == ErrorClass.RELATION_NOT_ALLOWED)


def test_a_planning_bomb_is_cut_by_the_timeout(leak_db, tmp_path):
    with SQLValidator(leak_db, concurrency=1, statement_timeout_ms=150) as validator:
        outcome = validator.validate("select * from orders where id = length(repeat(repeat('x', 1000), 1000000))")
    assert not outcome.valid and outcome.error_class == ErrorClass.TIMEOUT
    assert Settings().sql_explain_timeout_ms <= 5_000, "the default must bound a check, not allow 30 s of planning"


def test_validation_sessions_are_limited_and_see_no_system_schema(local_pg_admin_url, make_local_db):
    url = make_local_db("create table orders (id integer);")
    with psycopg.connect(local_pg_admin_url, autocommit=True) as admin:
        # A database whose search path lists information_schema: `tables` would be its view.
        admin.execute(f'alter database "{url.rsplit("/", 1)[1]}" set search_path = information_schema, public')
    with SQLValidator(url, concurrency=1) as validator:
        outcome = validator.validate("select * from tables")
        assert validator.validate("select count(*) from orders").valid
        with validator._pool.connection() as conn:
            settings = dict(conn.execute(
                "select name, setting || coalesce(unit, '') from pg_settings "
                "where name in ('work_mem', 'temp_file_limit', 'search_path')").fetchall())
    assert not outcome.valid and outcome.error_class == ErrorClass.UNDEFINED_TABLE, outcome
    assert settings["search_path"] == '"public"'
    assert settings["work_mem"] == "16384kB" and SESSION_WORK_MEM == "16MB"
    assert settings["temp_file_limit"] == "262144kB"  # the test server's role is a superuser


@pytest.mark.parametrize("schema", ["pg_catalog", "information_schema", "pg_toast"])
def test_database_tools_refuse_system_schemas(leak_db, schema):
    with pytest.raises(ValidationError) as listing:
        list_tables(leak_db, ["public", schema])
    assert listing.value.error_code == "SYSTEM_SCHEMA_NOT_ALLOWED" and listing.value.invalid_params == ["schema"]
    table = {"pg_catalog": "pg_authid", "information_schema": "tables", "pg_toast": "pg_toast_1255"}[schema]
    with pytest.raises(ValidationError) as document:
        table_document(leak_db, f"{schema}.{table}", "md")
    assert document.value.error_code == "INVALID_TABLE_NAME" and document.value.invalid_params == ["table"]
    # Unqualified, the name is the business schema's (public): not found there, never the catalog.
    assert table_document(leak_db, "account", "ddl")["table_info"]["schema_name"] == "public"


@pytest.fixture(scope="module")
def demo_documents(demo_db_url, tmp_path_factory):
    task_dir = tmp_path_factory.mktemp("guard_demo")
    ctx = StepContext(task_id="task_test", task_dir=task_dir, settings=Settings(), db_url=demo_db_url,
                      db_name="highway_db", business_context="高速公路服务区管理系统",
                      tables=[parse_table_name(t) for t in DEMO_TABLES], params={})
    ddl_generation.run(ctx)
    docs, missing = load_table_documents(task_dir, ctx.tables)
    assert not missing
    return docs


def test_every_offline_template_sql_passes_the_check(demo_documents):
    by_key, roles = {doc.key: doc for doc in demo_documents}, roles_by_table(demo_documents)
    candidates = [c.sql for doc in demo_documents for c in table_candidates(doc, by_key, roles)]
    assert len(candidates) > 50
    refused = [(sql, check_statement(sql).error) for sql in candidates if not check_statement(sql).ok]
    assert refused == []


def test_analytical_sql_is_allowed_and_valid_on_the_demo_database(demo_db_url):
    with SQLValidator(demo_db_url, concurrency=2) as validator:
        outcomes = validator.validate_many(ANALYTICAL)
    assert [(o.valid, o.error) for o in outcomes] == [(True, None)] * len(ANALYTICAL)


def test_reference_pairs_pass_the_check(reference_dir):
    pair_file = reference_dir / "reference_task_output" / "qs_highway_db_20250721_234914_pair.json"
    pairs = json.loads(pair_file.read_text(encoding="utf-8"))
    assert len(pairs) == 50
    assert [(p["sql"], check_statement(p["sql"]).error) for p in pairs if not check_statement(p["sql"]).ok] == []


# --- the two lists of allowed_functions held to each other and to PostgreSQL -------------------

def _parsed_node(name: str) -> exp.Expression | None:
    """The node sqlglot makes of a call of `name` (the first argument count it accepts)."""
    for arguments in ("a", "a, b", "a, b, c", "a, b, c, d", ""):
        try:
            tree = sqlglot.parse_one(f"select {name}({arguments}) from t", read="postgres")
        except sqlglot.errors.SqlglotError:
            continue
        return next((node for node in tree.walk() if isinstance(node, exp.Func)), tree.expressions[0])
    return None


def test_allowed_nodes_are_sqlglot_function_nodes():
    unknown = sorted(name for name in ALLOWED_NODES
                     if not (isinstance(getattr(exp, name, None), type) and issubclass(getattr(exp, name), exp.Func)))
    assert unknown == []


def test_every_allowed_function_parses_into_an_allowed_node():
    outside = {}
    for name in sorted(ALLOWED_FUNCTIONS):
        node = _parsed_node(name)
        if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous) and type(node).__name__ not in ALLOWED_NODES:
            outside[name] = type(node).__name__
    assert outside == {}


def test_no_postgresql_function_hides_behind_an_allowed_node(local_pg_admin_url):
    """sqlglot maps names to nodes (`now` -> CurrentTimestamp): a name PostgreSQL knows as a
    function must not reach an allowed node (or an operator node) unless it is allowed itself."""
    with psycopg.connect(local_pg_admin_url) as conn:
        known = {row[0] for row in conn.execute(
            "select distinct proname from pg_proc where pronamespace = 'pg_catalog'::regnamespace")}
    hidden = {}
    for name in sorted({n.lower() for n in (*Postgres.Parser.FUNCTIONS, *Postgres.Parser.FUNCTION_PARSERS)}):
        if name in ALLOWED_FUNCTIONS or name not in known:
            continue
        node = _parsed_node(name)
        if node is not None and not isinstance(node, exp.Anonymous) and (
                type(node).__name__ in ALLOWED_NODES or not isinstance(node, exp.Func)):
            hidden[name] = type(node).__name__
    assert hidden == {}
