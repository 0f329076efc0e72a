"""`python -m data_pipeline run`: a whole workflow on this machine, without the API server.

The same parts the server uses, in this process: the settings from the environment, the task
store, TaskService to create the task and claim it, and the executor subprocess for the steps
(with its heartbeat, task log and cancel handling). The task is an ordinary task: a server started
later on the same store lists it, and its files are in the training data directory.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import IO

from config import ConfigError, Settings
from data_pipeline.cli.exits import EXIT_API_ERROR, EXIT_CANCELLED, EXIT_TIMEOUT, EXIT_USAGE, task_exit_code
from data_pipeline.cli.output import ProgressDisplay, note, print_json, print_task
from data_pipeline.cli.parser import task_flags
from data_pipeline.db.databases import store_url
from data_pipeline.errors import ConflictError, PipelineError
from data_pipeline.store import TaskStore
from data_pipeline.tasks.statuses import FINISHED_TASK_STATUSES
from data_pipeline.tasks.table_list import decode_table_list, parse_table_list_text, render_table_list
from data_pipeline.tasks.directory import TABLE_LIST_FILE, write_text_atomic
from data_pipeline.tasks.service import TaskService

LOCAL_CREATOR = "cli"


def run_locally(args, out: IO[str]) -> int:
    if args.tables_file and args.tables:
        note("错误: --tables-file 与 --tables 只能选一个")
        return EXIT_USAGE
    if not args.task_id and not (args.tables_file or args.tables):
        note("错误: 需要表清单: --tables-file 或 --tables (或用 --task-id 继续已有任务)")
        return EXIT_USAGE
    if args.tables_file and not Path(args.tables_file).is_file():
        note(f"错误: 文件不存在: {args.tables_file}")
        return EXIT_USAGE
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        note(f"配置错误: {exc}")
        return EXIT_USAGE
    try:
        return LocalRun(settings, args, out).run()
    except PipelineError as exc:
        note(f"错误 {exc.error_code} ({exc.status}): {exc.details}")
        if exc.invalid_params:
            note(f"  参数: {', '.join(exc.invalid_params)}")
        return EXIT_API_ERROR


class LocalRun:
    def __init__(self, settings, args, out: IO[str]):
        self.settings, self.args, self.out = settings, args, out
        self.store = TaskStore(store_url(settings), pool_size=2)
        self.store.migrate()
        self.service = TaskService(settings, self.store)

    def run(self) -> int:
        try:
            names = self._table_names()  # checked before a task is created for them
            task_id = self.args.task_id or self._create()
            if names:
                self.service.require_task(task_id)
                write_text_atomic(self.service.directory(task_id) / TABLE_LIST_FILE, render_table_list(names))
            started = self.service.execute_task(
                task_id, execution_mode="step" if self.args.step else "complete", step_name=self.args.step,
                backup_vector_tables=True if self.args.backup_vector_tables else None,
                truncate_vector_tables=True if self.args.truncate_vector_tables else None)
            note(f"任务 {task_id} 开始执行 ({started['execution_id']})，目录: {self.service.directory(task_id)}")
            try:
                task = self._wait(task_id)
            except KeyboardInterrupt:
                self._cancel(task_id, "已中断，正在取消任务")
                return EXIT_CANCELLED
            if task is None:
                self._cancel(task_id, f"等待超时 ({self.args.timeout}s)，已取消任务")
                return EXIT_TIMEOUT
            self._report(task)
            return task_exit_code(task)
        finally:
            self.store.dispose()

    def _create(self) -> str:
        created = self.service.create_task(
            table_list_file=None, business_context=self.args.business_context, db_name=self.args.db_name,
            db_connection=self.args.db_connection, task_name=self.args.task_name, created_by=LOCAL_CREATOR,
            **{flag: value for flag, value in task_flags(self.args).items() if value is not None})
        return created["task_id"]

    def _table_names(self) -> list | None:
        if self.args.tables_file:
            return parse_table_list_text(decode_table_list(Path(self.args.tables_file).read_bytes()),
                                         param="tables_file")
        if self.args.tables:
            return parse_table_list_text(self.args.tables, param="tables")
        return None

    def _wait(self, task_id: str) -> dict | None:
        """The finished task, or None when --timeout passed first."""
        display = ProgressDisplay()
        deadline = None if self.args.timeout is None else time.monotonic() + self.args.timeout
        try:
            while True:
                task = self.service.get_task(task_id)
                display.update(task)
                if task["status"] in FINISHED_TASK_STATUSES:
                    return task
                if deadline is not None and time.monotonic() > deadline:
                    return None
                time.sleep(self.args.interval)
        finally:
            display.finish()

    def _cancel(self, task_id: str, message: str) -> None:
        note(message)
        try:
            self.service.cancel_task(task_id)
        except ConflictError:  # it finished meanwhile
            pass

    def _report(self, task: dict) -> None:
        directory = self.service.directory(task["task_id"])
        if self.args.json:
            print_json({**task, "task_directory": str(directory)}, self.out)
            return
        print_task(task, self.out)
        self.out.write(f"  task_directory: {directory}\n")
        pairs = sorted(directory.glob("*_pair.json"), key=lambda p: p.stat().st_mtime)
        if pairs:
            self.out.write(f"  pair_file: {pairs[-1]}\n")
