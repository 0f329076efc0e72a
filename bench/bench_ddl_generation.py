"""Benchmark of step 1 (ddl_generation) on a 200-table schema with one 10-million-row table.

    .venv/bin/python bench/bench_ddl_generation.py [--rebuild] [--skip-llm] [--concurrency N]

The database `dp_bench_ddl` on 127.0.0.1:5432 (or BENCH_PG_ADMIN_URL's server) is built once
(about a minute) and reused while its version marker matches. Figures printed:

1. Offline: the step's wall time, and the bare catalog queries plus sampling it needs (the same
   introspection and sampling calls on the same number of connections, nothing else) in the same
   run. Targets: under 20 s, within 3x of the bare queries.
2. With a fake OpenAI-compatible server answering in 500 ms: the step's wall time against
   LLM calls x 500 ms / LLM_CONCURRENCY. Target: within 1.3x.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import Settings  # noqa: E402
from data_pipeline.db.connection import with_database  # noqa: E402
from data_pipeline.llm.client import LLMClient, extract_json  # noqa: E402
from data_pipeline.schema import introspection, sampling  # noqa: E402
from data_pipeline.steps import ddl_generation  # noqa: E402
from data_pipeline.steps.context import StepContext  # noqa: E402
from data_pipeline.schema.names import TableName  # noqa: E402
from tests.support.fake_llm import FakeLLMServer, Reply  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "dp_bench_ddl"
VERSION = "bench-ddl-v1"
TABLE_COUNT = 200
BIG_ROWS = 10_000_000
LLM_DELAY = 0.5

# (type, SQL expression of the row number i and the column number j)
_COLUMN_KINDS = [
    ("integer", "(i * {j}) % 100000"),
    ("varchar(50)", "'v' || (i % (50 + {j}))"),
    ("numeric(19,4)", "(i % 10000) / 3.0"),
    ("timestamp", "timestamp '2024-01-01' + i * interval '1 minute'"),
    ("varchar(20)", "(array['A', 'B', 'C', 'D'])[1 + i % 4]"),
    ("date", "date '2024-01-01' + i % 365"),
    ("bigint", "i::bigint * {j}"),
    ("boolean", "i % 2 = 0"),
    ("text", "'备注' || (i % 997)"),
    ("smallint", "(i % 5)::smallint"),
]


def table_sql(index: int) -> str:
    name = f"bench_t{index:03d}"
    columns = 5 + (index * 7) % 46
    rows = 200 + (index * 37) % 2000
    definitions, expressions, comments = ["id integer primary key"], ["i"], []
    for j in range(1, columns):
        kind, expression = _COLUMN_KINDS[(index + j) % len(_COLUMN_KINDS)]
        definitions.append(f"c{j:02d} {kind}")
        expressions.append(expression.format(j=j))
        if j % 2:
            comments.append(f"comment on column {name}.c{j:02d} is '业务字段{j}';")
    return (f"create table {name} ({', '.join(definitions)});\n"
            f"insert into {name} select {', '.join(expressions)} from generate_series(1, {rows}) i;\n"
            + (f"comment on table {name} is '基准测试表{index}';\n" if index % 3 else "")
            + "\n".join(comments))


BIG_TABLE_SQL = f"""
create table bench_big_events (id bigint not null, status varchar(20) not null, amount numeric(19,4),
                               created date, customer_no integer, note text);
comment on table bench_big_events is '大事件流水表';
insert into bench_big_events
  select i, (array['new', 'paid', 'shipped', 'closed'])[1 + i % 4], (i % 100000) / 7.0,
         date '2020-01-01' + i % 1500, i % 50000, null
  from generate_series(1, {BIG_ROWS}) i;
"""


def ensure_database(rebuild: bool) -> str:
    url = with_database(ADMIN_URL, DATABASE)
    if not rebuild:
        try:
            with psycopg.connect(url) as conn:
                marker = conn.execute("select obj_description('public.bench_meta'::regclass)").fetchone()[0]
            if marker == VERSION:
                print(f"database {DATABASE}: reused")
                return url
        except psycopg.Error:
            pass
    started = time.monotonic()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{DATABASE}" with (force)')
        conn.execute(f'create database "{DATABASE}"')
    with psycopg.connect(url, autocommit=True) as conn:
        for index in range(1, TABLE_COUNT):
            conn.execute(table_sql(index))
        conn.execute(BIG_TABLE_SQL)
        conn.execute("analyze")
        conn.execute("create table bench_meta ()")
        conn.execute(f"comment on table bench_meta is '{VERSION}'")
    print(f"database {DATABASE}: built in {time.monotonic() - started:.1f} s")
    return url


def table_names() -> list[str]:
    return [f"bench_t{i:03d}" for i in range(1, TABLE_COUNT)] + ["bench_big_events"]


def bare_queries(url: str, connections: int) -> float:
    """The catalog queries and sampling the step needs, on as many connections, and nothing else."""
    started = time.monotonic()
    local = threading.local()
    opened = []

    def measure(table):
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(url, autocommit=True)
            opened.append(local.conn)
        sampling.measure(local.conn, table)

    with psycopg.connect(url, autocommit=True) as conn:
        tables = introspection.load_tables(conn, [TableName("public", n) for n in table_names()])
    with ThreadPoolExecutor(max_workers=connections) as executor:
        list(executor.map(measure, tables.values()))
    for conn in opened:
        conn.close()
    assert len(tables) == TABLE_COUNT
    return time.monotonic() - started


def run_step(url: str, llm=None, concurrency: int = 4) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-ddl-") as task_dir:
        ctx = StepContext(task_id="bench", task_dir=Path(task_dir),
                          settings=Settings().with_overrides(llm_concurrency=concurrency), db_url=url,
                          db_name=DATABASE, business_context="电商业务", tables=table_names(), params={}, llm=llm)
        started = time.monotonic()
        result = ddl_generation.run(ctx)
        elapsed = time.monotonic() - started
    assert result["processed_successfully"] == TABLE_COUNT, result["errors"][:3]
    return elapsed, result


def answer(request) -> Reply:
    facts = extract_json(request["messages"][1]["content"])
    time.sleep(LLM_DELAY)
    return Reply(content=json.dumps({"table_name_cn": "基准表", "table_description": "基准测试数据。",
                                     "columns": [{"name": c["name"], "comment": "字段说明"} for c in facts["columns"]]},
                                    ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the benchmark database")
    parser.add_argument("--skip-llm", action="store_true", help="only the offline figures")
    parser.add_argument("--concurrency", type=int, default=Settings().llm_concurrency, help="LLM_CONCURRENCY")
    args = parser.parse_args()
    url = ensure_database(args.rebuild)

    connections = min(ddl_generation.DB_CONNECTIONS, ddl_generation.OFFLINE_WORKERS)
    bare_queries(url, connections)   # warm the caches once, so both figures below see the same state
    bare = bare_queries(url, connections)
    step, result = run_step(url)
    print(f"offline: {TABLE_COUNT} tables (one of {BIG_ROWS:,} rows)")
    print(f"  bare catalog queries + sampling ({connections} connections): {bare:.2f} s")
    print(f"  step wall time: {step:.2f} s (result duration {result['duration']:.2f} s)")
    print(f"  ratio step / bare: {step / bare:.2f}x   (targets: < 20 s, <= 3x)")

    if args.skip_llm:
        return
    with FakeLLMServer(answer) as server:
        llm = LLMClient(base_url=server.base_url, model="fake", concurrency=args.concurrency, max_retries=0)
        step, result = run_step(url, llm, args.concurrency)
        calls = len(server.chat_requests())
    ideal = calls * LLM_DELAY / args.concurrency
    print(f"llm: {calls} calls of {LLM_DELAY * 1000:.0f} ms, LLM_CONCURRENCY={args.concurrency}")
    print(f"  ideal (calls x {LLM_DELAY} s / concurrency): {ideal:.2f} s")
    print(f"  step wall time: {step:.2f} s, tables with LLM comments: {result['llm_comment_tables']}")
    print(f"  ratio step / ideal: {step / ideal:.2f}x   (target: <= 1.3x)")


if __name__ == "__main__":
    main()
