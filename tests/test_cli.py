"""`python -m data_pipeline` as a real subprocess against a real server with an API key, and
`run` without a server. Every command, and the exit codes scripts rely on."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from data_pipeline.cli.commands import main
from data_pipeline.cli.output import format_log_entry
from tests.support.api_server import PROJECT_ROOT, free_port
from tests.support.console_support import (DEMO_TABLES, PAIR_FILE, QUICK, controlled_task, real_steps_available,
                                           require_routes, write_control)
from tests.support.task_runs import wait_running
from tests.support.waiting import wait_until

COMMANDS = ("create", "upload", "execute", "status", "list", "logs", "files", "download", "cancel", "delete", "run")


@pytest.fixture(scope="module")
def server(keyed_api):
    return keyed_api


def cli_env(server=None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DATA_PIPELINE_")}
    if server is not None:
        env.update(DATA_PIPELINE_URL=server.url, DATA_PIPELINE_API_KEY=server.api_key)
    # The package is used from the project checkout: importable from any working directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(PROJECT_ROOT), os.environ.get("PYTHONPATH"))))
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def cli(server, *args: str, env: dict | None = None, cwd: Path = PROJECT_ROOT,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data_pipeline", *args], cwd=cwd,
                          env=env if env is not None else cli_env(server), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


# ---- help and usage ----------------------------------------------------------------------------

def test_help_everywhere(capsys):
    top = cli(None, "--help", env=cli_env())
    assert top.returncode == 0 and "退出码" in top.stdout
    for command in COMMANDS:
        assert command in top.stdout
        # Each command's help in this process (argparse is the same; a subprocess each is slow).
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: python -m data_pipeline {command}")
    assert cli(None, "run", "--help", env=cli_env()).stdout.startswith("usage: python -m data_pipeline run")


@pytest.mark.parametrize("args", [(), ("no-such-command",), ("status",), ("execute", "t", "--step", "bogus"),
                                  ("logs", "t", "--limit", "0"), ("upload", "task_20250101_000000"),
                                  ("download", "task_20250101_000000"), ("run",)])
def test_usage_errors_exit_2(args):
    result = cli(None, *args, env=cli_env(DATA_PIPELINE_URL=f"http://127.0.0.1:{free_port()}"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "usage" in result.stderr or "错误" in result.stderr


def test_unreachable_server_exits_4():
    result = cli(None, "list", "--url", f"http://127.0.0.1:{free_port()}", env=cli_env())
    assert result.returncode == 4 and "无法连接" in result.stderr


# ---- commands against the server ---------------------------------------------------------------

def test_create_status_list_delete(server):
    created = cli(server, "create", "--task-name", "命令行任务", "--business-context", "高速公路服务区管理系统",
                  "--db-name", "highway_db", "--no-llm-repair", "--truncate-vector-tables", "--no-execution-check")
    assert created.returncode == 0, created.stderr
    task_id = created.stdout.strip()
    task = server.task(task_id)
    assert task["task_name"] == "命令行任务" and task["parameters"]["enable_llm_repair"] is False
    assert task["parameters"]["validate_by_execution"] is False
    assert task["parameters"]["truncate_vector_tables"] is True and task["parameters"]["backup_vector_tables"] is True

    status = cli(server, "status", task_id)
    assert status.returncode == 0 and task_id in status.stdout and "pending" in status.stdout
    as_json = cli(server, "--json", "status", task_id)
    assert json.loads(as_json.stdout)["task_id"] == task_id
    listing = cli(server, "list", "--name", "命令行任务")
    assert listing.returncode == 0 and task_id in listing.stdout
    listing = cli(server, "list", "--status", "pending", "--json")
    assert task_id in [t["task_id"] for t in json.loads(listing.stdout)["tasks"]]

    deleted = cli(server, "delete", task_id)
    assert deleted.returncode == 0 and task_id in deleted.stdout
    gone = cli(server, "status", task_id)
    assert gone.returncode == 3 and "TASK_NOT_FOUND" in gone.stderr and gone.stdout == ""


def test_api_errors_exit_3(server):
    wrong_key = cli(server, "list", env={**cli_env(server), "DATA_PIPELINE_API_KEY": "wrong"})
    assert wrong_key.returncode == 3 and "UNAUTHORIZED" in wrong_key.stderr
    no_key = cli(server, "list", env={**cli_env(server), "DATA_PIPELINE_API_KEY": ""})
    assert no_key.returncode == 3 and "401" in no_key.stderr
    task_id = server.create_task(task_name="无表清单")
    missing = cli(server, "execute", task_id)
    assert missing.returncode == 3 and "TABLE_LIST_MISSING" in missing.stderr
    not_running = cli(server, "cancel", task_id)
    assert not_running.returncode == 3 and "TASK_NOT_RUNNING" in not_running.stderr
    bad = cli(server, "create", "--db-name", "bad name")
    assert bad.returncode == 3 and "db_name" in bad.stderr


def test_create_with_server_table_list_then_execute_wait(server):
    list_file = server.training_data_dir / "cli_tables.txt"
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text("bss_company\nbss_service_area\n", encoding="utf-8")
    created = cli(server, "create", "--task-name", "等待测试", "--table-list-file", str(list_file))
    task_id = created.stdout.strip()
    write_control(server, task_id, {**QUICK, "qa_generation": {"sleep": 1, "write": [PAIR_FILE]}})
    result = cli(server, "execute", task_id, "--wait", "--interval", "0.2")
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "qa_generation" in result.stdout
    # Not a terminal: one progress line per change on stderr, with the running step's progress.
    assert "%" in result.stderr and "qa_generation" in result.stderr and "ticks" in result.stderr


def test_failed_task_exits_1(server):
    task_id = controlled_task(server, {**QUICK, "qa_generation": {"fail": "问答生成失败"}})
    started = cli(server, "execute", task_id)
    assert started.returncode == 0 and started.stdout.startswith(task_id)
    waited = cli(server, "status", task_id, "--wait", "--interval", "0.2")
    assert waited.returncode == 1 and "问答生成失败" in waited.stdout
    assert "error_code: STEP_FAILED" in waited.stdout
    assert cli(server, "status", task_id).returncode == 1


def test_step_mode_cancel_timeout_and_cancelled_exit_130(server):
    task_id = controlled_task(server, {"ddl_generation": {"sleep": 30}})
    started = cli(server, "execute", task_id, "--step", "ddl_generation", "--json")
    assert started.returncode == 0 and json.loads(started.stdout)["step_name"] == "ddl_generation"
    wait_running(server, task_id, "ddl_generation")
    timed_out = cli(server, "status", task_id, "--wait", "--timeout", "0.5", "--interval", "0.1")
    assert timed_out.returncode == 5 and "超时" in timed_out.stderr
    refused = cli(server, "delete", task_id)
    assert refused.returncode == 3 and "409" in refused.stderr
    cancelled = cli(server, "cancel", task_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert cli(server, "status", task_id).returncode == 130


# ---- commands over files, table lists and logs (endpoints of guide §4, §5) ------------------------

def test_upload_table_lists_and_task_files(server, tmp_path):
    require_routes(server, "POST /api/v0/data_pipeline/tasks/{}/upload-table-list",
                   "POST /api/v0/data_pipeline/tasks/{}/table-list", "POST /api/v0/data_pipeline/tasks/{}/files")
    task_id = server.create_task(task_name="上传测试")
    list_file = tmp_path / "tables.txt"
    list_file.write_text("bss_company\nbss_service_area\n", encoding="utf-8")
    uploaded = cli(server, "upload", task_id, str(list_file))
    assert uploaded.returncode == 0 and "2 个表" in uploaded.stdout
    typed = cli(server, "upload", task_id, "--tables", "bss_company,bss_car_day_count,bss_company")
    assert typed.returncode == 0 and "bss_car_day_count" in typed.stdout
    assert (server.training_data_dir / task_id / "table_list.txt").read_text().split() == [
        "bss_company", "bss_car_day_count"]
    pairs = tmp_path / "qs_mine_pair.json"
    pairs.write_text(json.dumps([{"question": "公司数量？", "sql": "select count(*) from bss_company"}],
                                ensure_ascii=False), encoding="utf-8")
    as_file = cli(server, "upload", task_id, str(pairs), "--task-file")
    assert as_file.returncode == 0, as_file.stderr
    assert json.loads((server.training_data_dir / task_id / "qs_mine_pair.json").read_text()) == json.loads(
        pairs.read_text())
    bad = cli(server, "upload", task_id, "--tables", "bad name!")
    assert bad.returncode == 3 and "INVALID_TABLE_NAME" in bad.stderr
    missing_file = cli(server, "upload", task_id, str(tmp_path / "nope.txt"))
    assert missing_file.returncode == 2


def test_create_with_local_table_list_then_files_and_download(server, tmp_path):
    require_routes(server, "POST /api/v0/data_pipeline/tasks/{}/upload-table-list",
                   "GET /api/v0/data_pipeline/tasks/{}/files", "GET /api/v0/data_pipeline/tasks/{}/files/{}")
    list_file = tmp_path / "tables.txt"
    list_file.write_text("bss_company\nbss_service_area\n", encoding="utf-8")
    created = cli(server, "create", "--task-name", "下载测试", "--tables-file", str(list_file))
    assert created.returncode == 0, created.stderr
    task_id = created.stdout.strip()
    write_control(server, task_id, QUICK)
    assert cli(server, "execute", task_id, "--wait", "--interval", "0.2").returncode == 0
    files = cli(server, "files", task_id)
    assert files.returncode == 0 and PAIR_FILE in files.stdout and "bss_company.ddl" in files.stdout
    primary = cli(server, "download", task_id, "--primary", "-o", str(tmp_path))
    assert primary.returncode == 0 and Path(primary.stdout.strip()) == tmp_path / PAIR_FILE
    assert (tmp_path / PAIR_FILE).read_bytes() == (server.training_data_dir / task_id / PAIR_FILE).read_bytes()
    named = cli(server, "download", task_id, "bss_company.ddl", cwd=tmp_path)
    assert named.returncode == 0 and (tmp_path / "bss_company.ddl").is_file()
    missing = cli(server, "download", task_id, "no_such_file.json", "-o", str(tmp_path))
    assert missing.returncode == 3 and "FILE_NOT_FOUND" in missing.stderr


def test_logs_filters_and_follow(server):
    require_routes(server, "GET /api/v0/data_pipeline/tasks/{}/logs", "POST /api/v0/data_pipeline/tasks/{}/logs/query")
    task_id = controlled_task(server, {**QUICK, "qa_generation": {"sleep": 2, "write": [PAIR_FILE]}})
    follow = subprocess.Popen([sys.executable, "-m", "data_pipeline", "logs", task_id, "--follow", "--interval", "0.2"],
                              cwd=PROJECT_ROOT, env=cli_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    # follow is polling the pending task before the task starts
    wait_until(lambda: f"/tasks/{task_id}/logs" in (server.log_dir / "app.log").read_text(encoding="utf-8"),
               what="logs --follow polling")
    assert cli(server, "execute", task_id).returncode == 0
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err  # follow ends with the task, with its exit code
    lines = out.splitlines()
    for step in ("ddl_generation", "qa_generation", "sql_validation", "training_load"):
        assert any(f"[{step}]" in line for line in lines), f"no {step} entry followed"
    # Every entry of the log exactly once, in file order.
    whole = server.post(f"/api/v0/data_pipeline/tasks/{task_id}/logs/query",
                        json={"page_size": 1000, "sort_by": "line_number", "sort_order": "asc"}).json()["data"]
    assert lines == [format_log_entry(entry) for entry in whole["logs"]]
    tail = cli(server, "logs", task_id, "--limit", "3")
    assert tail.returncode == 0 and len(tail.stdout.splitlines()) == 3
    by_step = cli(server, "logs", task_id, "--step", "qa_generation", "--json")
    entries = json.loads(by_step.stdout)["logs"]
    assert entries and all(entry["step"] == "qa_generation" for entry in entries)
    errors = cli(server, "logs", task_id, "--level", "error")
    assert errors.returncode == 0 and errors.stdout == ""


# ---- run: the whole workflow without a server ----------------------------------------------------

def local_env(server, **extra: str) -> dict[str, str]:
    """The settings of `server` (same store, same training data dir) for a process of its own."""
    env = cli_env()
    env.update({key: value for key, value in server.env.items()
                if key.startswith("DATA_PIPELINE_") and key not in ("DATA_PIPELINE_PORT", "DATA_PIPELINE_API_KEY")})
    env.update(extra)
    return env


def test_run_continues_a_task_locally_without_the_server(server):
    task_id = server.create_task(task_name="本地运行")
    write_control(server, task_id, QUICK)
    result = cli(None, "run", "--task-id", task_id, "--tables", "bss_company,bss_service_area", "--interval", "0.2",
                 env=local_env(server))
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and str(server.training_data_dir / task_id) in result.stdout
    task = server.task(task_id)  # an ordinary task: the server sees it finished
    assert task["status"] == "completed" and task["execution"]["status"] == "completed"
    assert (server.training_data_dir / task_id / PAIR_FILE).is_file()
    failed_step = cli(None, "run", "--task-id", task_id, "--step", "bogus", env=local_env(server))
    assert failed_step.returncode == 2
    write_control(server, task_id, {**QUICK, "training_load": {"fail": "加载失败"}})
    failed = cli(None, "run", "--task-id", task_id, "--step", "training_load", "--interval", "0.2",
                 env=local_env(server))
    assert failed.returncode == 1 and "加载失败" in failed.stdout
    unknown = cli(None, "run", "--task-id", "task_20000101_000000", "--interval", "0.2", env=local_env(server))
    assert unknown.returncode == 3 and "TASK_NOT_FOUND" in unknown.stderr
    bad_names = cli(None, "run", "--tables", "ok_table,bad name!", env=local_env(server))
    assert bad_names.returncode == 3 and "INVALID_TABLE_NAME" in bad_names.stderr


def test_run_interrupted_cancels_the_task(server):
    task_id = server.create_task(task_name="本地中断")
    write_control(server, task_id, {"ddl_generation": {"sleep": 60}})
    process = subprocess.Popen([sys.executable, "-m", "data_pipeline", "run", "--task-id", task_id,
                                "--tables", "bss_company", "--interval", "0.2"], cwd=PROJECT_ROOT,
                               env=local_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_running(server, task_id, "ddl_generation", timeout=30)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert server.wait_for(task_id, timeout=30)["status"] == "cancelled"


def test_run_whole_workflow_with_real_steps_on_the_demo_database(server, tmp_path):
    if not real_steps_available():
        pytest.skip("the real steps are not on this branch yet")
    list_file = tmp_path / "tables.txt"
    list_file.write_text("\n".join(DEMO_TABLES[:3]) + "\n", encoding="utf-8")
    result = cli(None, "run", "--tables-file", str(list_file), "--task-name", "本地完整运行",
                 "--business-context", "高速公路服务区管理系统", "--json", "--interval", "0.5",
                 env=local_env(server, DATA_PIPELINE_STEP_MODULES=""), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    task = json.loads(result.stdout)
    assert task["status"] == "completed"
    directory = Path(task["task_directory"])
    assert (directory / "bss_company.ddl").is_file()
    pairs = json.loads(next(directory.glob("qs_*_pair.json")).read_text(encoding="utf-8"))
    assert pairs and all(pair["question"] and pair["sql"] for pair in pairs)
