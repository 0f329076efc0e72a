"""Python client of the Data Pipeline API: one method per endpoint, errors as exceptions.

    from data_pipeline.client import DataPipelineClient, DataPipelineError

    client = DataPipelineClient("http://127.0.0.1:8084", api_key=None)
    task = client.create_task(task_name="高速公路数据处理", business_context="高速公路服务区管理系统")
    client.set_table_list(task["task_id"], ["bss_company", "bss_service_area"])
    client.execute_task(task["task_id"])
    final = client.wait(task["task_id"], on_progress=lambda t: print(t["status"]))
    for f in client.list_files(task["task_id"])["files"]:
        if f["is_primary"]:
            client.download_file(task["task_id"], f["file_name"], "out/")

Every method returns the `data` block of the response envelope (typed in data_pipeline.client.types). A
response with `success: false` raises DataPipelineError carrying the HTTP status, `error_code`,
`details` and `invalid_params`; a server that cannot be reached raises DataPipelineConnectionError.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Optional, Union
from urllib.parse import quote

import requests

from data_pipeline.client.types import (CreatedTask, DatabaseTables, ExecutionHistory, ExecutionStarted, FileInfo,
                                        FileList, Health, LogList, LogQueryResult, TableDocument, TableListInfo,
                                        TaskDetail, TaskList, TaskQueryResult, VectorBackupList)
from data_pipeline.tasks.statuses import FINISHED_TASK_STATUSES

DEFAULT_URL = "http://127.0.0.1:8084"
TASKS = "/api/v0/data_pipeline/tasks"
DOWNLOAD_CHUNK_BYTES = 256 * 1024

FileSource = Union[str, os.PathLike, bytes, BinaryIO]


class DataPipelineError(Exception):
    """The API answered with an error (or could not be reached: see the subclasses)."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None,
                 details: str | None = None, invalid_params: Iterable[str] = (), error_type: str | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.details = details
        self.invalid_params = list(invalid_params)
        self.error_type = error_type
        self.body = body

    def __str__(self) -> str:
        where = f"{self.error_code} ({self.status})" if self.status else (self.error_code or "ERROR")
        text = self.details or self.message
        return f"{where}: {text}" if text else where

    @classmethod
    def from_response(cls, response: requests.Response) -> "DataPipelineError":
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            return cls(body.get("message") or response.reason, status=response.status_code,
                       error_code=error.get("error_code"), details=error.get("details"),
                       invalid_params=error.get("invalid_params") or (), error_type=error.get("type"), body=body)
        text = response.text[:300] if body is None else None
        return cls(response.reason or "请求失败", status=response.status_code, error_code="HTTP_ERROR",
                   details=text, body=body if isinstance(body, dict) else None)


class DataPipelineConnectionError(DataPipelineError):
    """The server could not be reached (refused, DNS, timeout)."""


class WaitTimeout(DataPipelineError, TimeoutError):
    """`wait()` gave up before the task finished; `task` is the last status seen."""

    def __init__(self, message: str, task: TaskDetail):
        super().__init__(message, error_code="WAIT_TIMEOUT", details=message)
        self.task = task


def _path(*segments: str) -> str:
    return "/".join(quote(str(segment), safe="") for segment in segments)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class DataPipelineClient:
    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 30.0,
                 session: requests.Session | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "DataPipelineClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ---- transport -------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, self.base_url + path, **kwargs)
        except requests.Timeout as exc:
            raise DataPipelineConnectionError(f"请求超时: {self.base_url}", error_code="TIMEOUT",
                                              details=str(exc)) from None
        except requests.RequestException as exc:
            raise DataPipelineConnectionError(f"无法连接到服务: {self.base_url}", error_code="CONNECTION_ERROR",
                                              details=f"无法连接到服务 {self.base_url}: {type(exc).__name__}") from None

    def _call(self, method: str, path: str, **kwargs) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict) or body.get("success") is not True:
            raise DataPipelineError.from_response(response)
        return body.get("data")

    # ---- service ---------------------------------------------------------------------------

    def health(self) -> Health:
        return self._call("GET", "/api/v0/health")

    def openapi(self) -> dict:
        """The OpenAPI document (not wrapped in the envelope)."""
        response = self._send("GET", "/api/v0/openapi.json")
        if response.status_code != 200:
            raise DataPipelineError.from_response(response)
        return response.json()

    # ---- tasks (guide §3, plus cancel, delete, executions) ------------------------------------

    def create_task(self, *, table_list_file: str | None = None, business_context: str | None = None,
                    db_name: str | None = None, db_connection: str | None = None, task_name: str | None = None,
                    created_by: str | None = None, enable_sql_validation: bool | None = None,
                    enable_llm_repair: bool | None = None, modify_original_file: bool | None = None,
                    enable_training_data_load: bool | None = None, backup_vector_tables: bool | None = None,
                    truncate_vector_tables: bool | None = None, validate_by_execution: bool | None = None) -> CreatedTask:
        """Create a task (§3.1); parameters left None take the server's defaults."""
        body = _without_none(dict(
            table_list_file=table_list_file, business_context=business_context, db_name=db_name,
            db_connection=db_connection, task_name=task_name, created_by=created_by,
            enable_sql_validation=enable_sql_validation, enable_llm_repair=enable_llm_repair,
            modify_original_file=modify_original_file, enable_training_data_load=enable_training_data_load,
            backup_vector_tables=backup_vector_tables, truncate_vector_tables=truncate_vector_tables,
            validate_by_execution=validate_by_execution))
        return self._call("POST", TASKS, json=body)

    def get_task(self, task_id: str) -> TaskDetail:
        return self._call("GET", f"{TASKS}/{_path(task_id)}")

    def list_tasks(self, limit: int = 50, offset: int = 0, status: str | None = None) -> TaskList:
        return self._call("GET", TASKS, params=_without_none({"limit": limit, "offset": offset, "status": status}))

    def query_tasks(self, *, page: int = 1, page_size: int = 20, status: str | None = None,
                    task_name: str | None = None, created_by: str | None = None, db_name: str | None = None,
                    created_time_start: str | None = None, created_time_end: str | None = None,
                    sort_by: str | None = None, sort_order: str | None = None) -> TaskQueryResult:
        body = _without_none(dict(page=page, page_size=page_size, status=status, task_name=task_name,
                                  created_by=created_by, db_name=db_name, created_time_start=created_time_start,
                                  created_time_end=created_time_end, sort_by=sort_by, sort_order=sort_order))
        return self._call("POST", f"{TASKS}/query", json=body)

    def execute_task(self, task_id: str, execution_mode: str = "complete", step_name: str | None = None, *,
                     backup_vector_tables: bool | None = None,
                     truncate_vector_tables: bool | None = None,
                     validate_by_execution: bool | None = None) -> ExecutionStarted:
        """Start the complete workflow, or one step (`execution_mode="step"`); answers at once (202)."""
        body = _without_none(dict(execution_mode=execution_mode, step_name=step_name,
                                  backup_vector_tables=backup_vector_tables,
                                  truncate_vector_tables=truncate_vector_tables,
                                  validate_by_execution=validate_by_execution))
        return self._call("POST", f"{TASKS}/{_path(task_id)}/execute", json=body)

    def cancel_task(self, task_id: str) -> TaskDetail:
        return self._call("POST", f"{TASKS}/{_path(task_id)}/cancel")

    def delete_task(self, task_id: str) -> dict:
        return self._call("DELETE", f"{TASKS}/{_path(task_id)}")

    def list_executions(self, task_id: str) -> ExecutionHistory:
        return self._call("GET", f"{TASKS}/{_path(task_id)}/executions")

    def wait(self, task_id: str, poll_interval: float = 2.0, timeout: float | None = None,
             on_progress: Callable[[TaskDetail], None] | None = None) -> TaskDetail:
        """Poll the task until it is completed, partial_completed, failed or cancelled; return that
        last status. `on_progress(task)` is called with every status read. A task that was never
        executed stays pending: give a `timeout` (WaitTimeout) when that can happen."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            task = self.get_task(task_id)
            if on_progress is not None:
                on_progress(task)
            if task["status"] in FINISHED_TASK_STATUSES:
                return task
            pause = poll_interval
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"等待任务 {task_id} 超时 ({timeout}s)，当前状态: {task['status']}", task)
                pause = min(pause, remaining)
            time.sleep(pause)

    # ---- files and table lists (guide §4, plus generic upload) --------------------------------

    def list_files(self, task_id: str) -> FileList:
        return self._call("GET", f"{TASKS}/{_path(task_id)}/files")

    def _file_url(self, task_id: str, file_name: str) -> str:
        # file_name is a path relative to the task directory (`vector_bak/x.csv`): keep its slashes.
        return f"{TASKS}/{_path(task_id)}/files/{quote(file_name, safe='/')}"

    def read_file(self, task_id: str, file_name: str) -> bytes:
        """A task file's content in memory (for small files; see download_file for large ones)."""
        response = self._send("GET", self._file_url(task_id, file_name))
        if response.status_code != 200:
            raise DataPipelineError.from_response(response)
        return response.content

    def download_file(self, task_id: str, file_name: str, dest: str | os.PathLike | None = None) -> Path:
        """Stream a task file to `dest` (a file path, or a directory to keep the file's own name;
        default: the current directory). Written to a temporary name and renamed, so `dest` never
        holds a partial file; missing directories are created. Returns the path written."""
        target = Path(dest) if dest is not None else Path.cwd()
        if target.is_dir() or str(dest).endswith(("/", os.sep)):  # "out/" names a directory, existing or not
            target = target / Path(file_name).name
        response = self._send("GET", self._file_url(task_id, file_name), stream=True)
        with response:
            if response.status_code != 200:
                raise DataPipelineError.from_response(response)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK_BYTES):
                        handle.write(chunk)
                os.replace(temp, target)
            except requests.RequestException as exc:
                Path(temp).unlink(missing_ok=True)
                raise DataPipelineConnectionError(f"下载中断: {file_name}", error_code="CONNECTION_ERROR",
                                                  details=f"下载中断: {type(exc).__name__}") from None
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        return target

    def primary_file(self, task_id: str) -> Optional[FileInfo]:
        """The task's primary output (the final question/SQL pair file), if it has one."""
        return next((f for f in self.list_files(task_id)["files"] if f.get("is_primary")), None)

    @staticmethod
    def _multipart(file: FileSource, filename: str | None, default_name: str) -> dict:
        if isinstance(file, bytes):
            return {"file": (filename or default_name, file)}
        if isinstance(file, (str, os.PathLike)):
            path = Path(file)
            return {"file": (filename or path.name, path.read_bytes())}
        return {"file": (filename or Path(getattr(file, "name", default_name)).name, file)}

    def upload_table_list(self, task_id: str, file: FileSource, filename: str | None = None) -> TableListInfo:
        """Upload a `.txt` table list (a path, bytes or an open binary file) (§4.3)."""
        return self._call("POST", f"{TASKS}/{_path(task_id)}/upload-table-list",
                          files=self._multipart(file, filename, "table_list.txt"))

    def set_table_list(self, task_id: str, table_names: list[str],
                       business_context: str | None = None) -> TableListInfo:
        """Write the task's table list from names (§4.5)."""
        body = _without_none({"table_names": list(table_names), "business_context": business_context})
        return self._call("POST", f"{TASKS}/{_path(task_id)}/table-list", json=body)

    def get_table_list_info(self, task_id: str) -> TableListInfo:
        return self._call("GET", f"{TASKS}/{_path(task_id)}/table-list-info")

    def upload_file(self, task_id: str, file: FileSource, filename: str | None = None) -> dict:
        """Put a file of your own (.ddl .md .json .sql .txt .csv) into the task directory; the file it
        replaces is kept under file_bak_<ts>/ and later steps use the new one."""
        return self._call("POST", f"{TASKS}/{_path(task_id)}/files",
                          files=self._multipart(file, filename, "upload.txt"))

    # ---- logs (guide §5) ----------------------------------------------------------------------

    def get_logs(self, task_id: str, limit: int = 100, level: str | None = None) -> LogList:
        """The last `limit` entries of the task log (§5.1)."""
        return self._call("GET", f"{TASKS}/{_path(task_id)}/logs",
                          params=_without_none({"limit": limit, "level": level}))

    def query_logs(self, task_id: str, *, page: int = 1, page_size: int = 50, level: str | None = None,
                   start_time: str | None = None, end_time: str | None = None, keyword: str | None = None,
                   logger_name: str | None = None, step_name: str | None = None, sort_by: str | None = None,
                   sort_order: str | None = None) -> LogQueryResult:
        """Filtered, paginated log entries (§5.2)."""
        body = _without_none(dict(page=page, page_size=page_size, level=level, start_time=start_time,
                                  end_time=end_time, keyword=keyword, logger_name=logger_name,
                                  step_name=step_name, sort_by=sort_by, sort_order=sort_order))
        return self._call("POST", f"{TASKS}/{_path(task_id)}/logs/query", json=body)

    # ---- database tools (guide §6) ------------------------------------------------------------

    def list_database_tables(self, db_connection: str | None = None, schema: str | list[str] | None = None,
                             table_name_pattern: str | None = None) -> DatabaseTables:
        """Tables of the business database (the server's default one unless `db_connection`)."""
        if isinstance(schema, (list, tuple)):
            schema = ",".join(schema)
        body = _without_none({"db_connection": db_connection, "schema": schema,
                              "table_name_pattern": table_name_pattern})
        return self._call("POST", "/api/v0/database/tables", json=body)

    def get_table_ddl(self, table: str, db_connection: str | None = None, business_context: str | None = None,
                      output_type: str = "both") -> TableDocument:
        """DDL and/or MD documentation of one table (`output_type`: ddl, md or both)."""
        body = _without_none({"table": table, "db_connection": db_connection,
                              "business_context": business_context, "type": output_type})
        return self._call("POST", "/api/v0/database/table/ddl", json=body)

    # ---- vector tables (ours) -----------------------------------------------------------------

    def backup_vectors(self) -> dict:
        """Back up both vector tables outside any task (into the training data dir's vector_bak/)."""
        return self._call("POST", "/api/v0/data_pipeline/vector/backup", json={})

    def list_vector_backups(self, **filters: Any) -> VectorBackupList:
        """Backup sets found in task directories and the global vector_bak/."""
        return self._call("GET", "/api/v0/data_pipeline/vector/restore/list", params=_without_none(filters))

    def restore_vectors(self, backup_path: str, timestamp: str, tables: list[str] | None = None,
                        truncate_before_restore: bool = False) -> dict:
        """Restore a backup set (`backup_path` is a relative_path from list_vector_backups)."""
        body = _without_none({"backup_path": backup_path, "timestamp": timestamp, "tables": tables,
                              "truncate_before_restore": truncate_before_restore})
        return self._call("POST", "/api/v0/data_pipeline/vector/restore", json=body)
