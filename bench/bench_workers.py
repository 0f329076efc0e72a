"""Throughput of the run queue and of Celery workers (issue 18).

Eight complete offline runs on the demo database (`highway_db`, the seven tables of the README
tour, real steps, no LLM), submitted at once:

  - local executor, DATA_PIPELINE_MAX_RUNNING=2 (the local queue's figure);
  - DATA_PIPELINE_EXECUTOR=celery with one worker (concurrency 1), then with two workers
    (concurrency 1 each), on the same machine.

Prints completed tasks per minute for each and the ratio two workers : one worker. A private
embedded PostgreSQL under a temporary directory; the broker is Redis database 14 (emptied before
and after; `--redis-url` to change).

    .venv/bin/python bench/bench_workers.py [--tasks 8] [--redis-url redis://127.0.0.1:6379/14]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline.db import embedded_pg  # noqa: E402
from tests.support.api_server import ApiServer, own_directories_env  # noqa: E402
from tests.support.workers import Worker, flush  # noqa: E402

TABLES = ["bss_business_day_data", "bss_car_day_count", "bss_company", "bss_section_route",
          "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]
FINISHED = ("completed", "failed", "cancelled", "partial_completed")


def run_batch(server: ApiServer, count: int) -> tuple[float, dict[str, int], set[str]]:
    """Submit `count` complete runs at once; (seconds until all ended, statuses, workers used)."""
    task_ids = []
    for n in range(count):
        task_id = server.create_task(task_name=f"bench-workers-{n}", db_name="highway_db",
                                     business_context="高速公路服务区管理系统")
        server.set_table_list(task_id, TABLES)
        task_ids.append(task_id)
    started = time.perf_counter()
    for task_id in task_ids:
        response = server.execute(task_id)
        assert response.status_code == 202, response.text
    ended: dict[str, dict] = {}
    while len(ended) < count:
        for task_id in task_ids:
            if task_id not in ended:
                task = server.task(task_id)
                if task["status"] in FINISHED:
                    ended[task_id] = task
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for task in ended.values():
        statuses[task["status"]] = statuses.get(task["status"], 0) + 1
    workers = {task["execution"]["worker"] for task in ended.values() if task["execution"]["worker"]}
    return elapsed, statuses, workers


def per_minute(count: int, seconds: float) -> float:
    return count * 60 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dp-bench-workers-"))
    flush(args.redis_url)
    results = []
    try:
        local_env = own_directories_env(root / "local", root / "pg", DATA_PIPELINE_MAX_RUNNING="2")
        (root / "local").mkdir()
        server = ApiServer(local_env, root / "local").start()
        try:
            results.append(("local executor, MAX_RUNNING 2", *run_batch(server, args.tasks)))
        finally:
            server.stop()

        for count in (1, 2):
            workdir = root / f"celery{count}"
            workdir.mkdir()
            env = own_directories_env(workdir, root / "pg", DATA_PIPELINE_EXECUTOR="celery",
                                      DATA_PIPELINE_BROKER_URL=args.redis_url)
            server = ApiServer(env, workdir).start()
            workers = [Worker(env, workdir, f"bench{n}@localhost").start() for n in range(count)]
            try:
                results.append((f"celery, {count} worker{'s' if count > 1 else ''} x concurrency 1",
                                *run_batch(server, args.tasks)))
            finally:
                for worker in workers:
                    worker.stop()
                server.stop()
    finally:
        flush(args.redis_url)
        embedded_pg.release()
        shutil.rmtree(root, ignore_errors=True)

    print(f"{args.tasks} complete offline runs of the demo database ({len(TABLES)} tables), submitted at once; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    rates = {}
    for label, seconds, statuses, workers in results:
        rates[label] = per_minute(args.tasks, seconds)
        used = f", workers used: {len(workers)}" if workers else ""
        print(f"  {label:38s} {seconds:6.1f} s  {rates[label]:5.1f} completed tasks/min  {statuses}{used}")
    one, two = (rate for label, rate in rates.items() if label.startswith("celery"))
    print(f"  two workers : one worker = {two / one:.2f}")


if __name__ == "__main__":
    main()
