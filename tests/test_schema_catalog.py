"""Introspection, sampling and rendering against a real database with every awkward feature.

One database for the module: two schemas, a composite primary key, foreign keys across schemas,
a table named with a reserved word, a mixed-case quoted table, a column with spaces, array / json
/ numeric(19,4) / timestamptz / uuid columns, an empty table, a table without comments and a
2-million-row table. Every table is rendered and the DDL is run on an empty database, then the
two databases are compared through their catalogs.
"""
from __future__ import annotations

import psycopg
import pytest

from data_pipeline.schema import introspection, naming, sampling
from data_pipeline.schema.comments import offline_comments, one_line
from data_pipeline.schema.render import render_ddl, render_md
from data_pipeline.schema.names import TableName
from tests.conftest import DatabaseFactory
from tests.test_schema_formats import check_ddl, check_md

RICH_SCHEMA_SQL = """
create schema sales;
create table public.customer (
  id uuid primary key,
  name varchar(100) not null,
  tags text[],
  profile jsonb,
  created_at timestamptz not null default now(),
  level smallint default 1,
  region varchar(20)
);
comment on table public.customer is '客户信息表';
comment on column public.customer.id is '客户ID';
comment on column public.customer.name is '客户名称';
comment on column public.customer.tags is E'客户标签\\n（多行注释）';
comment on column public.customer.region is '所在区域';
create table sales."order" (
  order_no bigint not null,
  line_no integer not null,
  customer_id uuid not null references public.customer(id),
  amount numeric(19,4) not null,
  status varchar(20) not null default 'new',
  "Order Date" date,
  note text,
  primary key (order_no, line_no)
);
comment on table sales."order" is '订单明细表（每行一个商品）';
comment on column sales."order".amount is '订单金额（元）';
comment on column sales."order".status is 'Order status';
comment on column sales."order"."Order Date" is '下单日期';
comment on column sales."order".note is 'it''s a note';
create table public."MixedCase" (
  "Id" serial primary key,
  "userName" text unique,
  "select" integer,
  price double precision,
  payload json,
  code char(4),
  flags bit varying(8),
  at_time time(3) with time zone
);
comment on table public."MixedCase" is '混合大小写''表';
create table sales.shipment (
  id bigint generated always as identity primary key,
  order_no bigint not null,
  line_no integer not null,
  shipped_on timestamp(3) with time zone,
  weight_kg numeric(10,2) default 0,
  total numeric generated always as (weight_kg * 2) stored,
  foreign key (order_no, line_no) references sales."order"(order_no, line_no),
  unique (order_no, line_no)
);
comment on table sales.shipment is '发货记录';
create table public.audit_log (
  id bigserial primary key,
  event text,
  happened_at timestamp,
  amounts numeric[],
  ip inet,
  raw bytea
);
create table public.empty_table (id integer primary key, label varchar(10));
comment on table public.empty_table is '空表';
create table public.big_events (id integer not null, status text not null, amount numeric(19,4), created_on date);
comment on table public.big_events is '大事件表';
comment on column public.big_events.status is '事件状态';
insert into big_events
  select i, (array['new', 'paid', 'shipped'])[1 + i % 3], i % 1000, date '2024-01-01' + (i % 365)
  from generate_series(1, 2000000) i;
insert into public.customer (id, name, tags, profile, level, region)
  select md5(i::text)::uuid, '客户' || i, array['vip', 't' || (i % 2)], jsonb_build_object('k', i),
         1 + i % 3, (array['华东', '华北', '华南'])[1 + i % 3]
  from generate_series(1, 60) i;
insert into sales."order" (order_no, line_no, customer_id, amount, status, "Order Date", note)
  select i / 3, i % 3, md5((1 + i % 60)::text)::uuid, i * 1.5, (array['new', 'paid'])[1 + i % 2],
         date '2024-03-01' + i % 30, null
  from generate_series(1, 300) i;
insert into public."MixedCase" ("userName", "select", price, payload, code)
  select 'user' || i, i % 4, i / 3.0, json_build_object('v', i), 'C' || (i % 5) from generate_series(1, 40) i;
insert into public.audit_log (event, happened_at, amounts, ip, raw)
  select 'login', now(), array[1.5, 2], '10.0.0.1', '\\x00ff' from generate_series(1, 5);
"""

TABLES = [TableName("public", "customer"), TableName("sales", "order"), TableName("public", "MixedCase"),
          TableName("sales", "shipment"), TableName("public", "audit_log"), TableName("public", "empty_table"),
          TableName("public", "big_events")]


@pytest.fixture(scope="module")
def rich_db(local_pg_admin_url):
    factory = DatabaseFactory(local_pg_admin_url, "dp_test_rich")
    url = factory(RICH_SCHEMA_SQL)
    yield url
    factory.drop_all()


@pytest.fixture(scope="module")
def measured(rich_db):
    with psycopg.connect(rich_db, autocommit=True) as conn:
        tables = introspection.load_tables(conn, TABLES)
        for table in tables.values():
            sampling.measure(conn, table)
    return tables


class CountingConnection:
    """A real connection that counts the statements it runs."""

    def __init__(self, conn):
        self.conn, self.statements = conn, 0

    def execute(self, *args, **kwargs):
        self.statements += 1
        return self.conn.execute(*args, **kwargs)


def test_catalog_queries_do_not_grow_with_tables_or_columns(rich_db):
    with psycopg.connect(rich_db, autocommit=True) as conn:
        one = CountingConnection(conn)
        introspection.load_tables(one, TABLES[:1])
        every = CountingConnection(conn)
        tables = introspection.load_tables(every, TABLES + [TableName("public", "no_such_table")])
    assert len(tables) == len(TABLES)
    assert every.statements == one.statements <= 4


def test_columns_types_keys_and_comments(measured):
    customer = measured[("public", "customer")]
    assert [c.name for c in customer.columns] == ["id", "name", "tags", "profile", "created_at", "level", "region"]
    assert [c.type for c in customer.columns] == ["uuid", "varchar(100)", "text[]", "jsonb", "timestamptz",
                                                  "smallint", "varchar(20)"]
    assert customer.column("name").max_length == 100 and not customer.column("name").nullable
    assert customer.column("created_at").default == "now()"
    assert customer.comment == "客户信息表"

    order = measured[("sales", "order")]
    assert order.primary_key == ("order_no", "line_no")
    assert order.column("amount").type == "numeric(19,4)"
    assert (order.column("amount").numeric_precision, order.column("amount").numeric_scale) == (19, 4)
    assert order.column("Order Date").comment == "下单日期"
    [fk] = order.foreign_keys
    assert (fk.columns, fk.ref_schema, fk.ref_table, fk.ref_columns) == (("customer_id",), "public", "customer", ("id",))

    shipment = measured[("sales", "shipment")]
    assert shipment.column("id").identity == "always"
    assert shipment.column("total").generated == "(weight_kg * (2)::numeric)"
    assert shipment.unique_keys == [("order_no", "line_no")]
    assert shipment.foreign_keys[0].ref_columns == ("order_no", "line_no")
    assert measured[("public", "MixedCase")].column("at_time").type == "timetz(3)"
    assert measured[("public", "audit_log")].comment is None


def test_row_counts_exact_below_the_limit_estimated_above(measured):
    assert (measured[("public", "customer")].row_count, measured[("public", "customer")].row_count_exact) == (60, True)
    assert (measured[("public", "empty_table")].row_count, measured[("public", "empty_table")].row_count_exact) == (0, True)
    big = measured[("public", "big_events")]
    assert (big.row_count_exact, big.row_count_method) == (False, "sample_estimate")   # never analysed
    assert 1_800_000 < big.row_count < 2_200_000


def test_row_count_of_an_analysed_big_table_is_the_planners_estimate(rich_db):
    with psycopg.connect(rich_db, autocommit=True) as conn:
        conn.execute("analyze public.big_events")
        big = introspection.load_tables(conn, [TableName("public", "big_events")])[("public", "big_events")]
        sampling.measure(conn, big)
    assert (big.row_count_exact, big.row_count_method) == (False, "planner_estimate")
    assert 1_900_000 < big.row_count < 2_100_000
    assert big.column("status").enum_values == ["new", "paid", "shipped"]    # confirmed by pg_stats


def test_samples_are_bounded_and_enums_found_on_the_big_table(measured):
    big = measured[("public", "big_events")]
    assert 0 < big.sampled_rows <= sampling.SAMPLE_ROWS
    assert big.column("status").enum_values == ["new", "paid", "shipped"]
    assert big.column("id").enum_values is None
    assert big.column("amount").enum_values is None
    assert len(big.column("created_on").samples) == sampling.SAMPLES_KEPT


def test_enum_like_columns_in_small_tables(measured):
    customer = measured[("public", "customer")]
    assert customer.column("region").enum_values == ["华东", "华北", "华南"]
    assert customer.column("level").enum_values is None      # a number with three values is no enum
    assert sorted(customer.column("level").samples) == ["1", "2", "3"]
    assert customer.column("id").enum_values is None         # primary key
    assert customer.column("name").enum_values is None       # all distinct
    order = measured[("sales", "order")]
    assert order.column("status").enum_values == ["new", "paid"]
    assert order.column("customer_id").enum_values is None   # foreign key
    assert order.column("note").samples == [] and order.column("note").enum_values is None
    assert measured[("public", "audit_log")].column("raw").samples == []
    assert measured[("public", "empty_table")].column("label").samples == []


def test_unreadable_table_is_documented_from_the_catalog(rich_db):
    with psycopg.connect(rich_db, autocommit=True) as conn:
        conn.execute("create role dp_test_reader_no_select login")
    try:
        reader = rich_db.replace("postgres@", "dp_test_reader_no_select@")
        with psycopg.connect(reader, autocommit=True) as conn:
            table = introspection.load_tables(conn, [TableName("public", "customer")])[("public", "customer")]
            sampling.measure(conn, table)
        assert table.sampling_error and "permission denied" in table.sampling_error
        assert table.row_count is None and len(table.columns) == 7
    finally:
        with psycopg.connect(rich_db, autocommit=True) as conn:
            conn.execute("drop role dp_test_reader_no_select")


def test_rendered_files_follow_the_formats(measured):
    for table in measured.values():
        comments = offline_comments(table)
        check_ddl(render_ddl(table, comments))
        check_md(render_md(table, comments), table)


def test_ddl_of_awkward_names(measured):
    order = measured[("sales", "order")]
    ddl = render_ddl(order, offline_comments(order))
    assert 'create table sales."order" (' in ddl
    assert '  "Order Date" date, -- 下单日期' in ddl
    assert "  primary key (order_no, line_no)\n  -- foreign key (customer_id) references public.customer(id)\n);" in ddl
    assert "comment on column sales.\"order\".note is 'it''s a note';" in ddl
    mixed = measured[("public", "MixedCase")]
    ddl = render_ddl(mixed, offline_comments(mixed))
    assert '  "Id" serial not null,' in ddl and '  "select" integer,' in ddl
    assert "comment on table public.\"MixedCase\" is '混合大小写''表';" in ddl
    md = render_md(mixed, offline_comments(mixed))
    assert md.startswith('## "MixedCase"（混合大小写\'表）\n')


def test_md_of_keys_enums_and_samples(measured):
    order = measured[("sales", "order")]
    md = render_md(order, offline_comments(order))
    assert md.startswith("## sales.\"order\"（订单明细表）\nsales.\"order\" 表订单明细表（每行一个商品）\n字段列表：\n")
    assert "- amount (numeric(19,4)) - 订单金额（元） [非空] [示例: " in md
    assert "- customer_id (uuid) - 客户ID [外键, 非空] [示例: " in md
    assert "- 复合主键: (order_no, line_no)\n" in md
    assert "- customer_id 关联 public.customer.id\n" in md
    assert "- status 为枚举字段，包含取值：new、paid\n" in md
    customer = measured[("public", "customer")]
    md = render_md(customer, offline_comments(customer))
    assert "- tags (text[]) - 客户标签 （多行注释） [示例: " in md
    assert "- id 为主键\n" in md


def test_offline_comments_use_the_dictionary_only_where_the_database_has_none(measured):
    audit = offline_comments(measured[("public", "audit_log")])
    assert audit.column_comments == {"id": "ID", "event": "事件", "ip": "IP地址",   # every column described:
                                     "happened_at": "happened at", "amounts": "amounts", "raw": "raw"}
    assert audit.table_comment == audit.chinese_name == "audit log table"
    order = offline_comments(measured[("sales", "order")])
    assert order.column_comments["status"] == "Order status"     # a real comment beats a guess
    assert order.chinese_name == "订单明细表" and order.table_comment == "订单明细表（每行一个商品）"


def catalog_snapshot(url: str) -> dict:
    """Columns, types, nullability, defaults, keys and comments of every user table, by catalog."""
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute("""
            select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, col_description(c.oid, a.attnum)
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
            where c.relkind = 'r' and n.nspname in ('public', 'sales') order by 1, 2, a.attnum""").fetchall()
        keys = conn.execute("""
            select n.nspname, c.relname, con.contype, pg_get_constraintdef(con.oid)
            from pg_constraint con join pg_class c on c.oid = con.conrelid
            join pg_namespace n on n.oid = c.relnamespace
            where con.contype in ('p', 'u') and n.nspname in ('public', 'sales') order by 1, 2, 3, 4""").fetchall()
        tables = conn.execute("""
            select n.nspname, c.relname, obj_description(c.oid, 'pg_class') from pg_class c
            join pg_namespace n on n.oid = c.relnamespace
            where c.relkind = 'r' and n.nspname in ('public', 'sales') order by 1, 2""").fetchall()
    return {"columns": columns, "keys": keys, "tables": tables}


def test_generated_ddl_recreates_every_table(measured, rich_db, make_local_db):
    empty = make_local_db()
    with psycopg.connect(empty, autocommit=True) as conn:
        for table in measured.values():
            conn.execute(render_ddl(table, offline_comments(table)))
    original, rebuilt = catalog_snapshot(rich_db), catalog_snapshot(empty)

    assert rebuilt["keys"] == original["keys"]
    assert [row[:8] for row in rebuilt["columns"]] == [row[:8] for row in original["columns"]]
    for before, after in zip(original["columns"], rebuilt["columns"]):
        if before[8]:
            assert after[8] == one_line(before[8])
        else:   # nothing invented beyond the naming dictionary
            assert after[8] == naming.describe(before[2])
    for before, after in zip(original["tables"], rebuilt["tables"]):
        assert after[:2] == before[:2]
        assert after[2] == (one_line(before[2]) if before[2] else
                            naming.table_label(before[1]) or naming.table_english_label(before[1]))


@pytest.mark.parametrize("server", ["local", "embedded"])
def test_keyword_list_covers_the_servers_keywords(server, request):
    from data_pipeline.schema.identifiers import NON_UNRESERVED_KEYWORDS, sql_ident

    url = request.getfixturevalue("local_pg_admin_url" if server == "local" else "demo_db_url")
    with psycopg.connect(url) as conn:
        keywords = {row[0] for row in conn.execute("select word from pg_get_keywords() where catcode <> 'U'")}
        quoted = {word: conn.execute("select quote_ident(%s)", (word,)).fetchone()[0] for word in ("order", "id")}
    assert keywords <= NON_UNRESERVED_KEYWORDS
    assert {word: sql_ident(word) for word in quoted} == quoted
