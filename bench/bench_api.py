"""Task API read performance with 10,000 tasks in the store (issue 2).

Starts a real server (`python unified_api.py`) on a private embedded PostgreSQL, fills the store
with 10,000 tasks, then measures over HTTP:
  - GET /tasks/{id} throughput and p50/p99 under concurrent clients, and the same for
    GET /api/v0/health in the same run (target: ratio >= 0.5);
  - p50/p99 of GET /tasks (list pages, status filter) and POST /tasks/query (filters, sorting)
    (target: p99 < 50 ms).

    .venv/bin/python bench/bench_api.py [--tasks 10000] [--seconds 10] [--clients 8]
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline.db import embedded_pg  # noqa: E402
from data_pipeline.store import TaskStore  # noqa: E402
from tests.support.api_server import ApiServer, own_directories_env  # noqa: E402

def fill_store(store_url: str, count: int) -> list[str]:
    TaskStore(store_url).migrate()
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute("""
            insert into dp_tasks (task_id, task_name, status, created_at, updated_at, created_by, db_name,
                                  business_context, parameters)
            select format('task_20240101_%%s', lpad(i::text, 6, '0')), format('bench task %%s', i),
                   (array['pending','completed','failed','partial_completed','cancelled'])[1 + i %% 5],
                   now() - make_interval(secs => i), now(), format('user%%s', i %% 20), format('db%%s', i %% 7),
                   '高速公路服务区管理系统', '{"enable_sql_validation": true}'::jsonb
            from generate_series(1, %s) as i""", (count,))
        conn.execute("""
            insert into dp_task_steps (task_id, step_name, step_order, status)
            select t.task_id, s.name, s.ord, 'completed'
            from dp_tasks t cross join (values ('ddl_generation', 1), ('qa_generation', 2),
                                               ('sql_validation', 3), ('training_load', 4)) as s(name, ord)""")
        conn.execute("analyze")
        return [r[0] for r in conn.execute("select task_id from dp_tasks")]


def hammer(make_request, seconds: float, clients: int) -> tuple[float, list[float]]:
    """Requests per second and latencies (ms) of `clients` threads for `seconds`."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    errors = []

    def client():
        session = requests.Session()
        local = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = make_request(session)
            local.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                errors.append(response.status_code)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed: {errors[:5]}")
    return len(latencies) / (time.monotonic() - started), latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def sequential(server: ApiServer, requests_: list, repeat: int) -> list[float]:
    session = requests.Session()
    latencies = []
    for _ in range(repeat):
        for method, path, kwargs in requests_:
            started = time.perf_counter()
            response = session.request(method, server.url + path, timeout=30, **kwargs)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dp-bench-api-"))
    pg_dir = root / "pg"
    try:
        ids = fill_store(embedded_pg.store_url(pg_dir), args.tasks)
        server = ApiServer(own_directories_env(root, pg_dir, FLASK_LOG_LEVEL="WARNING"), root)
        server.start()
        try:
            base = server.url
            hammer(lambda s: s.get(f"{base}/api/v0/health"), 1, args.clients)   # warm up
            health_rps, health_lat = hammer(lambda s: s.get(f"{base}/api/v0/health"), args.seconds, args.clients)
            task_rps, task_lat = hammer(
                lambda s: s.get(f"{base}/api/v0/data_pipeline/tasks/{random.choice(ids)}"), args.seconds,
                args.clients)
            lists = sequential(server, [
                ("GET", "/api/v0/data_pipeline/tasks", {"params": {"limit": 50}}),
                ("GET", "/api/v0/data_pipeline/tasks", {"params": {"limit": 100, "offset": 5000}}),
                ("GET", "/api/v0/data_pipeline/tasks", {"params": {"limit": 50, "status": "failed"}}),
            ], 100)
            queries = sequential(server, [
                ("POST", "/api/v0/data_pipeline/tasks/query", {"json": {"page": 3, "page_size": 20}}),
                ("POST", "/api/v0/data_pipeline/tasks/query",
                 {"json": {"status": "completed", "created_by": "user3", "db_name": "db3", "page_size": 50}}),
                ("POST", "/api/v0/data_pipeline/tasks/query",
                 {"json": {"task_name": "task 99", "sort_by": "task_name", "sort_order": "asc"}}),
                ("POST", "/api/v0/data_pipeline/tasks/query",
                 {"json": {"created_time_start": "2000-01-01T00:00:00", "page": 100, "page_size": 100}}),
            ], 75)
        finally:
            server.stop()
    finally:
        embedded_pg.release()
        shutil.rmtree(root, ignore_errors=True)

    print(f"tasks in store: {args.tasks}, clients: {args.clients}, {args.seconds:.0f} s per endpoint")
    print(f"GET /api/v0/health       {health_rps:8.1f} req/s  p50 {statistics.median(health_lat):6.2f} ms  "
          f"p99 {percentile(health_lat, 99):6.2f} ms")
    print(f"GET /tasks/{{id}}          {task_rps:8.1f} req/s  p50 {statistics.median(task_lat):6.2f} ms  "
          f"p99 {percentile(task_lat, 99):6.2f} ms")
    print(f"ratio GET /tasks/{{id}} / health throughput: {task_rps / health_rps:.2f} (target >= 0.5)")
    print(f"GET /tasks (list)         p50 {statistics.median(lists):6.2f} ms  p99 {percentile(lists, 99):6.2f} ms"
          f"  (n={len(lists)}, target p99 < 50 ms)")
    print(f"POST /tasks/query         p50 {statistics.median(queries):6.2f} ms  p99 {percentile(queries, 99):6.2f} ms"
          f"  (n={len(queries)}, target p99 < 50 ms)")


if __name__ == "__main__":
    main()
