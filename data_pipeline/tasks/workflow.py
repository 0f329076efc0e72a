"""The workflow runner: walks the steps of one execution, recording each step's status and result.

Complete mode runs the four steps in order (a step disabled by the task's flags is `skipped`);
step mode runs one. A failing step ends the execution: that step `failed`, the task `failed`,
later steps left `pending`. The runner knows steps only by name (see data_pipeline.steps).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from config import Settings
from data_pipeline.logs import task_log
from data_pipeline.db.databases import default_business_url, store_url
from data_pipeline.db.connection import database_name, scrub
from data_pipeline.db.credentials import CredentialCipher
from data_pipeline.db.policy import ConnectionPolicy
from data_pipeline.errors import PipelineError, disk_full_details, is_disk_full
from data_pipeline.llm.client import LLMClient
from data_pipeline.tasks.failures import failure_code
from data_pipeline.tasks.statuses import STEP_ENABLE_FLAGS, STEP_NAMES, ExecutionStatus, StepStatus
from data_pipeline.steps import StepContext, get_step
from data_pipeline.store import Execution, Task, TaskStore
from data_pipeline.tasks.directory import (TASK_CONFIG_FILE, TASK_RESULT_FILE, backup_step_outputs, read_table_list,
                                    write_json_atomic)
from data_pipeline.tasks.serializers import public_parameters
from data_pipeline.timeutil import iso

logger = logging.getLogger("WorkflowOrchestrator")

PROGRESS_INTERVAL_SECONDS = 0.5
SUMMARY_LIST_LIMIT = 20
STEP_LOGGERS = {"ddl_generation": "DDLGenerator", "qa_generation": "QAGenerator",
                "sql_validation": "SQLValidator", "training_load": "TrainingDataLoader"}


def _failure_message(exc: BaseException, db_url: str | None) -> str:
    """Why a step (or the run) failed, as the task status shows it: scrubbed of the password."""
    if isinstance(exc, PipelineError):
        message = exc.details
    elif is_disk_full(exc):
        message = disk_full_details(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return scrub(message, db_url)


class ExecutionCancelled(BaseException):
    """Raised in the executor's main thread when it is asked to stop (SIGTERM)."""


def summarize(result: dict) -> dict:
    """The part of a step result kept in the task status: long lists shortened."""
    summary = {}
    for key, value in result.items():
        if isinstance(value, list) and len(value) > SUMMARY_LIST_LIMIT:
            summary[key] = value[:SUMMARY_LIST_LIMIT]
            summary[f"{key}_truncated"] = len(value)
        else:
            summary[key] = value
    return summary


class ProgressReporter:
    """ctx.report_progress: writes {done, total, unit} to the store at most twice a second."""

    def __init__(self, store: TaskStore, task_id: str, step_name: str):
        self.store, self.task_id, self.step_name = store, task_id, step_name
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int, unit: str) -> None:
        now = time.monotonic()
        with self._lock:
            if done < total and now - self._last < PROGRESS_INTERVAL_SECONDS:
                return
            self._last = now
        try:
            self.store.set_step_progress(self.task_id, self.step_name,
                                         {"done": int(done), "total": int(total), "unit": unit})
        except PipelineError as exc:  # progress is advisory; the step goes on
            logger.warning("进度更新失败: %s", exc.details)


class WorkflowRunner:
    def __init__(self, store: TaskStore, settings: Settings, task: Task, execution: Execution, task_dir: Path):
        self.store = store
        self.settings = settings
        self.task = task
        self.execution = execution
        self.task_dir = task_dir
        self.options = execution.options or {}
        self.parameters = task.parameters
        self.step_results: dict[str, dict] = {}
        self.error_message: str | None = None
        self.error_code: str | None = None

    @property
    def execution_id(self) -> str:
        return self.execution.execution_id

    def steps_to_run(self) -> list[str]:
        if self.execution.execution_mode == "step":
            return [self.execution.step_name]
        return list(STEP_NAMES)

    def run(self) -> ExecutionStatus:
        task_id = self.task.task_id
        mode = self.execution.execution_mode
        logger.info("开始执行任务 %s (模式: %s%s, 执行ID: %s)", task_id, mode,
                    f", 步骤: {self.execution.step_name}" if mode == "step" else "", self.execution_id)
        started = time.monotonic()
        try:
            try:
                self._write_task_config()
                context = self._context()
            except (PipelineError, OSError) as exc:  # before any step ran: no database, no table list, no space
                reason = _failure_message(exc, None)
                logger.error("任务无法开始: %s", reason)
                self.error_message = reason
                self.error_code = failure_code(exc)
                return self._finish(ExecutionStatus.FAILED, started)
            for step_name in self.steps_to_run():
                if not self._run_step(step_name, context):
                    return self._finish(ExecutionStatus.FAILED, started)
        except ExecutionCancelled:
            task_log.set_current_step(None)
            logger.warning("任务执行被取消 (执行ID: %s)", self.execution_id)
            self.store.finish_execution(self.execution_id, ExecutionStatus.CANCELLED, error_message="任务已被取消")
            self._write_task_result(ExecutionStatus.CANCELLED, started, "任务已被取消")
            return ExecutionStatus.CANCELLED
        return self._finish(ExecutionStatus.COMPLETED, started)

    def _finish(self, status: ExecutionStatus, started: float) -> ExecutionStatus:
        # The result file first: a client that sees the run has ended finds the file saying how.
        self._write_task_result(status, started, self.error_message)
        if not self.store.finish_execution(self.execution_id, status, error_message=self.error_message,
                                           error_code=self.error_code):
            # Someone ended the execution first (a cancel in the last moment): the file follows the store.
            ended = self.store.get_execution(self.execution_id)
            if ended is not None:
                status = ended.status
            self._write_task_result(status, started, ended and ended.error_message)
        logger.info("任务执行结束: %s，总耗时 %.2fs", status, time.monotonic() - started)
        return status

    def _context(self) -> StepContext:
        tables = read_table_list(self.task_dir)
        if not tables:
            raise PipelineError("任务没有表清单 (table_list.txt)", error_code="TABLE_LIST_MISSING")
        db_url = self._business_url()
        truncate = bool(self.options.get("truncate_vector_tables"))
        return StepContext(
            task_id=self.task.task_id, task_dir=self.task_dir, settings=self.settings, db_url=db_url,
            db_name=self.task.db_name or database_name(db_url),
            business_context=self.task.business_context or "", tables=tables,
            # an execute request's validate_by_execution overrides the task's
            params={**self.parameters, **_overrides(self.options)}, llm=LLMClient.from_settings(self.settings),
            store_url=store_url(self.settings),
            backup_vector_tables=truncate or bool(self.options.get("backup_vector_tables")),
            truncate_vector_tables=truncate)

    def _business_url(self) -> str:
        """The task's database (decrypted, checked against the connection policy now, as settings may
        have changed since it was created), or the default business database."""
        if not self.task.db_connection:
            return default_business_url(self.settings)
        url = CredentialCipher.from_settings(self.settings).open(self.task.db_connection, self.task.task_id)
        return ConnectionPolicy(self.settings).admit(url)

    def _enabled(self, step_name: str) -> bool:
        flag = STEP_ENABLE_FLAGS.get(step_name)
        return flag is None or self.parameters.get(flag, True) is not False

    def _run_step(self, step_name: str, context: StepContext) -> bool:
        task_id = self.task.task_id
        if self.execution.execution_mode == "complete" and not self._enabled(step_name):
            logger.info("步骤 %s 已跳过 (%s=false)", step_name, STEP_ENABLE_FLAGS[step_name])
            self.store.finish_step(task_id, step_name, StepStatus.SKIPPED, execution_id=self.execution_id)
            return True
        if not self.store.start_step(task_id, step_name, self.execution_id):
            raise ExecutionCancelled()
        task_log.set_current_step(step_name)
        logger.info("▶ 开始步骤 %s", step_name)
        context.logger = logging.getLogger(STEP_LOGGERS[step_name])
        context.report_progress = ProgressReporter(self.store, task_id, step_name)
        started = time.monotonic()
        try:
            moved = backup_step_outputs(step_name, self.task_dir)
            if moved:
                logger.info("步骤 %s 的旧输出已移至 %s/", step_name, moved.name)
            result = get_step(step_name)(context) or {}
            duration = time.monotonic() - started
            result.setdefault("duration", round(duration, 3))
            write_json_atomic(self.task_dir / f"{step_name}_result.json", result)
        except ExecutionCancelled:
            raise
        except Exception as exc:
            duration = time.monotonic() - started
            message = _failure_message(exc, context.db_url)
            logger.error("■ 步骤 %s 失败，耗时 %.2fs: %s", step_name, duration, message,
                         exc_info=not isinstance(exc, PipelineError) and not is_disk_full(exc))
            self.error_message = f"步骤 {step_name} 失败: {message}"
            self.error_code = failure_code(exc)
            self.store.finish_step(task_id, step_name, StepStatus.FAILED, execution_id=self.execution_id,
                                   error_message=message, result={"duration": round(duration, 3)})
            task_log.set_current_step(None)
            return False
        self.step_results[step_name] = result
        self.store.finish_step(task_id, step_name, StepStatus.COMPLETED, execution_id=self.execution_id,
                               result=summarize(result))
        logger.info("■ 步骤 %s 完成，耗时 %.2fs", step_name, duration)
        task_log.set_current_step(None)
        return True

    def _write_task_config(self) -> None:
        write_json_atomic(self.task_dir / TASK_CONFIG_FILE, {
            "task_id": self.task.task_id,
            "task_name": self.task.task_name,
            "created_at": iso(self.task.created_at),
            "execution_id": self.execution_id,
            "execution_mode": self.execution.execution_mode,
            "step_name": self.execution.step_name,
            "parameters": {**public_parameters(self.task), **self.options,
                           "table_list_file": "{task_directory}/table_list.txt"},
            "output_directory": str(self.task_dir),
        })

    def _write_task_result(self, status: ExecutionStatus, started: float, error: str | None) -> None:
        task_id = self.task.task_id
        task = self.store.get_task(task_id)
        try:
            write_json_atomic(self.task_dir / TASK_RESULT_FILE, {
                "task_id": task_id,
                "execution_id": self.execution_id,
                "execution_mode": self.execution.execution_mode,
                "step_name": self.execution.step_name,
                "status": status,
                "task_status": self.store.task_status_after(task_id, status),
                "error_message": error,
                "duration": round(time.monotonic() - started, 3),
                "steps": {step.step_name: step.status for step in task.steps} if task else {},
                "results": self.step_results,
            })
        except OSError as exc:  # the outcome is in the store already; the file is a copy for users
            logger.warning("无法写入 %s: %s", TASK_RESULT_FILE, _failure_message(exc, None))


def _overrides(options: dict) -> dict:
    return {name: options[name] for name in ("validate_by_execution",) if name in options}
