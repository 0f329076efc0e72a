"""Realistic task logs of any size, in the executor's format, for log tests and bench/bench_logs.py.

Times grow one second every few entries from a fixed start; each of the four steps logs under its
own prefix, the orchestrator and the task-directory logger without one; some ERROR entries carry
a traceback (continuation lines). `expected_entries` returns what a reader must parse back.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

START = datetime(2025, 7, 1, 8, 0, 0)
LOGGERS = [
    (None, "WorkflowOrchestrator"),
    (None, "TaskDir_task_20250701_080000"),
    ("ddl_generation", "DDLGenerator"),
    ("qa_generation", "QAGenerator"),
    ("sql_validation", "SQLValidator"),
    ("training_load", "TrainingLoader"),
]
# (message, weight): routine progress lines are common, failures rare, as in a real run.
MESSAGES = [
    ("开始处理表: bss_company", 20),
    ("表 bss_service_area 的DDL已写入 bss_service_area.ddl", 20),
    ("生成主题: 服务区营收分析，共10个问题", 10),
    ("SQL验证通过: SELECT count(*) FROM bss_car_day_count", 25),
    ("SQL验证失败，尝试LLM修复: column \"x\" does not exist", 2),
    ("加载训练数据 documentation 共 7 条", 10),
    ("Connection pool warmed up in 12 ms", 3),
    ("进度 35/50 questions validated", 10),
]
LEVELS = ["INFO"] * 14 + ["DEBUG"] * 3 + ["WARNING"] * 2 + ["ERROR"]
TRACEBACK = ("Traceback (most recent call last):\n"
             '  File "/app/data_pipeline/steps/sql_validation.py", line 88, in validate\n'
             "psycopg.errors.UndefinedColumn: column \"x\" does not exist")


def generate_entries(count: int, seed: int = 7, per_second: int = 4):
    """(timestamp, level, full logger name, message) tuples; messages may span lines."""
    rng = random.Random(seed)
    texts = [text for text, _ in MESSAGES]
    weights = [weight for _, weight in MESSAGES]
    for index in range(count):
        moment = START + timedelta(seconds=index // per_second)
        step, logger = LOGGERS[rng.randrange(len(LOGGERS))]
        level = LEVELS[rng.randrange(len(LEVELS))]
        text = rng.choices(texts, weights)[0]
        message = f"{text} #{index} (批次 {index // 500}, 耗时 {rng.randrange(1, 999)}ms, 线程 worker-{index % 4})"
        if level == "ERROR" and rng.random() < 0.5:
            message += "\n" + TRACEBACK
        name = f"{step}.{logger}" if step else logger
        yield moment.strftime("%Y-%m-%d %H:%M:%S"), level, name, message


def write_sample_log(path: Path, count: int, seed: int = 7, per_second: int = 4) -> Path:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        batch = []
        for timestamp, level, name, message in generate_entries(count, seed, per_second):
            batch.append(f"{timestamp} [{level}] {name}: {message}\n")
            if len(batch) >= 10_000:
                handle.write("".join(batch))
                batch.clear()
        handle.write("".join(batch))
    return path


def expected_entries(count: int, seed: int = 7, per_second: int = 4) -> list[dict]:
    """What a reader must return for the log `write_sample_log` writes, with line numbers."""
    entries, line = [], 1
    for timestamp, level, name, message in generate_entries(count, seed, per_second):
        head, _, rest = name.partition(".")
        step, logger = (head, rest) if rest else (None, name)
        entries.append({"timestamp": timestamp, "level": level, "logger": logger, "step": step,
                        "message": message, "line_number": line})
        line += message.count("\n") + 1
    return entries
