"""Test-only steps, loaded into executors through DATA_PIPELINE_STEP_MODULES.

Each step looks for `test_control.json` in the task directory. Without an entry for the step it
runs the real step; with one it does what the entry says, so lifecycle tests can make a step slow,
fail or crash without depending on what the real steps do:

    {"ddl_generation": {"sleep": 30, "write": ["{stem}.ddl"]}, "qa_generation": {"fail": "boom"},
     "sql_validation": {"crash": 3}, "training_load": {"raise": "unexpected"}}

`{"hold": "release"}` holds the step (after any sleep) until a file of that name appears in the
task directory (or at that absolute path), so a test decides when it ends instead of guessing a
duration (a hold nobody releases ends by itself after two minutes: no executor outlives a failed
test for long).
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import time

from data_pipeline.errors import StepFailed
from data_pipeline.tasks.statuses import STEP_NAMES
from data_pipeline.steps import register_step

CONTROL_FILE = "test_control.json"


def quick_steps(pair_file: str = "qs_test_20250101_000000_pair.json") -> dict:
    """Controls under which every step takes no time and writes the files the real step would
    (so the next step's inputs exist)."""
    return {"ddl_generation": {"write": ["{stem}.ddl", "{stem}_detail.md"]},
            "qa_generation": {"write": [pair_file]},
            "sql_validation": {}, "training_load": {}}
logger = logging.getLogger("ControlledStep")


def _controlled(step_name: str):
    def run(ctx) -> dict:
        control_file = ctx.task_dir / CONTROL_FILE
        control = json.loads(control_file.read_text()) if control_file.is_file() else {}
        spec = control.get(step_name)
        if spec is None:
            return importlib.import_module(f"data_pipeline.steps.{step_name}").run(ctx)
        logger.info("测试步骤 %s 开始: %s", step_name, spec)
        total = int(spec.get("sleep", 0) * 10)
        for tick in range(total):
            time.sleep(0.1)
            ctx.report_progress(tick + 1, total, "ticks")
        if "hold" in spec:
            release, deadline = ctx.task_dir / spec["hold"], time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        if "crash" in spec:
            os._exit(int(spec["crash"]))
        if "fail" in spec:
            raise StepFailed(spec["fail"])
        if "raise" in spec:
            raise RuntimeError(spec["raise"])
        for pattern in spec.get("write", []):
            for name in {pattern.format(stem=table.file_stem) for table in ctx.tables}:
                (ctx.task_dir / name).write_text(f"written by {step_name}\n", encoding="utf-8")
        logger.info("测试步骤 %s 完成", step_name)
        return {"test_step": step_name, "tables": [t.full_name for t in ctx.tables]}
    return run


for _name in STEP_NAMES:
    register_step(_name, _controlled(_name))
