"""The whole pipeline, end to end over HTTP: a complete run (all four real steps, offline generator,
hash embeddings) on the demo database and on the generated 200-table schema (issue 9).

Starts a real server (`python unified_api.py`) on a private embedded PostgreSQL, creates a task
per database, executes it in complete mode and polls its status like a frontend would. Prints the
wall time of each step and of the run, what each step produced, and time per table on both
databases (the ratio says how the cost grows with the schema).

The 200-table schema is bench_ddl_generation's `dp_bench_ddl` on 127.0.0.1:5432 (200 tables of
10-30 columns, one of 10 million rows), built on first use (about a minute) and reused.

    .venv/bin/python bench/bench_workflow.py [--skip-200]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline.db import embedded_pg  # noqa: E402
from tests.support.api_server import ApiServer, own_directories_env  # noqa: E402

TASKS = "/api/v0/data_pipeline/tasks"
DEMO_TABLES = ["bss_business_day_data", "bss_car_day_count", "bss_company", "bss_section_route",
               "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]
STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")


def run_complete(server: ApiServer, label: str, tables: list[str], db_connection: str | None) -> dict:
    params = {"task_name": f"bench {label}", "business_context": "高速公路服务区管理系统"}
    if db_connection:
        params["db_connection"] = db_connection
    task_id = server.create_task(**params)
    response = server.post(f"{TASKS}/{task_id}/table-list", json={"table_names": tables})
    assert response.status_code == 200, response.text
    started = time.monotonic()
    response = server.execute(task_id, execution_mode="complete")
    assert response.status_code == 202, response.text
    task = server.wait_for(task_id, timeout=1800)
    wall = time.monotonic() - started
    if task["status"] != "completed":
        raise SystemExit(f"{label}: run ended {task['status']}: {task['error_message']}")
    results = {step["step_name"]: step["result"] or {} for step in task["steps"]}
    return {"label": label, "tables": len(tables), "wall": wall, "results": results}


def report(run: dict) -> None:
    results = run["results"]
    ddl, qa, validation, load = (results[name] for name in STEPS)
    print(f"{run['label']}: {run['tables']} tables, complete run {run['wall']:.1f} s "
          f"({run['wall'] / run['tables'] * 1000:.0f} ms per table)")
    print(f"  ddl_generation  {ddl.get('duration', 0):7.2f} s  {ddl.get('processed_successfully')} tables documented")
    print(f"  qa_generation   {qa.get('duration', 0):7.2f} s  {qa.get('total_questions')} question/SQL pairs, "
          f"{qa.get('total_themes')} themes")
    print(f"  sql_validation  {validation.get('duration', 0):7.2f} s  {validation.get('valid_sql_count')} of "
          f"{validation.get('original_sql_count')} SQL valid")
    print(f"  training_load   {load.get('duration', 0):7.2f} s  {load.get('total_records')} documents loaded")
    steps = sum(results[name].get("duration", 0) for name in STEPS)
    print(f"  overhead (executor start, status writes, polling): {run['wall'] - steps:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-200", action="store_true", help="only the demo database")
    args = parser.parse_args()

    big_url = None
    if not args.skip_200:
        from bench.bench_ddl_generation import ensure_database, table_names

        big_url = ensure_database(rebuild=False)
        big_tables = table_names()
    root = Path(tempfile.mkdtemp(prefix="dp-bench-workflow-"))
    runs = []
    try:
        server = ApiServer(own_directories_env(root, FLASK_LOG_LEVEL="WARNING"), root)
        server.start(timeout=180)
        try:
            run_complete(server, "warm-up", DEMO_TABLES[:1], None)   # first imports, caches
            runs.append(run_complete(server, "demo database highway_db", DEMO_TABLES, None))
            if big_url:
                runs.append(run_complete(server, "generated schema dp_bench_ddl", big_tables, big_url))
        finally:
            server.stop()
    finally:
        embedded_pg.release()
        shutil.rmtree(root, ignore_errors=True)

    for run in runs:
        report(run)
    if len(runs) == 2:
        demo, big = runs
        per_table = (big["wall"] / big["tables"]) / (demo["wall"] / demo["tables"])
        print(f"time per table, 200-table schema / demo database: {per_table:.2f}x "
              f"({big['tables'] / demo['tables']:.0f}x the tables, {big['wall'] / demo['wall']:.1f}x the time)")


if __name__ == "__main__":
    main()
