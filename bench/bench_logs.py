"""Task-log reading at scale: GET logs?limit=100 and logs/query on 10 MB and ~150 MB logs.

Prints, for each log size:
- tail latency (`read_last_entries(limit=100)`, the work behind GET .../logs): median and p95;
- logs/query with a keyword and a time range (the middle third of the log) next to `grep -c` of
  the same keyword on the same file, run alternately in this script, and their ratio;
- the peak memory growth of a fresh process running that query and an unfiltered scan (its peak
  RSS, VmHWM, reset through /proc/self/clear_refs just before);
- then the same GET and POST through HTTP on a real server (`python unified_api.py`, embedded
  PostgreSQL in a temporary directory), with the server process's peak RSS growth during the
  queries (measured the same way).

Logs are generated once into bench/out/ (git-ignored) and reused.

    python bench/bench_logs.py [--runs 7] [--no-http]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from data_pipeline.logs import LogQuery, query_log, read_last_entries  # noqa: E402
from tests.support.sample_logs import START, write_sample_log  # noqa: E402

OUT = PROJECT_ROOT / "bench" / "out"
SIZES = {"10MB": 65_000, "150MB": 1_000_000}  # entries; about 155 bytes each
PER_SECOND = 4
KEYWORDS = ("SQL验证失败", "Traceback")


def ensure_log(label: str, entries: int) -> Path:
    path = OUT / f"task_log_{label}.log"
    marker = path.with_suffix(".entries")
    if not (path.is_file() and marker.is_file() and marker.read_text() == str(entries)):
        OUT.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        write_sample_log(path, entries, per_second=PER_SECOND)
        marker.write_text(str(entries))
        print(f"  generated {path.name}: {entries:,} entries in {time.perf_counter() - began:.1f}s")
    return path


def middle_third(entries: int) -> tuple[str, str]:
    seconds = entries // PER_SECOND
    start = START + timedelta(seconds=seconds // 3)
    end = START + timedelta(seconds=2 * seconds // 3)
    return start.isoformat(), end.isoformat()


def timed(function, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def query_for(keyword: str, entries: int) -> LogQuery:
    from data_pipeline.timeutil import parse_time

    start, end = middle_third(entries)
    return LogQuery(keyword=keyword, start_time=parse_time(start), end_time=parse_time(end), page_size=50)


def bench_tail(path: Path) -> None:
    read_last_entries(path, 100)
    times = sorted(timed(lambda: read_last_entries(path, 100), 50))
    print(f"  GET logs?limit=100 (library): median {ms(statistics.median(times))}, "
          f"p95 {ms(times[int(len(times) * 0.95)])}")


def bench_query(path: Path, entries: int, keyword: str, runs: int) -> None:
    query = query_for(keyword, entries)
    grep = ["grep", "-c", keyword, str(path)]
    result = query_log(path, query)
    ours, theirs = [], []
    for _ in range(runs):  # alternate, so both see the same machine load
        ours += timed(lambda: query_log(path, query), 1)
        theirs += timed(lambda: subprocess.run(grep, capture_output=True, check=False), 1)
    grep_count = subprocess.run(grep, capture_output=True, text=True).stdout.strip()
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"  logs/query keyword={keyword!r} + middle-third time range: median {ms(statistics.median(ours))} "
          f"(min {ms(min(ours))}), total={result['pagination']['total']:,}; "
          f"grep -c (whole file, {grep_count} lines): median {ms(statistics.median(theirs))} "
          f"(min {ms(min(theirs))}); ratio {ratio:.2f}x")


def bench_memory(path: Path, entries: int, keyword: str) -> int:
    """Peak RSS growth (KiB) of a fresh process running the query."""
    probe = subprocess.run([sys.executable, __file__, "--memory-probe", str(path), str(entries), keyword],
                           capture_output=True, text=True, check=True)
    return json.loads(probe.stdout)["peak_growth_kib"]


def memory_probe(path: Path, entries: int, keyword: str) -> None:
    query = query_for(keyword, entries)
    warm_up = OUT / "warm_up.log"
    write_sample_log(warm_up, 2000, per_second=PER_SECOND)
    query_log(warm_up, query)  # every module of the code path loaded first
    before = reset_peak(os.getpid())
    query_log(path, query)
    query_log(path, LogQuery(page_size=1000))  # and an unfiltered scan of the whole file
    print(json.dumps({"peak_growth_kib": rss_kib(os.getpid(), "VmHWM") - before}))


def reset_peak(pid: int) -> int:
    """Reset the process's peak RSS (VmHWM) to its current RSS, which is returned (KiB)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return rss_kib(pid, "VmRSS")


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def bench_http(logs: dict[str, tuple[Path, int]], runs: int) -> None:
    from data_pipeline.db import embedded_pg
    from tests.support.api_server import ApiServer, own_directories_env

    root = Path(tempfile.mkdtemp(prefix="dp-bench-logs-", dir=OUT))
    server = ApiServer(own_directories_env(root, FLASK_LOG_LEVEL="WARNING"), root)
    try:
        server.start(timeout=180)
        pid = server.process.pid
        for label, (path, entries) in logs.items():
            task_id = server.create_task(task_name=f"bench {label}")
            task_log = server.training_data_dir / task_id / "data_pipeline.log"
            task_log.unlink()
            os.link(path, task_log)  # the same file, no copy
            tasks = f"/api/v0/data_pipeline/tasks/{task_id}"
            assert server.get(f"{tasks}/logs", params={"limit": 100}).json()["data"]["total"] == 100
            times = sorted(timed(lambda: server.get(f"{tasks}/logs", params={"limit": 100}), 50))
            print(f"{label} log over HTTP:")
            print(f"  GET logs?limit=100: median {ms(statistics.median(times))}, p95 {ms(times[int(len(times) * .95)])}")
            start, end = middle_third(entries)
            body = {"keyword": KEYWORDS[0], "start_time": start, "end_time": end}
            grep = ["grep", "-c", KEYWORDS[0], str(path)]
            for warm_up in (body, {"page_size": 1000}):  # the code paths loaded in the server first
                server.post(f"{tasks}/logs/query", json=warm_up)
            before = reset_peak(pid)
            ours, theirs = [], []
            for _ in range(runs):
                ours += timed(lambda: server.post(f"{tasks}/logs/query", json=body), 1)
                theirs += timed(lambda: subprocess.run(grep, capture_output=True, check=False), 1)
            server.post(f"{tasks}/logs/query", json={"page_size": 1000})  # and an unfiltered scan
            growth = rss_kib(pid, "VmHWM") - before
            print(f"  POST logs/query keyword + middle-third time range: median {ms(statistics.median(ours))} "
                  f"(min {ms(min(ours))}); grep -c median {ms(statistics.median(theirs))} (min {ms(min(theirs))}); ratio "
                  f"{statistics.median(ours) / statistics.median(theirs):.2f}x")
            print(f"  server peak RSS growth during the queries: {growth / 1024:.1f} MiB")
    finally:
        server.stop()
        embedded_pg.release()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-http", action="store_true", help="library figures only")
    parser.add_argument("--memory-probe", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(Path(args.memory_probe[0]), int(args.memory_probe[1]), args.memory_probe[2])
        return
    print(f"locale for grep: LC_ALL={os.environ.get('LC_ALL', '')!r} LANG={os.environ.get('LANG', '')!r}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    logs = {label: (ensure_log(label, entries), entries) for label, entries in SIZES.items()}
    for label, (path, entries) in logs.items():
        print(f"{label} log: {path.stat().st_size / 1e6:.0f} MB, {entries:,} entries")
        bench_tail(path)
        for keyword in KEYWORDS:
            bench_query(path, entries, keyword, args.runs)
        print(f"  peak memory growth during the query and a full scan: "
              f"{bench_memory(path, entries, KEYWORDS[0]) / 1024:.1f} MiB")
    if not args.no_http:
        bench_http(logs, args.runs)


if __name__ == "__main__":
    main()
