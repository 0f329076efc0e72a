"""SQL validation throughput: 2,000 pairs against a local PostgreSQL, compared in the same run
with the same EXPLAINs sent one by one on one connection.

    python bench/bench_sql_validation.py [--pairs 2000] [--latency-ms 2] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database with the demo schema and data, and drops it at the end. The pairs are
the offline generator's templates for the demo tables, varied by a LIMIT, with one in twenty
made invalid (a misspelled column), as a generated file would have some.

The sql_validation step runs twice at the end: EXPLAIN only and with the execution check.

A business database is rarely on the same machine: `--latency-ms` repeats the comparison through
a TCP relay on 127.0.0.1 that delays every packet by half that time each way.
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from config import Settings  # noqa: E402
from data_pipeline.db import demo_db  # noqa: E402
from data_pipeline.qa.column_roles import roles_by_table  # noqa: E402
from data_pipeline.qa.documents import load_table_documents  # noqa: E402
from data_pipeline.qa.templates import table_candidates  # noqa: E402
from data_pipeline.steps import ddl_generation, sql_validation  # noqa: E402
from data_pipeline.schema.names import parse_table_name  # noqa: E402
from data_pipeline.steps.context import StepContext  # noqa: E402
from data_pipeline.validation.explain_validator import SQLValidator  # noqa: E402
from data_pipeline.tasks.directory import write_json_atomic  # noqa: E402
from tests.conftest import DatabaseFactory  # noqa: E402


def bench_sqls(db_url: str, count: int, settings: Settings) -> list[str]:
    """Template SQL for the demo tables, documented by the real step 1."""
    with tempfile.TemporaryDirectory() as task_dir:
        ctx = StepContext(task_id="bench", task_dir=Path(task_dir), settings=settings, db_url=db_url,
                          db_name="bench", business_context="", tables=list(demo_db.DEMO_TABLES), params={})
        ddl_generation.run(ctx)
        docs, _ = load_table_documents(Path(task_dir), [parse_table_name(t) for t in demo_db.DEMO_TABLES])
    by_key, roles = {doc.key: doc for doc in docs}, roles_by_table(docs)
    templates = [c.sql.rstrip(";") for doc in docs for c in table_candidates(doc, by_key, roles)]
    sqls = []
    for index in range(count):
        sql = f"SELECT * FROM ({templates[index % len(templates)]}) q LIMIT {index // len(templates) + 1}"
        if index % 20 == 19:
            sql = sql.replace("delete_ts", "delet_ts", 1) if "delete_ts" in sql else sql + " WHERE nope = 1"
        sqls.append(sql)
    return sqls


class DelayingRelay:
    """127.0.0.1:<port> -> the database, every chunk held `delay` seconds in each direction.
    Runs in its own process (`--relay`), so its threads do not compete with the validator's."""

    def __init__(self, host: str, port: int, delay: float):
        self.upstream, self.delay = (host, port), delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def serve(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.upstream)
            for sock in (client, upstream):  # as libpq does: no Nagle delay on small messages
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(self.delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            target.close()


def start_relay(latency_ms: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, __file__, "--relay", str(latency_ms)], stdout=subprocess.PIPE,
                               text=True)
    return process, int(process.stdout.readline())


def compare(db_url: str, sqls: list[str], settings: Settings, label: str) -> None:
    serial = one_by_one(db_url, sqls)
    with SQLValidator(db_url, concurrency=1, statement_timeout_ms=settings.sql_explain_timeout_ms) as validator:
        started = time.perf_counter()
        validator.validate_many(sqls)
        serial_checked = time.perf_counter() - started
    with SQLValidator(db_url, concurrency=settings.sql_validation_concurrency,
                      statement_timeout_ms=settings.sql_explain_timeout_ms) as validator:
        started = time.perf_counter()
        validator.validate_many(sqls)
        pooled = time.perf_counter() - started
    n = len(sqls)
    print(f"[{label}]")
    print(f"  one by one, bare EXPLAIN, one connection:              {n / serial:8.1f} pairs/s  ({serial:.2f} s)")
    print(f"  one by one, full check (parse + READ ONLY txn + timeout): {n / serial_checked:8.1f} pairs/s  "
          f"({serial_checked:.2f} s)")
    print(f"  SQLValidator, pooled, {settings.sql_validation_concurrency} concurrent:                   "
          f"{n / pooled:8.1f} pairs/s  ({pooled:.2f} s)")
    print(f"  ratio pooled / bare one-by-one: {serial / pooled:.2f}x; pooled / full-check one-by-one: "
          f"{serial_checked / pooled:.2f}x; target >= 300 pairs/s: {'met' if n / pooled >= 300 else 'NOT met'}")


def one_by_one(db_url: str, sqls: list[str]) -> float:
    with psycopg.connect(db_url, autocommit=True) as conn:
        started = time.perf_counter()
        for sql in sqls:
            try:
                conn.execute("EXPLAIN " + sql)
            except psycopg.Error:
                pass
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--relay", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay is not None:
        relay = DelayingRelay("127.0.0.1", 5432, args.relay / 2000)
        print(relay.port, flush=True)
        relay.serve()
        return
    settings = Settings()
    databases = DatabaseFactory(args.admin_url, "bench_sqlval")
    db_url = databases()
    try:
        with psycopg.connect(db_url) as conn:
            demo_db.populate(conn)
        sqls = bench_sqls(db_url, args.pairs, settings)
        invalid_expected = sum(1 for i in range(len(sqls)) if i % 20 == 19)

        print(f"pairs: {len(sqls)} ({invalid_expected} with an injected error)")
        compare(db_url, sqls, settings, "local database")
        if args.latency_ms:
            relay, port = start_relay(args.latency_ms)
            try:
                relayed = db_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
                compare(relayed, sqls, settings, f"database {args.latency_ms:g} ms away (round trip)")
            finally:
                relay.terminate()
                relay.wait(timeout=10)

        # The step as a task runs it: EXPLAIN only (validate_by_execution=false), then with the
        # execution check (the default: what passes EXPLAIN also runs, read-only, row-limited).
        figures = {}
        for execute in (False, True):
            with tempfile.TemporaryDirectory() as task_dir:
                write_json_atomic(Path(task_dir) / "qs_bench_20250101_000000_pair.json",
                                  [{"question": f"问题{i}", "sql": sql} for i, sql in enumerate(sqls)])
                ctx = StepContext(task_id="bench", task_dir=Path(task_dir), settings=settings, db_url=db_url,
                                  db_name="bench", business_context="", tables=[], llm=None,
                                  params={"enable_llm_repair": False, "modify_original_file": False,
                                          "validate_by_execution": execute})
                started = time.perf_counter()
                result = sql_validation.run(ctx)
                figures[execute] = step = time.perf_counter() - started
            label = "with the execution check" if execute else "EXPLAIN only          "
            print(f"[sql_validation step, local database, incl. reports, {label}] {len(sqls) / step:8.1f} pairs/s "
                  f"({step:.2f} s), valid {result['valid_sql_count']}/{result['original_sql_count']}, "
                  f"executed {result['execution_check']['executed']}")
        print(f"  execution check / EXPLAIN only: {figures[True] / figures[False]:.2f}x the time")
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
