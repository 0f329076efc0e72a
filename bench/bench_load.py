"""Mixed API load while two tasks execute (issue 9), the 60-second version of the reliability test.

Starts a real server (`python unified_api.py`) on a private embedded PostgreSQL. Two tasks run
the four real steps on the demo database (offline generator, hash embeddings), each started
again as soon as its run ends; meanwhile N clients (default 8) mix task creates, status reads,
lists and queries, log reads and queries, file listings and execution histories for a fixed time
(default 60 s). Prints latency percentiles per operation and overall, throughput, the status
codes seen, and checks that nothing was lost: every created task listed once, every execution
completed, no 5xx.

    .venv/bin/python bench/bench_load.py [--seconds 60] [--clients 8]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_pipeline.db import embedded_pg  # noqa: E402
from tests.support.api_server import ApiServer, own_directories_env  # noqa: E402
from tests.support.load_mix import MixedLoad  # noqa: E402

DEMO_TABLES = ["bss_business_day_data", "bss_car_day_count", "bss_company", "bss_section_route",
               "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="dp-bench-load-"))
    try:
        server = ApiServer(own_directories_env(root, FLASK_LOG_LEVEL="WARNING"), root)
        server.start(timeout=180)
        try:
            runners = []
            for n in (1, 2):
                task_id = server.create_task(task_name=f"负载执行任务{n}", business_context="高速公路服务区管理系统")
                response = server.post(f"/api/v0/data_pipeline/tasks/{task_id}/table-list",
                                       json={"table_names": DEMO_TABLES})
                assert response.status_code == 200, response.text
                runners.append(task_id)
            load = MixedLoad(server, runners=runners, clients=args.clients, seconds=args.seconds)
            report = load.run()
            load.wait_for_runners()
            problems = load.verify()
        finally:
            server.stop()
    finally:
        embedded_pg.release()
        shutil.rmtree(root, ignore_errors=True)

    print(f"mixed load: {args.clients} clients for {args.seconds:.0f} s while two tasks run the four real steps "
          f"on the demo database (offline), each restarted when its run ends")
    print(report.table())
    runs = len(report.executions)
    print(f"complete runs finished during the load: {runs} (each all four steps, all completed: "
          f"{'yes' if not any('did not complete' in p for p in problems) else 'NO'})")
    print(f"5xx responses: {report.server_errors}; lost or duplicated tasks: "
          f"{'none' if not any('lost' in p or 'twice' in p or 'duplicate' in p for p in problems) else 'SOME'}")
    for problem in problems[:20]:
        print(f"PROBLEM: {problem}")
    return 1 if problems or report.server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
