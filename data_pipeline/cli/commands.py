"""`python -m data_pipeline`: the command line over the API (and `run`, which needs no server).

The server is `--url` or DATA_PIPELINE_URL (default http://127.0.0.1:8084); the API key comes from
DATA_PIPELINE_API_KEY (never from an argument, so it stays out of `ps` and shell history).
Results go to stdout (`--json` prints the API's data block), progress and messages to stderr.

Exit codes (for scripts):
    0    success; for a task: completed, partial_completed, or not finished yet (status without --wait)
    1    the task failed
    2    usage error (bad arguments, bad configuration)
    3    the API refused the request (error envelope: not found, invalid parameters, conflict, ...)
    4    the server could not be reached
    5    --wait / --follow gave up after --timeout
    130  the task was cancelled, or the command was interrupted (Ctrl-C)
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO

from data_pipeline.cli.exits import (EXIT_API_ERROR, EXIT_CANCELLED, EXIT_CONNECTION, EXIT_OK, EXIT_TASK_FAILED,
                                     EXIT_TIMEOUT, EXIT_USAGE, task_exit_code)
from data_pipeline.cli.output import ProgressDisplay, note, print_json, print_logs, print_table, print_task
from data_pipeline.cli.parser import build_parser, task_flags
from data_pipeline.client import (DEFAULT_URL, DataPipelineClient, DataPipelineConnectionError, DataPipelineError,
                                  WaitTimeout)
from data_pipeline.tasks.statuses import FINISHED_TASK_STATUSES

FOLLOW_PAGE_SIZE = 100


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


# ---- commands over the API ------------------------------------------------------------------------

def table_names(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


def cmd_create(client: DataPipelineClient, args, out: IO[str]) -> int:
    if args.tables_file and args.tables:
        raise UsageError("--tables-file 与 --tables 只能选一个")
    if args.tables_file and not Path(args.tables_file).is_file():
        raise UsageError(f"文件不存在: {args.tables_file}")
    created = client.create_task(
        table_list_file=args.table_list_file, business_context=args.business_context, db_name=args.db_name,
        db_connection=args.db_connection, task_name=args.task_name, created_by=args.created_by,
        **task_flags(args))
    task_id = created["task_id"]
    table_list = None
    try:
        if args.tables_file:
            table_list = client.upload_table_list(task_id, args.tables_file)
        elif args.tables:
            table_list = client.set_table_list(task_id, table_names(args.tables))
    except DataPipelineError:
        note(f"任务 {task_id} 已创建，但表清单未能写入 (可用 upload 命令重试)")
        raise
    if args.json:
        print_json({**created, "table_list": table_list} if table_list else created, out)
    else:
        out.write(task_id + "\n")
        if table_list:
            note(f"表清单: {table_list.get('table_count')} 个表")
    return EXIT_OK


def cmd_upload(client: DataPipelineClient, args, out: IO[str]) -> int:
    if bool(args.file) == bool(args.tables):
        raise UsageError("需要一个文件 FILE 或 --tables（二选一）")
    if args.tables and args.task_file:
        raise UsageError("--task-file 需要一个文件 FILE")
    if args.file and not Path(args.file).is_file():
        raise UsageError(f"文件不存在: {args.file}")
    if args.task_file:
        result = client.upload_file(args.task_id, args.file)
    elif args.file:
        result = client.upload_table_list(args.task_id, args.file)
    else:
        result = client.set_table_list(args.task_id, table_names(args.tables))
    if args.json:
        print_json(result, out)
    elif "table_count" in result:
        tables = result.get("tables") or []
        out.write(f"{result.get('file_name', 'table_list.txt')}: {result['table_count']} 个表"
                  f" ({', '.join(tables[:10])}{' ...' if len(tables) > 10 else ''})\n")
    else:
        out.write(f"{result.get('file_name', Path(args.file).name)}: 已上传\n")
    return EXIT_OK


def cmd_execute(client: DataPipelineClient, args, out: IO[str]) -> int:
    mode = "step" if args.step else "complete"
    started = client.execute_task(args.task_id, mode, args.step,
                                  backup_vector_tables=True if args.backup_vector_tables else None,
                                  truncate_vector_tables=True if args.truncate_vector_tables else None)
    if not args.wait:
        if args.json:
            print_json(started, out)
        else:
            out.write(started.get("execution_id", "") + "\n")
        return EXIT_OK
    note(f"执行已启动: {started.get('execution_id')}")
    return wait_and_report(client, args, out)


def wait_and_report(client: DataPipelineClient, args, out: IO[str]) -> int:
    display = ProgressDisplay()
    try:
        task = client.wait(args.task_id, poll_interval=args.interval, timeout=args.timeout,
                           on_progress=display.update)
    finally:
        display.finish()
    show_task(task, args, out)
    return task_exit_code(task)


def show_task(task: dict, args, out: IO[str]) -> None:
    if args.json:
        print_json(task, out)
    else:
        print_task(task, out)


def cmd_status(client: DataPipelineClient, args, out: IO[str]) -> int:
    if args.wait:
        return wait_and_report(client, args, out)
    task = client.get_task(args.task_id)
    show_task(task, args, out)
    return task_exit_code(task)


def cmd_list(client: DataPipelineClient, args, out: IO[str]) -> int:
    if args.name:
        result = client.query_tasks(page=1, page_size=args.limit, status=args.status, task_name=args.name)
        tasks, total = result["tasks"], result["pagination"]["total"]
    else:
        result = client.list_tasks(limit=args.limit, status=args.status)
        tasks, total = result["tasks"], result["total"]
    if args.json:
        print_json(result, out)
        return EXIT_OK
    rows = [(t["task_id"], t.get("status", ""), t.get("task_name") or "", t.get("db_name") or "",
             t.get("created_at") or "") for t in tasks]
    print_table(rows, ("task_id", "status", "task_name", "db_name", "created_at"), out)
    note(f"共 {total} 个任务")
    return EXIT_OK


def fetch_logs(client: DataPipelineClient, args) -> tuple[list[dict], int]:
    """The last `--limit` entries matching the filters, oldest first, and how many match in all."""
    if not (args.step or args.keyword or args.logger):
        result = client.get_logs(args.task_id, limit=args.limit, level=args.level)
        return result["logs"], result.get("total", len(result["logs"]))
    result = client.query_logs(args.task_id, page=1, page_size=args.limit, level=args.level, keyword=args.keyword,
                               logger_name=args.logger, step_name=args.step, sort_by="line_number",
                               sort_order="desc")
    return list(reversed(result["logs"])), result["pagination"]["total"]


def cmd_logs(client: DataPipelineClient, args, out: IO[str]) -> int:
    if not args.follow:
        entries, total = fetch_logs(client, args)
        if args.json:
            print_json({"logs": entries, "total": total}, out)
        else:
            print_logs(entries, out)
        return EXIT_OK
    return follow_logs(client, args, out)


def follow_logs(client: DataPipelineClient, args, out: IO[str]) -> int:
    """Print the last entries, then new ones as they are written, until the task finishes.

    New entries are read with logs/query in file order (line_number ascending): the log only
    grows, so the entries after the `seen` first ones are the new ones. The executor writes its
    last lines just after the status changes, so once the task is finished the log is read until
    a pause brings nothing new."""
    filters = dict(level=args.level, keyword=args.keyword, logger_name=args.logger, step_name=args.step,
                   sort_by="line_number", sort_order="asc")
    first = client.query_logs(args.task_id, page=1, page_size=args.limit, **{**filters, "sort_order": "desc"})
    print_logs(reversed(first["logs"]), out)
    seen = first["pagination"]["total"]
    deadline = None if args.timeout is None else time.monotonic() + args.timeout

    def read_new() -> int:
        nonlocal seen
        printed = 0
        while True:
            page = client.query_logs(args.task_id, page=seen // FOLLOW_PAGE_SIZE + 1,
                                     page_size=FOLLOW_PAGE_SIZE, **filters)
            fresh = page["logs"][seen % FOLLOW_PAGE_SIZE:]
            print_logs(fresh, out)
            seen += len(fresh)
            printed += len(fresh)
            if not fresh or seen >= page["pagination"]["total"]:
                return printed

    while True:
        task = client.get_task(args.task_id)
        read_new()
        if task["status"] in FINISHED_TASK_STATUSES:
            time.sleep(args.interval)
            while read_new():
                time.sleep(args.interval)
            return task_exit_code(task)
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeout(f"跟踪日志超时 ({args.timeout}s)", task)
        time.sleep(args.interval)


def cmd_files(client: DataPipelineClient, args, out: IO[str]) -> int:
    result = client.list_files(args.task_id)
    if args.json:
        print_json(result, out)
        return EXIT_OK
    rows = [("*" if f.get("is_primary") else "", f["file_name"], f.get("file_size_human", ""),
             (f.get("modified_at") or f.get("created_at") or "").replace("T", " "), f.get("description") or "")
            for f in result["files"]]
    print_table(rows, ("", "file_name", "size", "modified_at", "description"), out)
    note(f"共 {result.get('total_files', len(rows))} 个文件, {result.get('total_size_human', '')}")
    return EXIT_OK


def cmd_download(client: DataPipelineClient, args, out: IO[str]) -> int:
    if bool(args.file_name) == bool(args.primary):
        raise UsageError("需要文件名 FILE_NAME 或 --primary（二选一）")
    file_name = args.file_name
    if args.primary:
        primary = client.primary_file(args.task_id)
        if primary is None:
            raise DataPipelineError("任务没有主要输出文件", status=404, error_code="FILE_NOT_FOUND",
                                    details=f"任务 {args.task_id} 还没有问答对文件 (*_pair.json)")
        file_name = primary["file_name"]
    path = client.download_file(args.task_id, file_name, args.output)
    out.write(f"{path}\n")
    return EXIT_OK


def cmd_cancel(client: DataPipelineClient, args, out: IO[str]) -> int:
    task = client.cancel_task(args.task_id)
    show_task(task, args, out)
    return EXIT_OK


def cmd_delete(client: DataPipelineClient, args, out: IO[str]) -> int:
    result = client.delete_task(args.task_id)
    if args.json:
        print_json(result, out)
    else:
        out.write(f"已删除 {result.get('task_id', args.task_id)}\n")
    return EXIT_OK


def cmd_run(args, out: IO[str]) -> int:
    from data_pipeline.cli.local import run_locally

    return run_locally(args, out)


def cmd_worker(args) -> int:
    from config import ConfigError, Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        note(f"配置错误: {exc}")
        return EXIT_USAGE
    if not settings.broker_url:
        note("配置错误: worker 需要 DATA_PIPELINE_BROKER_URL (例如 redis://127.0.0.1:6379/0)")
        return EXIT_USAGE
    from data_pipeline.workers.worker import start_worker

    start_worker(settings, concurrency=args.concurrency or settings.max_running, hostname=args.hostname,
                 loglevel=settings.log_level)
    return EXIT_OK


COMMANDS = {"create": cmd_create, "upload": cmd_upload, "execute": cmd_execute, "status": cmd_status,
            "list": cmd_list, "logs": cmd_logs, "files": cmd_files, "download": cmd_download,
            "cancel": cmd_cancel, "delete": cmd_delete}


def report_error(exc: DataPipelineError) -> None:
    where = f"{exc.error_code} ({exc.status})" if exc.status else (exc.error_code or "ERROR")
    note(f"错误 {where}: {exc.details or exc.message}")
    if exc.invalid_params:
        note(f"  参数: {', '.join(exc.invalid_params)}")


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args, out)
        if args.command == "worker":
            return cmd_worker(args)
        url = args.url or os.environ.get("DATA_PIPELINE_URL") or DEFAULT_URL
        with DataPipelineClient(url, api_key=os.environ.get("DATA_PIPELINE_API_KEY") or None,
                                timeout=args.http_timeout) as client:
            return COMMANDS[args.command](client, args, out)
    except UsageError as exc:
        parser.error(str(exc))
    except WaitTimeout as exc:
        note(f"超时: {exc.details}")
        return EXIT_TIMEOUT
    except DataPipelineConnectionError as exc:
        note(f"错误: {exc.details or exc.message}")
        return EXIT_CONNECTION
    except DataPipelineError as exc:
        report_error(exc)
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        note("已中断")
        return EXIT_CANCELLED
    except BrokenPipeError:  # `... | head`: the reader left; nothing more to say
        return EXIT_OK
