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

import argparse
import os
import sys
import time
from pathlib import Path
from typing import IO

from data_pipeline.cli_output import (ProgressDisplay, print_json, print_logs, print_table, print_task)
from data_pipeline.client import (DEFAULT_URL, DataPipelineClient, DataPipelineConnectionError, DataPipelineError,
                                  WaitTimeout)
from data_pipeline.client_types import FINISHED_STATUSES, STEP_NAMES

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_API_ERROR = 3
EXIT_CONNECTION = 4
EXIT_TIMEOUT = 5
EXIT_CANCELLED = 130

TASK_EXIT_CODES = {"failed": EXIT_TASK_FAILED, "cancelled": EXIT_CANCELLED}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FOLLOW_PAGE_SIZE = 100


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


def task_exit_code(task: dict) -> int:
    return TASK_EXIT_CODES.get(task.get("status"), EXIT_OK)


# ---- commands over the API ------------------------------------------------------------------------

def table_names(text: str) -> list[str]:
    return [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]


def cmd_create(client: DataPipelineClient, args, out: IO[str]) -> int:
    if args.tables_file and args.tables:
        raise UsageError("--tables-file 与 --tables 只能选一个")
    created = client.create_task(
        table_list_file=args.table_list_file, business_context=args.business_context, db_name=args.db_name,
        db_connection=args.db_connection, task_name=args.task_name, created_by=args.created_by,
        **task_flags(args))
    task_id = created["task_id"]
    table_list = None
    if args.tables_file:
        table_list = client.upload_table_list(task_id, args.tables_file)
    elif args.tables:
        table_list = client.set_table_list(task_id, table_names(args.tables))
    if args.json:
        print_json({**created, "table_list": table_list} if table_list else created, out)
    else:
        out.write(task_id + "\n")
        if table_list:
            note(f"表清单: {table_list.get('table_count')} 个表")
    return EXIT_OK


def task_flags(args) -> dict:
    return {"enable_sql_validation": False if args.no_sql_validation else None,
            "enable_llm_repair": False if args.no_llm_repair else None,
            "modify_original_file": False if args.no_modify_original_file else None,
            "enable_training_data_load": False if args.no_training_data_load else None,
            "backup_vector_tables": True if args.backup_vector_tables else None,
            "truncate_vector_tables": True if args.truncate_vector_tables else None}


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
        if task["status"] in FINISHED_STATUSES:
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
    from data_pipeline.cli_local import run_locally

    return run_locally(args, out)


# ---- the parser -----------------------------------------------------------------------------------

def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("必须是正数")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("必须是正整数")
    return value


def common_options(for_subcommand: bool) -> argparse.ArgumentParser:
    """--url / --json / --timeout, accepted before or after the command name."""
    default = (lambda value: argparse.SUPPRESS) if for_subcommand else (lambda value: value)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--url", default=default(None),
                        help=f"服务地址 (默认: $DATA_PIPELINE_URL 或 {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", default=default(False), help="以 JSON 输出结果 (API 的 data)")
    parser.add_argument("--http-timeout", type=positive_float, default=default(30.0), metavar="SECONDS",
                        help="单个 HTTP 请求的超时 (默认 30)")
    return parser


def add_task_parameters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("任务参数 (guide §3.1)")
    group.add_argument("--task-name", help="task_name 任务名称")
    group.add_argument("--business-context", help="business_context 业务上下文描述")
    group.add_argument("--db-name", help="db_name 数据库名称")
    group.add_argument("--db-connection", help="db_connection 业务数据库连接字符串 (默认: 服务的默认数据库)")
    group.add_argument("--no-sql-validation", action="store_true", help="enable_sql_validation=false")
    group.add_argument("--no-llm-repair", action="store_true", help="enable_llm_repair=false")
    group.add_argument("--no-modify-original-file", action="store_true", help="modify_original_file=false")
    group.add_argument("--no-training-data-load", action="store_true", help="enable_training_data_load=false")
    group.add_argument("--backup-vector-tables", action="store_true", help="backup_vector_tables=true")
    group.add_argument("--truncate-vector-tables", action="store_true",
                       help="truncate_vector_tables=true (自动启用备份)")


def add_wait_options(parser: argparse.ArgumentParser, interval: float = 1.0) -> None:
    parser.add_argument("--interval", type=positive_float, default=interval, metavar="SECONDS",
                        help=f"轮询间隔 (默认 {interval})")
    parser.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                        help="最长等待时间，超时退出码 5 (默认不限)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_pipeline", parents=[common_options(False)],
        description="Data Pipeline 命令行：通过 API 创建、执行、查看任务；run 在本地直接执行完整工作流。",
        epilog="API Key 取自环境变量 DATA_PIPELINE_API_KEY。退出码: 0 成功, 1 任务失败, 2 用法错误, "
               "3 API 错误(不存在/参数无效/冲突), 4 无法连接服务, 5 等待超时, 130 任务已取消或被中断。",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options(True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help_text, description=help_text)

    create = command("create", "创建任务，输出 task_id")
    create.add_argument("--table-list-file", help="服务端的表清单文件路径 (相对项目根目录或训练数据目录)")
    create.add_argument("--tables-file", help="本地表清单文件 (.txt)，创建后上传")
    create.add_argument("--tables", help="表名列表，逗号分隔，创建后写入表清单")
    create.add_argument("--created-by", help="created_by 创建者")
    add_task_parameters(create)

    upload = command("upload", "上传表清单 (.txt) 或任务文件，或用 --tables 直接写入表清单")
    upload.add_argument("task_id")
    upload.add_argument("file", nargs="?", help="本地文件")
    upload.add_argument("--tables", help="表名列表，逗号分隔 (代替文件)")
    upload.add_argument("--task-file", action="store_true",
                        help="作为任务文件上传 (.ddl .md .json .sql .txt .csv)，而不是表清单")

    execute = command("execute", "执行任务：完整工作流，或 --step 单个步骤")
    execute.add_argument("task_id")
    execute.add_argument("--step", choices=STEP_NAMES, help="只执行这个步骤 (execution_mode=step)")
    execute.add_argument("--backup-vector-tables", action="store_true", help="backup_vector_tables=true")
    execute.add_argument("--truncate-vector-tables", action="store_true", help="truncate_vector_tables=true")
    execute.add_argument("--wait", action="store_true", help="等待执行结束，显示进度")
    add_wait_options(execute)

    status = command("status", "任务状态；--wait 显示进度条直到结束")
    status.add_argument("task_id")
    status.add_argument("--wait", action="store_true", help="等待任务结束，显示进度")
    add_wait_options(status)

    listing = command("list", "任务列表")
    listing.add_argument("--status", choices=("pending", "in_progress", "partial_completed", "completed", "failed",
                                              "cancelled"))
    listing.add_argument("--name", help="任务名称模糊搜索")
    listing.add_argument("--limit", type=positive_int, default=20)

    logs = command("logs", "任务日志；--follow 持续输出新日志直到任务结束")
    logs.add_argument("task_id")
    logs.add_argument("--limit", type=positive_int, default=100, help="显示最后 N 条 (默认 100)")
    logs.add_argument("--level", type=str.upper, choices=LOG_LEVELS)
    logs.add_argument("--step", choices=STEP_NAMES, help="只看这个步骤的日志")
    logs.add_argument("--keyword", help="关键词")
    logs.add_argument("--logger", help="记录器名称")
    logs.add_argument("--follow", "-f", action="store_true", help="持续输出新日志，任务结束时退出")
    add_wait_options(logs)

    files = command("files", "任务文件列表 (* 为主要输出文件)")
    files.add_argument("task_id")

    download = command("download", "下载任务文件")
    download.add_argument("task_id")
    download.add_argument("file_name", nargs="?", help="文件名 (任务目录内的相对路径)")
    download.add_argument("--primary", action="store_true", help="下载主要输出文件 (问答对)")
    download.add_argument("-o", "--output", help="保存到的文件或目录 (默认当前目录)")

    cancel = command("cancel", "取消正在执行的任务")
    cancel.add_argument("task_id")

    delete = command("delete", "删除任务 (执行中的任务不能删除)")
    delete.add_argument("task_id")

    run = command("run", "不经过服务，在本地执行完整工作流 (或 --step 单个步骤)；配置取自环境变量")
    run.add_argument("--tables-file", help="表清单文件 (.txt)")
    run.add_argument("--tables", help="表名列表，逗号分隔")
    run.add_argument("--task-id", help="继续一个已有的本地任务 (而不是新建)")
    run.add_argument("--step", choices=STEP_NAMES, help="只执行这个步骤")
    add_task_parameters(run)
    add_wait_options(run)
    return parser


COMMANDS = {"create": cmd_create, "upload": cmd_upload, "execute": cmd_execute, "status": cmd_status,
            "list": cmd_list, "logs": cmd_logs, "files": cmd_files, "download": cmd_download,
            "cancel": cmd_cancel, "delete": cmd_delete}


def note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


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
