"""Executor processes seen from the API: starting them, knowing whether they live, stopping them.

An executor runs `python -m data_pipeline.task_executor ...` in its own process session with its
output in the task directory. The process that started it (the API, or a Celery worker) reaps it
the moment it exits and settles its execution if the executor could not (crash, kill -9). Any
other process — a restarted API — recognises a dead executor by its pid (and a worker's run, or
a run on another host, by a stale heartbeat), so no task stays in_progress forever.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

from config import PROJECT_ROOT, Settings
from data_pipeline.store.records import Execution
from data_pipeline.tasks.directory import EXECUTOR_OUTPUT_FILE

EXECUTOR_MODULE = "data_pipeline.task_executor"
HOSTNAME = socket.gethostname()
START_GRACE_SECONDS = 60.0

logger = logging.getLogger("ExecutorManager")

_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


def executor_command(execution: Execution, *, exit_with_parent: bool = False) -> list[str]:
    """The command line that runs `execution` (its mode, step and vector-table options)."""
    options = execution.options or {}
    command = [sys.executable, "-m", EXECUTOR_MODULE, "--task-id", execution.task_id,
               "--execution-mode", execution.execution_mode]
    if exit_with_parent:
        command.append("--exit-with-parent")
    if execution.step_name:
        command += ["--step-name", execution.step_name]
    if options.get("backup_vector_tables"):
        command.append("--backup-vector-tables")
    if options.get("truncate_vector_tables"):
        command.append("--truncate-vector-tables")
    return command


def start_process(settings: Settings, directory: Path, command: list[str]) -> subprocess.Popen:
    """Start an executor in its own session, its output in the task directory."""
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    with open(directory / EXECUTOR_OUTPUT_FILE, "ab") as output:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def spawn_executor(settings: Settings, directory: Path, command: list[str],
                   on_exit: Callable[[int], None]) -> int:
    """Start an executor; `on_exit(returncode)` runs (in a thread of this process) when it ends."""
    process = start_process(settings, directory, command)
    with _children_lock:
        _children[process.pid] = process

    def reap() -> None:
        returncode = process.wait()
        try:
            on_exit(returncode)
        except Exception:  # the reaper must never die silently with the status unsettled
            logger.exception("settling executor %s after exit failed", process.pid)
        finally:
            with _children_lock:
                _children.pop(process.pid, None)

    threading.Thread(target=reap, name=f"reap-{process.pid}", daemon=True).start()
    return process.pid


class ExecutorEnd(NamedTuple):
    """How an executor that could not record its outcome ended: the task's error message and code,
    and the process's exit code when it is known."""
    reason: str
    code: str
    exit_code: int | None = None


def describe_exit(returncode: int | None) -> ExecutorEnd:
    if returncode is None:
        return ExecutorEnd("执行器进程意外退出 (executor exited unexpectedly)", "EXECUTOR_LOST")
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return ExecutorEnd(f"执行器进程意外退出 (executor exited unexpectedly, signal {name})", "EXECUTOR_KILLED",
                           returncode)
    return ExecutorEnd(f"执行器进程意外退出 (executor exited unexpectedly, exit code {returncode})",
                       "EXECUTOR_CRASHED", returncode)


def _is_executor_process(pid: int, task_id: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
        if state in (b"Z", b"X"):
            return False
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
        return False
    return EXECUTOR_MODULE.encode() in argv and task_id.encode() in argv


def executor_gone(execution: Execution, heartbeat_timeout: float) -> ExecutorEnd | None:
    """Why a running execution's executor is known to be gone, or None while it may live."""
    pid = execution.pid
    now = dt.datetime.now(dt.timezone.utc)
    if execution.worker:
        # A worker's run, here or on another machine: alive while its heartbeat is fresh.
        beat = execution.heartbeat_at or execution.started_at
        age = (now - beat).total_seconds() if beat else 0.0
        if age > heartbeat_timeout:
            return ExecutorEnd(f"worker {execution.worker} lost (no heartbeat for {age:.0f} s)", "WORKER_LOST")
        return None
    if pid is None:
        started = execution.started_at or execution.created_at
        if started and (now - started).total_seconds() > START_GRACE_SECONDS:
            return ExecutorEnd("执行器未能启动 (executor never started)", "EXECUTOR_NOT_STARTED")
        return None
    if execution.hostname and execution.hostname != HOSTNAME:
        beat = execution.heartbeat_at
        if beat and (now - beat).total_seconds() > heartbeat_timeout:
            return ExecutorEnd("执行器心跳丢失 (executor heartbeat lost)", "HEARTBEAT_LOST")
        return None
    with _children_lock:
        child = _children.get(pid)
    if child is not None:
        returncode = child.poll()
        return describe_exit(returncode) if returncode is not None else None
    if _is_executor_process(pid, execution.task_id):
        return None
    return describe_exit(None)


def terminate_executor(pid: int, task_id: str, grace_seconds: float) -> None:
    """SIGTERM the executor's process group, then SIGKILL it if it is still there after the grace."""
    if not _is_executor_process(pid, task_id):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _is_executor_process(pid, task_id):
            break
        time.sleep(0.05)
    _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
