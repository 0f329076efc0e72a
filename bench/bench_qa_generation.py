"""qa_generation wall time with an LLM that answers every call in 500 ms, against the ideal
(LLM calls x 500 ms / LLM_CONCURRENCY).

    python bench/bench_qa_generation.py [--themes 5 12] [--concurrency 4] [--delay 0.5]

The LLM is the tests' fake OpenAI-compatible HTTP server (real sockets, the real `openai`
client). The table documents are the demo tables' DDL/MD as step 1 writes them, made from a
scratch copy of the demo database on the local PostgreSQL (dropped at the end). The theme list
must exist before any theme's pairs can be asked for, so one round of calls always precedes the
rest: the script also prints that critical-path bound. One untimed warm-up run comes first, so
the `openai` package's lazy imports on its first request (a one-off of each process, ~0.1 s) are
not counted against concurrency.

Then the same step with a rambling model (`--ms-per-token`, default 1 ms per generated token),
twice in the same run: with the output budgets (every call carries `max_tokens`, a cut-off answer
is malformed, the step falls back to the offline generator) and without them (the server ignores
`max_tokens`, as it did when no call set it: every answer runs 20,000 tokens). Both print wall
time, calls and generated tokens.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from config import Settings  # noqa: E402
from data_pipeline.db import demo_db  # noqa: E402
from data_pipeline.llm.client import LLMClient  # noqa: E402
from data_pipeline.steps import ddl_generation, qa_generation  # noqa: E402
from data_pipeline.steps.context import StepContext  # noqa: E402
from tests.conftest import DatabaseFactory  # noqa: E402
from tests.support.fake_llm import FakeLLMServer, Reply, rambling  # noqa: E402


def responder(theme_count: int, delay: float):
    tables = list(demo_db.DEMO_TABLES)

    def answer(request) -> Reply:
        prompt = request["messages"][-1]["content"]
        topic = re.search(r"分析主题：(.+)\n", prompt)
        if topic:
            pairs = [{"question": f"{topic.group(1)}的第{i + 1}个问题：2023年{i + 1}月的记录数是多少？",
                      "sql": f"SELECT COUNT(*) FROM bss_car_day_count WHERE count_date >= DATE '2023-{i % 12 + 1:02d}-01';"}
                     for i in range(10)]
            return Reply(content=json.dumps(pairs, ensure_ascii=False), delay=delay)
        if "归纳出" in prompt:
            themes = [{"topic_name": f"主题{i + 1}", "description": "基准测试主题",
                       "related_tables": [tables[i % len(tables)], tables[(i + 1) % len(tables)]],
                       "biz_entities": ["服务区"], "biz_metrics": ["车流量"]} for i in range(theme_count)]
            return Reply(content=json.dumps({"themes": themes}, ensure_ascii=False), delay=delay)
        scope = {"summary": "当前数据库存储的是高速公路服务区的相关数据：", "entities": [], "metrics": []}
        return Reply(content=json.dumps(scope, ensure_ascii=False), delay=delay)

    return answer


def run_once(docs_dir: Path, theme_count: int, concurrency: int, delay: float) -> tuple[float, int, dict]:
    with tempfile.TemporaryDirectory() as task_dir, FakeLLMServer(responder(theme_count, delay)) as server:
        for path in docs_dir.iterdir():
            (Path(task_dir) / path.name).write_bytes(path.read_bytes())
        settings = Settings().with_overrides(llm_base_url=server.base_url, llm_model="fake",
                                             llm_concurrency=concurrency, qa_theme_count=theme_count,
                                             qa_pairs_per_theme=10)
        ctx = StepContext(task_id="bench", task_dir=Path(task_dir), settings=settings,
                          db_url="postgresql://unused@127.0.0.1:1/unused", db_name="highway_db",
                          business_context="高速公路服务区管理系统", tables=list(demo_db.DEMO_TABLES), params={},
                          llm=LLMClient.from_settings(settings))
        started = time.perf_counter()
        result = qa_generation.run(ctx)
        wall = time.perf_counter() - started
        return wall, len(server.chat_requests()), result


def run_rambling(docs_dir: Path, db_url: str, *, budgets: bool, seconds_per_token: float,
                 concurrency: int) -> tuple[float, dict, dict]:
    ramble = rambling("bench", seconds_per_token)
    answer = ramble if budgets else (lambda request: ramble({**request, "max_tokens": None}))
    with tempfile.TemporaryDirectory() as task_dir, FakeLLMServer(answer) as server:
        for path in docs_dir.iterdir():
            (Path(task_dir) / path.name).write_bytes(path.read_bytes())
        settings = Settings().with_overrides(llm_base_url=server.base_url, llm_model="fake", llm_max_retries=0,
                                             llm_concurrency=concurrency, qa_theme_count=5, qa_pairs_per_theme=10)
        llm = LLMClient.from_settings(settings)
        ctx = StepContext(task_id="bench", task_dir=Path(task_dir), settings=settings, db_url=db_url,
                          db_name="highway_db", business_context="高速公路服务区管理系统",
                          tables=list(demo_db.DEMO_TABLES), params={}, llm=llm)
        started = time.perf_counter()
        result = qa_generation.run(ctx)
        return time.perf_counter() - started, result, llm.usage_summary()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--themes", type=int, nargs="+", default=[5, 12])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--ms-per-token", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)   # the fallback warnings of the rambling runs are expected

    databases = DatabaseFactory(args.admin_url, "bench_qa")
    db_url = databases()
    try:
        with psycopg.connect(db_url) as conn:
            demo_db.populate(conn)
        with tempfile.TemporaryDirectory() as docs_dir:
            ddl_generation.run(StepContext(task_id="bench", task_dir=Path(docs_dir), settings=Settings(),
                                           db_url=db_url, db_name="highway_db", business_context="",
                                           tables=list(demo_db.DEMO_TABLES), params={}))
            for path in Path(docs_dir).glob("filename_mapping.txt"):
                path.unlink()
            run_once(Path(docs_dir), 1, args.concurrency, 0.0)
            print(f"LLM answers in {args.delay * 1000:.0f} ms, LLM_CONCURRENCY={args.concurrency}, 10 pairs per theme")
            for theme_count in args.themes:
                wall, calls, result = run_once(Path(docs_dir), theme_count, args.concurrency, args.delay)
                ideal = calls * args.delay / args.concurrency
                # Round 1: themes and scope together; then the theme calls, `concurrency` at a time.
                critical = args.delay * (1 + math.ceil(theme_count / args.concurrency))
                print(f"themes={theme_count:3d}: {calls} LLM calls, {result['total_questions']} pairs, "
                      f"wall {wall:.2f} s; ideal {ideal:.2f} s -> ratio {wall / ideal:.2f} "
                      f"({'within' if wall <= 1.3 * ideal else 'over'} 1.3x); "
                      f"critical-path bound {critical:.2f} s -> ratio {wall / critical:.2f}")
            print(f"A rambling model ({args.ms_per_token:g} ms per token), 5 themes, LLM_CONCURRENCY={args.concurrency}:")
            walls = {}
            for budgets in (True, False):
                wall, result, usage = run_rambling(Path(docs_dir), db_url, budgets=budgets,
                                                   seconds_per_token=args.ms_per_token / 1000,
                                                   concurrency=args.concurrency)
                walls[budgets] = wall
                print(f"  {'with budgets   ' if budgets else 'without budgets'}: wall {wall:6.2f} s, "
                      f"{usage['calls']} calls, {usage['completion_tokens']} tokens generated, "
                      f"{result['total_questions']} pairs ({result['generator']}, "
                      f"llm_fallbacks={result['llm_fallbacks']})")
            print(f"  budgets cut the wall time {walls[False] / walls[True]:.1f}x")
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
