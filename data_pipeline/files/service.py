"""File operations on a task (guide §4 and our generic upload), behind the HTTP layer."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO

from data_pipeline.errors import ConflictError
from data_pipeline.files.catalog import content_type, list_task_files
from data_pipeline.files.paths import resolve_task_file
from data_pipeline.files.uploads import (MAX_UPLOAD_BYTES, read_limited, save_uploaded_file, table_list_from_upload,
                                         table_list_info, write_table_list)
from data_pipeline.tasks.statuses import ACTIVE_TASK_STATUSES
from data_pipeline.tasks.table_list import MAX_FILE_BYTES, parse_table_names
from data_pipeline.tasks.service import TaskService

logger = logging.getLogger("TaskFiles")


class TaskFiles:
    def __init__(self, tasks: TaskService):
        self.tasks = tasks

    def _directory(self, task_id: str, *, changing: bool = False) -> Path:
        """The task's directory (404 for an unknown task; 409 when a change meets a running task)."""
        task = self.tasks.require_task(task_id)
        if changing and task.status in ACTIVE_TASK_STATUSES:
            raise ConflictError(f"任务 {task_id} 正在执行，执行结束前不能修改它的文件",
                                error_code="TASK_ALREADY_RUNNING", invalid_params=["task_id"])
        return self.tasks.directory(task_id)

    def list_files(self, task_id: str) -> dict:
        return list_task_files(self._directory(task_id), task_id)

    def download(self, task_id: str, file_name: str) -> tuple[Path, str]:
        """The file to send and its Content-Type."""
        path = resolve_task_file(self._directory(task_id), file_name)
        return path, content_type(path.name)

    def upload_table_list(self, task_id: str, filename: str | None, stream: BinaryIO) -> dict:
        directory = self._directory(task_id, changing=True)
        names, duplicates = table_list_from_upload(filename, read_limited(stream, MAX_FILE_BYTES))
        info = write_table_list(directory, task_id, names)
        logger.info("任务 %s 上传表清单: %d 个表", task_id, len(names))
        return {**info, "duplicates_removed": duplicates}

    def table_list_info(self, task_id: str) -> dict:
        return table_list_info(self._directory(task_id), task_id)

    def create_table_list(self, task_id: str, table_names: list[str], business_context: str | None) -> dict:
        directory = self._directory(task_id, changing=True)
        names = parse_table_names(table_names, param="table_names")
        info = write_table_list(directory, task_id, names)
        if business_context is not None:
            task = self.tasks.require_task(task_id)
            parameters = {**task.parameters, "business_context": business_context}
            self.tasks.store.update_task(task_id, business_context=business_context, parameters=parameters)
        logger.info("任务 %s 创建表清单: %d 个表", task_id, len(names))
        return {**info, "duplicates_removed": len(table_names) - len(names), "business_context": business_context}

    def upload_file(self, task_id: str, filename: str | None, stream: BinaryIO) -> dict:
        directory = self._directory(task_id, changing=True)
        result = save_uploaded_file(directory, task_id, filename, read_limited(stream, MAX_UPLOAD_BYTES))
        logger.info("任务 %s 上传文件 %s%s", task_id, result["file"]["file_name"],
                    f"（旧文件保存为 {result['replaced_file_backup']}）" if result["replaced"] else "")
        return result
