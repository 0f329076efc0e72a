"""What the command line prints: task summaries, a live progress display, tables, log entries.

Results go to stdout; the progress display goes to stderr — redrawn in place on a terminal, one
line per change otherwise (CI logs, pipes), so `$(python -m data_pipeline ...)` captures only
results.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import IO, Iterable, Sequence

from data_pipeline.client.types import LogEntry, TaskDetail
from data_pipeline.tasks.statuses import STEP_NAMES, StepStatus, TaskStatus

BAR_WIDTH = 24
STEP_SHORT = {"ddl_generation": "DDL", "qa_generation": "QA", "sql_validation": "SQL", "training_load": "LOAD"}
STEP_MARK = {StepStatus.COMPLETED: "✔", StepStatus.SKIPPED: "–", StepStatus.FAILED: "✘", StepStatus.CANCELLED: "■",
             StepStatus.RUNNING: "▶", StepStatus.PENDING: "·"}
STATUS_TEXT = {TaskStatus.PENDING: "待执行", TaskStatus.QUEUED: "排队中", TaskStatus.IN_PROGRESS: "执行中",
               TaskStatus.PARTIAL_COMPLETED: "部分完成", TaskStatus.COMPLETED: "已完成", TaskStatus.FAILED: "失败", TaskStatus.CANCELLED: "已取消"}


def note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def print_json(value, out: IO[str]) -> None:
    out.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def step_duration(step: dict) -> str:
    started, completed = _parse(step.get("started_at")), _parse(step.get("completed_at"))
    if not started:
        return ""
    end = completed or dt.datetime.now()
    return format_duration(max(0.0, (end - started).total_seconds()))


def progress_text(progress: dict | None) -> str:
    if not progress or not progress.get("total"):
        return ""
    return f"{progress.get('done', 0)}/{progress['total']} {progress.get('unit', '')}".rstrip()


def steps_in_execution(task: TaskDetail) -> list[str]:
    execution = task.get("execution") or {}
    if execution.get("execution_mode") == "step" and execution.get("step_name"):
        return [execution["step_name"]]
    return list(STEP_NAMES)


def overall_fraction(task: TaskDetail) -> float:
    """How much of the current execution is done: finished steps count whole, the running one by
    its progress."""
    names = steps_in_execution(task)
    steps = {s["step_name"]: s for s in task.get("steps") or []}
    done = 0.0
    for name in names:
        step = steps.get(name, {})
        status = step.get("step_status", task.get("step_status", {}).get(name))
        if status in (StepStatus.COMPLETED, StepStatus.SKIPPED):
            done += 1
        elif status == StepStatus.RUNNING:
            progress = step.get("progress") or {}
            if progress.get("total"):
                done += min(1.0, progress.get("done", 0) / progress["total"])
    if task.get("status") == TaskStatus.COMPLETED:
        return 1.0
    return done / len(names) if names else 0.0


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "░" * (width - filled)


def status_line(task: TaskDetail) -> str:
    """One line: overall bar, each step's mark, the running step's progress."""
    fraction = overall_fraction(task)
    marks = " ".join(f"{STEP_MARK.get(task.get('step_status', {}).get(name, StepStatus.PENDING), '·')}{STEP_SHORT[name]}"
                     for name in STEP_NAMES)
    current = task.get("current_step") or {}
    detail = ""
    if current.get("status") == StepStatus.RUNNING:
        detail = f"  {current.get('step')} {progress_text(current.get('progress'))}".rstrip()
    return f"[{bar(fraction)}] {fraction * 100:3.0f}%  {marks}  {task.get('status')}{detail}"


class ProgressDisplay:
    """Shows a task's progress while waiting: `update(task)` with every status read."""

    def __init__(self, stream: IO[str] | None = None, interactive: bool | None = None):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._last_key: tuple | None = None
        self._last_width = 0
        self._started = time.monotonic()

    def update(self, task: TaskDetail) -> None:
        line = status_line(task)
        if self.interactive:
            elapsed = format_duration(time.monotonic() - self._started)
            text = f"{line}  {elapsed}"
            padding = max(0, self._last_width - len(text))
            self.stream.write("\r" + text + " " * padding)
            self._last_width = len(text)
            self.stream.flush()
            return
        # Non-interactive: a line when a status changes or the running step passes a tenth.
        current = task.get("current_step") or {}
        progress = current.get("progress") or {}
        tenth = int(10 * progress.get("done", 0) / progress["total"]) if progress.get("total") else 0
        key = (task.get("status"), tuple(sorted((task.get("step_status") or {}).items())), current.get("step"), tenth)
        if key != self._last_key:
            self._last_key = key
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.interactive and self._last_width:
            self.stream.write("\n")
            self.stream.flush()


def print_task(task: TaskDetail, out: IO[str]) -> None:
    name = f"  ({task['task_name']})" if task.get("task_name") else ""
    status = task.get("status", "")
    out.write(f"任务 {task.get('task_id')}{name}\n")
    out.write(f"  status: {status} ({STATUS_TEXT.get(status, status)})   db_name: {task.get('db_name') or '-'}"
              f"   created_at: {task.get('created_at') or '-'}\n")
    if task.get("queue_position"):
        out.write(f"  queue_position: {task['queue_position']}\n")
    steps = {s["step_name"]: s for s in task.get("steps") or []}
    for step_name in STEP_NAMES:
        step = steps.get(step_name, {})
        step_status = step.get("step_status") or task.get("step_status", {}).get(step_name, StepStatus.PENDING)
        when = step.get("started_at") or ""
        extra = progress_text(step.get("progress")) if step_status == StepStatus.RUNNING else ""
        out.write(f"  {STEP_MARK.get(step_status, '·')} {step_name:<16} {step_status:<10} "
                  f"{when[11:19] if when else '':<8} {step_duration(step):>7}  {extra}".rstrip() + "\n")
        if step.get("error_message"):
            out.write(f"      错误: {step['error_message']}\n")
    if task.get("error_message") and status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        out.write(f"  error_message: {task['error_message']}\n")
    if task.get("error_code"):
        out.write(f"  error_code: {task['error_code']}\n")


def print_table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: IO[str]) -> None:
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h) for i, h in enumerate(headers)]
    for cells in [headers, *rows]:
        out.write("  ".join(_pad(str(c), w) for c, w in zip(cells, widths)).rstrip() + "\n")


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(text))


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def format_log_entry(entry: LogEntry) -> str:
    step = f" [{entry['step']}]" if entry.get("step") else ""
    return f"{entry.get('timestamp', '')} {entry.get('level', ''):<7} {entry.get('logger', '')}{step}: " \
           f"{entry.get('message', '')}"


def print_logs(entries: Iterable[LogEntry], out: IO[str]) -> None:
    for entry in entries:
        out.write(format_log_entry(entry) + "\n")
    out.flush()
