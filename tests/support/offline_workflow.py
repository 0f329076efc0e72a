"""The four steps of a task, run in this process one after another on real databases, offline.

Each step is the real implementation the executor runs (`data_pipeline.steps.get_step`), given
the context the workflow runner would give it: no LLM (the offline generator), hash embeddings,
the vector store on the embedded server. Only the task-store bookkeeping of the runner is left
out, which other tests cover; what is measured here is the work on the schema.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from data_pipeline.schema.names import TableName
from data_pipeline.steps import StepContext, get_step
from data_pipeline.tasks.statuses import STEP_NAMES


@dataclass
class WorkflowRun:
    task_dir: Path
    results: dict[str, dict]
    seconds: dict[str, float]

    def files(self, pattern: str) -> list[Path]:
        return sorted(self.task_dir.glob(pattern))


def run_offline_workflow(task_dir: Path, db_url: str, store_url: str, tables: list[TableName], *,
                         db_name: str, business_context: str = "", task_id: str = "task_20250101_000000"
                         ) -> WorkflowRun:
    """All four steps in order; a failing step raises (StepFailed names it)."""
    task_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings()   # no LLM, hash embeddings
    ctx = StepContext(task_id=task_id, task_dir=task_dir, settings=settings, db_url=db_url, db_name=db_name,
                      business_context=business_context, tables=list(tables), params={}, llm=None,
                      store_url=store_url)
    results, seconds = {}, {}
    for step_name in STEP_NAMES:
        started = time.monotonic()
        results[step_name] = get_step(step_name)(ctx)
        seconds[step_name] = round(time.monotonic() - started, 2)
        (task_dir / f"{step_name}_result.json").write_text(
            json.dumps(results[step_name], ensure_ascii=False, default=str), encoding="utf-8")
    return WorkflowRun(task_dir, results, seconds)
