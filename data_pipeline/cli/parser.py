"""The arguments of `python -m data_pipeline`: one sub-command per operation, `--help` everywhere.

--url / --json / --http-timeout are accepted before or after the command name.
"""
from __future__ import annotations

import argparse

from data_pipeline.client import DEFAULT_URL
from data_pipeline.tasks.statuses import STEP_NAMES, TaskStatus

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    group.add_argument("--no-execution-check", action="store_true",
                       help="validate_by_execution=false (SQL验证只做EXPLAIN，不执行SQL)")
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
    listing.add_argument("--status", choices=list(map(str, TaskStatus)))
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

    worker = command("worker", "启动 Celery worker，从 DATA_PIPELINE_BROKER_URL 取任务执行 (见 docs/scale-out.md)")
    worker.add_argument("--concurrency", type=positive_int, default=None,
                        help="同时执行的任务数 (默认 DATA_PIPELINE_MAX_RUNNING)")
    worker.add_argument("--hostname", help="worker 名称 (默认 celery@<主机名>)，执行记录中记下它")
    return parser


def task_flags(args) -> dict:
    return {"enable_sql_validation": False if args.no_sql_validation else None,
            "enable_llm_repair": False if args.no_llm_repair else None,
            "modify_original_file": False if args.no_modify_original_file else None,
            "validate_by_execution": False if args.no_execution_check else None,
            "enable_training_data_load": False if args.no_training_data_load else None,
            "backup_vector_tables": True if args.backup_vector_tables else None,
            "truncate_vector_tables": True if args.truncate_vector_tables else None}
