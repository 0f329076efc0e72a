"""Task operations behind the HTTP layer: create, read, list, execute, cancel, delete.

Reads settle abandoned executions first (an executor that is gone marks its step and task failed
with the reason), so a status read never shows a dead task as running.
"""
from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from pathlib import Path

from config import PROJECT_ROOT, Settings
from data_pipeline.logs import task_log
from data_pipeline.tasks import executor_processes
from data_pipeline.db.connection import database_name, mask_url
from data_pipeline.db.credentials import PREFIX, CredentialCipher
from data_pipeline.db.policy import ConnectionPolicy
from data_pipeline.db.embedded_pg import DEMO_DATABASE
from data_pipeline.errors import (BrokerUnavailable, ConflictError, InsufficientStorageError, PipelineError,
                                  TaskNotFoundError, ValidationError, disk_full_details, is_disk_full)
from data_pipeline.tasks.statuses import ACTIVE_TASK_STATUSES, STEP_NAMES, ExecutionStatus, TaskStatus
from data_pipeline.store import Execution, Task, TaskStore
from data_pipeline.tasks.table_list import (decode_table_list, parse_table_list_text, render_table_list,
                                           resolve_table_list_file)
from data_pipeline.tasks.directory import (TABLE_LIST_FILE, is_valid_task_id, missing_step_inputs, read_table_list,
                                    task_dir, write_text_atomic)
from data_pipeline.tasks.serializers import task_status_body, task_summary
from data_pipeline.timeutil import iso

logger = logging.getLogger("TaskService")

SETTLER_LOGGER = "ExecutorMonitor"
QUEUE_WATCH_SECONDS = 1.0


class TaskService:
    def __init__(self, settings: Settings, store: TaskStore):
        self.settings = settings
        self.store = store
        self.cipher = CredentialCipher.from_settings(settings)
        self.policy = ConnectionPolicy(settings)

    def seal_stored_connections(self) -> int:
        """At start: encrypt the db_connection of tasks stored before encryption (clear text)."""
        return self.store.seal_connections(self.cipher.seal, PREFIX)

    # ---- helpers ---------------------------------------------------------------------------

    @property
    def run_queue(self) -> str:
        """The queue this service's executions wait in: the workers', or this machine's local one,
        named by its training data directory (another API sharing the store with other task
        directories never starts runs it could not find)."""
        if self.settings.executor == "celery":
            return "celery"
        return f"local:{self.settings.training_data_dir.resolve()}"

    def directory(self, task_id: str) -> Path:
        return task_dir(self.settings.training_data_dir, task_id)

    def require_task(self, task_id: str) -> Task:
        """The task (settled if its executor is gone); TaskNotFoundError otherwise."""
        if not is_valid_task_id(task_id):
            raise TaskNotFoundError(task_id[:80])
        task = self.store.get_task(task_id)
        if task is None:
            raise TaskNotFoundError(task_id)
        if self._settle_if_abandoned(task):
            task = self.store.get_task(task_id)
        return task

    def _settle_if_abandoned(self, task: Task) -> bool:
        execution = task.execution
        if task.status is not TaskStatus.IN_PROGRESS or execution is None \
                or execution.status is not ExecutionStatus.RUNNING:
            return False
        end = executor_processes.executor_gone(execution, self.settings.heartbeat_timeout_seconds)
        return end is not None and self._settle(execution, end)

    def _settle(self, execution: Execution, end: executor_processes.ExecutorEnd) -> bool:
        task = self.store.get_task(execution.task_id)
        running_step = task.running_step_name(execution.execution_id) if task else None
        if not self.store.finish_execution(execution.execution_id, ExecutionStatus.FAILED, error_message=end.reason,
                                           error_code=end.code, exit_code=end.exit_code):
            return False
        logger.warning("任务 %s 的执行 %s 已结束: %s", execution.task_id, execution.execution_id, end.reason)
        self._note_in_task_log(execution.task_id, "ERROR", end.reason, running_step)
        return True

    def _note_in_task_log(self, task_id: str, level: str, message: str, step: str | None) -> None:
        """The store has the outcome already; a task log that cannot take the line (disk full) must
        not turn a status read or a cancel into an error."""
        try:
            task_log.append_entry(self.directory(task_id), level, SETTLER_LOGGER, message, step)
        except OSError as exc:
            logger.warning("任务 %s 的日志无法写入: %s", task_id, exc)

    def settle_orphans(self) -> int:
        """At start: settle every running execution whose executor is gone."""
        settled = 0
        for execution in self.store.running_executions():
            end = executor_processes.executor_gone(execution, self.settings.heartbeat_timeout_seconds)
            if end and self._settle(execution, end):
                settled += 1
        return settled

    def watch(self, interval: float = QUEUE_WATCH_SECONDS) -> threading.Thread:
        """In the serving API: every `interval` seconds settle runs whose executor is gone and start
        queued ones, so the queue moves on when runs end that this process did not start (a run
        started before a restart, a run of `python -m data_pipeline run`)."""
        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.settle_orphans()
                    self.start_queued_runs()
                except PipelineError as exc:
                    logger.warning("运行队列检查失败，稍后重试: %s", exc.details)
                except Exception:  # the watch must outlive any one failure, or the queue stops moving
                    logger.exception("运行队列检查出错，稍后重试")

        thread = threading.Thread(target=loop, name="run-queue-watch", daemon=True)
        thread.start()
        return thread

    # ---- operations ------------------------------------------------------------------------

    def create_task(self, *, table_list_file: str | None, business_context: str | None, db_name: str | None,
                    db_connection: str | None, task_name: str | None, created_by: str, **flags: bool) -> dict:
        table_list_text = None
        if table_list_file:
            path = resolve_table_list_file(table_list_file, PROJECT_ROOT, self.settings.training_data_dir)
            # A server file, not the caller's: a refusal quotes one offending name, never other lines.
            table_list_text = render_table_list(parse_table_list_text(
                decode_table_list(path.read_bytes(), param="table_list_file"), param="table_list_file",
                names_shown=1))
        if db_connection is not None:
            db_connection = self.policy.vet(db_connection)
        if not db_name:
            source = db_connection or self.settings.default_db_connection
            db_name = database_name(source) if source else DEMO_DATABASE
        if flags.get("truncate_vector_tables"):
            flags["backup_vector_tables"] = True
        parameters = {"table_list_file": table_list_file, "business_context": business_context,
                      "db_name": db_name, "db_connection": mask_url(db_connection), "task_name": task_name,
                      **flags}
        task = self.store.create_task(
            task_id_base=dt.datetime.now().strftime("task_%Y%m%d_%H%M%S"), task_name=task_name,
            created_by=created_by, db_name=db_name, business_context=business_context,
            db_connection=self.cipher.seal(db_connection), parameters=parameters)
        directory = self.directory(task.task_id)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if table_list_text is not None:
                write_text_atomic(directory / TABLE_LIST_FILE, table_list_text)
            task_log.append_entry(directory, "INFO", f"TaskDir_{task.task_id}", "任务目录日志初始化完成")
        except OSError as exc:
            # No task without its directory: a client that sees this error and retries gets one task.
            self.store.delete_task(task.task_id)
            shutil.rmtree(directory, ignore_errors=True)
            if is_disk_full(exc):
                raise InsufficientStorageError(f"无法创建任务目录: {disk_full_details(exc)}") from None
            raise PipelineError(f"无法创建任务目录: {exc.strerror}") from None
        logger.info("创建任务: %s", task.task_id)
        return {"task_id": task.task_id, "task_name": task.task_name, "status": task.status,
                "created_at": iso(task.created_at)}

    def get_task(self, task_id: str) -> dict:
        task = self.require_task(task_id)
        # A status read moves the queue on where nothing watches it (no serving API); a cancel or a
        # delete of a queued task must not start it first.
        if task.status is TaskStatus.QUEUED and self.start_queued_runs():
            task = self.store.get_task(task_id)
        position = self.store.queue_position(task.current_execution_id) \
            if task.status is TaskStatus.QUEUED and task.current_execution_id else None
        return task_status_body(task, self.directory(task_id).is_dir(), queue_position=position)

    def search(self, **filters) -> tuple[list[dict], int]:
        """A page of task summaries and the number of matches (abandoned runs settled first)."""
        page, total = self.store.search_tasks(**filters)
        # Listed tasks carry no execution: read the running ones whole to see whether theirs is gone.
        running = [self.store.get_task(task.task_id) for task in page if task.status is TaskStatus.IN_PROGRESS]
        settled = [task for task in running if task and self._settle_if_abandoned(task)]
        if settled:
            page, total = self.store.search_tasks(**filters)
        return [task_summary(task, self.directory(task.task_id).is_dir()) for task in page], total

    def delete_task(self, task_id: str) -> dict:
        task = self.require_task(task_id)
        if task.status is TaskStatus.IN_PROGRESS or not self.store.delete_task(task_id):
            raise ConflictError(f"任务 {task_id} 正在执行，不能删除", error_code="TASK_ALREADY_RUNNING",
                                invalid_params=["task_id"])
        directory = self.directory(task_id)
        shutil.rmtree(directory, ignore_errors=True)
        logger.info("删除任务: %s", task_id)
        return {"task_id": task_id, "deleted": True, "directory_removed": not directory.exists()}

    def execute_task(self, task_id: str, *, execution_mode: str, step_name: str | None,
                     backup_vector_tables: bool | None, truncate_vector_tables: bool | None,
                     validate_by_execution: bool | None = None) -> dict:
        if execution_mode not in ("complete", "step"):
            raise ValidationError("无效的执行模式，必须是 'complete' 或 'step'", invalid_params=["execution_mode"],
                                  error_code="INVALID_EXECUTION_MODE")
        if execution_mode == "step" and not step_name:
            raise ValidationError("步骤模式需要指定 step_name", invalid_params=["step_name"],
                                  error_code="MISSING_STEP_NAME")
        if step_name is not None and step_name not in STEP_NAMES:
            raise ValidationError(f"无效的步骤名称，必须是 {', '.join(STEP_NAMES)} 之一",
                                  invalid_params=["step_name"], error_code="INVALID_STEP_NAME")
        if execution_mode == "complete":
            step_name = None
        task = self.require_task(task_id)
        if task.status in ACTIVE_TASK_STATUSES:
            raise ConflictError(f"任务 {task_id} 正在执行或排队 (状态: {task.status})", error_code="TASK_ALREADY_RUNNING",
                                invalid_params=["task_id"])
        self.cipher.open(task.db_connection, task_id)  # a key changed since: say so now, not in the run
        directory = self.directory(task_id)
        tables = read_table_list(directory)
        if not tables:
            raise ValidationError("任务没有表清单，请先上传表清单或在创建任务时提供 table_list_file",
                                  invalid_params=["table_list_file"], error_code="TABLE_LIST_MISSING")
        if step_name:
            missing = missing_step_inputs(step_name, directory, tables)
            if missing:
                shown = ", ".join(missing[:20]) + (f" 等{len(missing)}个" if len(missing) > 20 else "")
                raise ValidationError(f"步骤 {step_name} 的输入文件不存在: {shown}", invalid_params=["step_name"],
                                      error_code="STEP_PREREQUISITE_NOT_MET")
        parameters = task.parameters
        truncate = parameters.get("truncate_vector_tables", False) if truncate_vector_tables is None \
            else truncate_vector_tables
        backup = parameters.get("backup_vector_tables", False) if backup_vector_tables is None \
            else backup_vector_tables
        options = {"backup_vector_tables": bool(backup or truncate), "truncate_vector_tables": bool(truncate)}
        if validate_by_execution is not None:
            options["validate_by_execution"] = validate_by_execution
        stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S")
        base = f"{task_id}_step_{step_name}_exec_{stamp}" if step_name else f"{task_id}_complete_exec_{stamp}"
        execution_id = self.store.enqueue_execution(task_id, execution_id_base=base, mode=execution_mode,
                                                    step_name=step_name, options=options, run_queue=self.run_queue)
        if execution_id is None:
            raise ConflictError(f"任务 {task_id} 正在执行或排队", error_code="TASK_ALREADY_RUNNING",
                                invalid_params=["task_id"])
        self._submit(execution_id)
        position = self.store.queue_position(execution_id)
        return {"task_id": task_id, "execution_id": execution_id, "execution_mode": execution_mode,
                "step_name": step_name, **options,
                "status": TaskStatus.QUEUED if position else TaskStatus.IN_PROGRESS, "queue_position": position,
                "message": "任务已排队，将按顺序开始执行" if position else "任务正在后台执行，请通过状态接口查询进度"}

    def settle_exit(self, execution_id: str, returncode: int) -> None:
        """An executor this process started has exited: if it recorded no outcome, settle it failed."""
        ended = self.store.get_execution(execution_id)
        if ended and ended.status is ExecutionStatus.RUNNING:
            self._settle(ended, executor_processes.describe_exit(returncode))

    def _submit(self, execution_id: str) -> None:
        """Hand a queued execution to the executor: a Celery message, or the local run queue."""
        if self.settings.executor != "celery":
            self.start_queued_runs()
            return
        from data_pipeline.workers.celery_app import send_execution

        try:
            send_execution(self.settings, execution_id)
        except BrokerUnavailable as exc:
            self.store.finish_execution(execution_id, ExecutionStatus.FAILED, error_message=exc.details,
                                        error_code=exc.error_code)
            raise

    def start_queued_runs(self) -> int:
        """Local executor: start the oldest queued executions while fewer than
        DATA_PIPELINE_MAX_RUNNING run; how many started. (Workers take theirs from the broker.)"""
        if self.settings.executor != "local":
            return 0
        started = self.store.start_queued(self.settings.max_running, self.run_queue)
        for execution in started:
            self._start_executor(execution)
        return len(started)

    def _start_executor(self, execution: Execution) -> None:
        task_id, execution_id = execution.task_id, execution.execution_id
        directory = self.directory(task_id)
        command = executor_processes.executor_command(execution)

        def on_exit(returncode: int) -> None:
            self.settle_exit(execution_id, returncode)
            self.start_queued_runs()  # a run slot is free

        try:
            directory.mkdir(parents=True, exist_ok=True)
            pid = executor_processes.spawn_executor(self.settings, directory, command, on_exit)
        except OSError as exc:
            self.fail_unstarted(execution, exc)
            return
        self.store.record_executor(execution_id, pid, executor_processes.HOSTNAME)
        logger.info("任务 %s 开始执行 (%s), 执行器进程 %d", task_id, execution_id, pid)

    def fail_unstarted(self, execution: Execution, exc: OSError) -> None:
        """The executor of a started execution could not be started (the local executor or a worker)."""
        self.store.finish_execution(execution.execution_id, ExecutionStatus.FAILED, error_code="EXECUTOR_NOT_STARTED",
                                    error_message=f"无法启动执行器: {exc.strerror}")
        logger.error("任务 %s 的执行器无法启动: %s", execution.task_id, exc.strerror)

    def cancel_task(self, task_id: str) -> dict:
        task = self.require_task(task_id)
        execution = task.execution
        if task.status not in ACTIVE_TASK_STATUSES or execution is None:
            raise ConflictError(f"任务 {task_id} 当前没有在执行或排队 (状态: {task.status})",
                                error_code="TASK_NOT_RUNNING", invalid_params=["task_id"])
        running_step = task.running_step_name()
        # Record the cancellation first: the executor (and the reaper) then find the execution ended
        # and cannot report it as failed while it is being stopped. A queued execution leaves the
        # queue (a worker's message for it is ignored); a worker's run sees it at its next heartbeat.
        if self.store.finish_execution(execution.execution_id, ExecutionStatus.CANCELLED,
                                       error_message="任务已被用户取消"):
            self._note_in_task_log(task_id, "WARNING", "任务已被用户取消", running_step)
        execution = self.store.get_execution(execution.execution_id) or execution
        if execution.pid and execution.worker is None:
            executor_processes.terminate_executor(execution.pid, task_id, self.settings.cancel_grace_seconds)
        logger.info("取消任务: %s", task_id)
        return self.get_task(task_id)

    def list_executions(self, task_id: str) -> list[Execution]:
        self.require_task(task_id)
        return self.store.list_executions(task_id)
