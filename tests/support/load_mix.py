"""A mixed load on a running API server while tasks execute (used by tests/reliability and bench).

N clients, each with its own HTTP session, for a fixed time: task creates, status reads, lists
and queries, log reads and queries, file listings. Meanwhile a keeper thread keeps `runners` tasks
executing (complete mode, real steps), starting each again when its run ends, so executions
overlap the whole load. Every response's status and latency is recorded; afterwards `verify`
checks that every created task is listed exactly once and that every execution completed.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import requests

from tests.support.api_server import ApiServer

TASKS = "/api/v0/data_pipeline/tasks"

# operation -> weight (out of 100)
MIX = {"create": 8, "status": 30, "list": 10, "query": 8, "logs": 14, "logs_query": 6, "files": 14,
       "executions": 5, "table_list_info": 5}


@dataclass
class LoadReport:
    seconds: float
    clients: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    def table(self) -> str:
        """Latency percentiles per operation and overall, in milliseconds."""
        lines = [f"{'operation':<16}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}"]
        rows = sorted(self.latencies.items()) + [("ALL", self.all_latencies())]
        for name, values in rows:
            if values:
                lines.append(f"{name:<16}{len(values):>8}{percentile(values, 50):>10.1f}"
                             f"{percentile(values, 95):>10.1f}{percentile(values, 99):>10.1f}{max(values) * 1000:>10.1f}")
        lines.append(f"{self.requests} requests in {self.seconds:.1f} s by {self.clients} clients "
                     f"({self.requests / self.seconds:.0f}/s); statuses {dict(sorted(self.statuses.items()))}; "
                     f"{len(self.created)} tasks created; {len(self.executions)} executions")
        return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile in milliseconds (nearest rank)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank] * 1000


class MixedLoad:
    def __init__(self, server: ApiServer, *, runners: list[str], clients: int = 8, seconds: float = 60,
                 created_by: str | None = None, seed: int = 7, watch=None):
        self.server = server
        self.runners = runners
        self.clients = clients
        self.seconds = seconds
        self.created_by = created_by or f"load-{uuid.uuid4().hex[:8]}"
        self.seed = seed
        self.watch = watch or (lambda session: session)
        self.report = LoadReport(seconds=seconds, clients=clients)
        self._known = list(runners)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.server.session.headers)
        return self.watch(session)

    def run(self) -> LoadReport:
        keeper = threading.Thread(target=self._keep_running, name="load-keeper", daemon=True)
        keeper.start()
        workers = [threading.Thread(target=self._client, args=(n,), name=f"load-{n}", daemon=True)
                   for n in range(self.clients)]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(self.seconds + 120)
        self.report.seconds = time.monotonic() - started
        self._stop.set()
        keeper.join(30)
        return self.report

    # ---- the executing tasks ----------------------------------------------------------------

    def _keep_running(self) -> None:
        session = self._session()
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            for task_id in self.runners:
                status = session.get(f"{self.server.url}{TASKS}/{task_id}", timeout=30).json()["data"]["status"]
                if status != "in_progress":
                    response = session.post(f"{self.server.url}{TASKS}/{task_id}/execute",
                                            json={"execution_mode": "complete"}, timeout=30)
                    if response.status_code == 202:
                        with self._lock:
                            self.report.executions.append(response.json()["data"]["execution_id"])
                    elif response.status_code != 409:
                        with self._lock:
                            self.report.failures.append(f"execute {task_id}: {response.status_code} {response.text[:300]}")
            time.sleep(0.2)

    # ---- the clients ------------------------------------------------------------------------

    def _client(self, number: int) -> None:
        rng = random.Random(self.seed * 1000 + number)
        session = self._session()
        operations, weights = zip(*MIX.items())
        deadline = time.monotonic() + self.seconds
        count = 0
        while time.monotonic() < deadline:
            operation = rng.choices(operations, weights)[0]
            method, path, body = self._request(operation, rng, number, count)
            count += 1
            started = time.perf_counter()
            try:
                response = session.request(method, self.server.url + path, json=body, timeout=60)
            except requests.RequestException as exc:
                with self._lock:
                    self.report.failures.append(f"{operation} {path}: {type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            with self._lock:
                self.report.latencies[operation].append(elapsed)
                self.report.statuses[response.status_code] += 1
                if not 200 <= response.status_code < 300:
                    self.report.failures.append(f"{operation} {method} {path}: {response.status_code} {response.text[:300]}")
                elif operation == "create":
                    task_id = response.json()["data"]["task_id"]
                    self.report.created.append(task_id)
                    self._known.append(task_id)

    def _request(self, operation: str, rng: random.Random, number: int, count: int) -> tuple[str, str, dict | None]:
        with self._lock:
            any_task = rng.choice(self._known)
        runner = rng.choice(self.runners)
        if operation == "create":
            return "POST", TASKS, {"task_name": f"负载测试 {number}-{count}", "created_by": self.created_by,
                                   "business_context": "高速公路服务区管理系统", "db_name": "highway_db"}
        if operation == "status":
            return "GET", f"{TASKS}/{any_task}", None
        if operation == "list":
            return "GET", f"{TASKS}?limit={rng.choice((10, 50, 100))}", None
        if operation == "query":
            return "POST", f"{TASKS}/query", {"created_by": self.created_by, "page": rng.randint(1, 3),
                                              "page_size": 20, "sort_by": rng.choice(("created_at", "task_name")),
                                              "sort_order": rng.choice(("asc", "desc"))}
        if operation == "logs":
            return "GET", f"{TASKS}/{runner}/logs?limit={rng.choice((20, 100))}", None
        if operation == "logs_query":
            return "POST", f"{TASKS}/{runner}/logs/query", {"keyword": rng.choice(("步骤", "完成", "sql")),
                                                             "page_size": 50}
        if operation == "files":
            return "GET", f"{TASKS}/{rng.choice((runner, any_task))}/files", None
        if operation == "executions":
            return "GET", f"{TASKS}/{runner}/executions", None
        return "GET", f"{TASKS}/{any_task}/table-list-info", None

    # ---- afterwards -------------------------------------------------------------------------

    def wait_for_runners(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        for task_id in self.runners:
            while self.server.task(task_id)["status"] == "in_progress":
                if time.monotonic() > deadline:
                    raise AssertionError(f"task {task_id} still running after the load")
                time.sleep(0.3)

    def verify(self) -> list[str]:
        """Problems found after the load: lost or duplicated tasks, executions that did not complete."""
        problems = list(self.report.failures)
        created = self.report.created
        if len(set(created)) != len(created):
            problems.append(f"duplicate task ids handed out: {[t for t, n in Counter(created).items() if n > 1]}")
        listed, page = [], 1
        while True:
            data = self.server.post(f"{TASKS}/query", json={"created_by": self.created_by, "page": page,
                                                             "page_size": 100, "sort_by": "task_id",
                                                             "sort_order": "asc"}).json()["data"]
            listed += [task["task_id"] for task in data["tasks"]]
            if not data["pagination"]["has_next"]:
                total = data["pagination"]["total"]
                break
            page += 1
        if len(set(listed)) != len(listed):
            problems.append(f"tasks listed twice: {[t for t, n in Counter(listed).items() if n > 1]}")
        if set(listed) != set(created) or total != len(created):
            problems.append(f"created {len(created)} tasks, listed {len(listed)} (total {total}); "
                            f"lost {sorted(set(created) - set(listed))[:10]}, unknown {sorted(set(listed) - set(created))[:10]}")
        outcomes = {}
        for task_id in self.runners:
            history = self.server.get(f"{TASKS}/{task_id}/executions").json()["data"]["executions"]
            outcomes.update({e["execution_id"]: e for e in history})
        for execution_id in self.report.executions:
            execution = outcomes.get(execution_id)
            if execution is None or execution["status"] != "completed":
                problems.append(f"execution {execution_id} did not complete: {execution}")
        return problems
