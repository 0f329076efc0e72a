"""Load: 8 clients mixing creates, status reads, lists, log reads and file listings while two
tasks execute the real steps on the demo database (offline), again and again.

Zero 5xx (in fact every response must be a 2xx: the mix sends only valid requests), no task lost
or listed twice, every execution completed. Latency percentiles are printed, not asserted.
The test runs DATA_PIPELINE_LOAD_SECONDS (15 s by default, to keep the suite short);
`bench/bench_load.py` runs the same load for 60 s and reports it in bench/results.md.
"""
from __future__ import annotations

import os

from tests.reliability.conftest import new_task
from tests.support.load_mix import MixedLoad
from tests.support.secret_audit import audit

LOAD_SECONDS = float(os.environ.get("DATA_PIPELINE_LOAD_SECONDS", "15"))
CLIENTS = 8


def open_files(server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def test_mixed_load_while_two_tasks_execute(rel_server):
    runners = [new_task(rel_server, task_name=f"负载执行任务{n}")
               for n in (1, 2)]
    fds_before = open_files(rel_server)
    load = MixedLoad(rel_server, runners=runners, clients=CLIENTS, seconds=LOAD_SECONDS, watch=audit.watch)
    report = load.run()
    load.wait_for_runners()
    fds_after = open_files(rel_server)
    print(f"\nmixed load, {CLIENTS} clients, {LOAD_SECONDS:.0f} s, two tasks executing:\n{report.table()}\n"
          f"API server open files: {fds_before} before, {fds_after} after")
    # Pooled store connections and idle sockets may stay open; a leak per request would not.
    assert fds_after <= fds_before + 40, (fds_before, fds_after)

    assert report.server_errors == 0, report.failures[:10]
    problems = load.verify()
    assert not problems, problems[:10]
    assert report.requests > 10 * CLIENTS
    assert len(report.executions) >= 2
    assert {key for key in report.latencies} >= {"create", "status", "list", "logs", "files"}
    for task_id in runners:
        task = rel_server.task(task_id)
        assert task["status"] == "completed", task
