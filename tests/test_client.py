"""DataPipelineClient against a real server (subprocess, HTTP, PostgreSQL) with an API key."""
from __future__ import annotations

import json

import pytest

from data_pipeline.client import (DataPipelineClient, DataPipelineConnectionError, DataPipelineError,
                                  WaitTimeout)
from tests.support.api_server import free_port
from tests.support.console_support import DEMO_TABLES, PAIR_FILE, QUICK, controlled_task, require_routes
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def server(keyed_api):
    return keyed_api


@pytest.fixture
def client(server):
    with DataPipelineClient(server.url, api_key=server.api_key, timeout=10) as client:
        yield client


def test_health_is_public_and_everything_else_needs_the_key(server):
    anonymous = DataPipelineClient(server.url)
    assert anonymous.health()["status"] == "healthy"
    with pytest.raises(DataPipelineError) as caught:
        anonymous.list_tasks()
    assert caught.value.status == 401 and caught.value.error_code == "UNAUTHORIZED"
    wrong = DataPipelineClient(server.url, api_key="not-the-key")
    with pytest.raises(DataPipelineError) as caught:
        wrong.get_task("task_20250101_000000")
    assert caught.value.status == 401


def test_create_get_list_query_and_delete(client):
    created = client.create_task(task_name="客户端测试", business_context="高速公路服务区管理系统",
                                 db_name="highway_db", enable_llm_repair=False)
    task_id = created["task_id"]
    assert created["status"] == "pending" and task_id.startswith("task_")
    task = client.get_task(task_id)
    assert task["task_name"] == "客户端测试" and task["parameters"]["enable_llm_repair"] is False
    assert task["parameters"]["enable_sql_validation"] is True  # server default for what the client left out
    assert set(task["step_status"]) == {"ddl_generation", "qa_generation", "sql_validation", "training_load"}
    listed = client.list_tasks(limit=100, status="pending")
    assert task_id in [t["task_id"] for t in listed["tasks"]] and listed["limit"] == 100
    found = client.query_tasks(task_name="客户端测试", page_size=5)
    assert [t["task_id"] for t in found["tasks"]] == [task_id] and found["pagination"]["total"] == 1
    deleted = client.delete_task(task_id)
    assert deleted["deleted"] is True
    with pytest.raises(DataPipelineError) as caught:
        client.get_task(task_id)
    assert caught.value.status == 404 and caught.value.error_code == "TASK_NOT_FOUND"
    assert "task_id" in caught.value.invalid_params and task_id in str(caught.value)


def test_errors_carry_code_details_and_invalid_params(client, server):
    task_id = client.create_task(task_name="错误测试")["task_id"]
    with pytest.raises(DataPipelineError) as caught:
        client.execute_task(task_id)
    assert (caught.value.status, caught.value.error_code) == (400, "TABLE_LIST_MISSING")
    with pytest.raises(DataPipelineError) as caught:
        client.execute_task(task_id, "step", "no_such_step")
    error = caught.value
    assert (error.status, error.error_code, error.invalid_params) == (400, "INVALID_STEP_NAME", ["step_name"])
    assert error.error_type == "ValidationError" and error.details and error.body["success"] is False
    with pytest.raises(DataPipelineError) as caught:
        client.cancel_task(task_id)
    assert (caught.value.status, caught.value.error_code) == (409, "TASK_NOT_RUNNING")
    with pytest.raises(DataPipelineError) as caught:
        client.create_task(db_name="bad name with spaces")
    assert caught.value.status == 400 and caught.value.invalid_params == ["db_name"]


def test_unreachable_server_is_a_connection_error():
    client = DataPipelineClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(DataPipelineConnectionError) as caught:
        client.health()
    assert caught.value.status is None and caught.value.error_code == "CONNECTION_ERROR"


def test_execute_and_wait_with_progress(client, server):
    control = {**QUICK, "qa_generation": {"sleep": 1.5, "write": [PAIR_FILE]}}
    task_id = controlled_task(server, control)
    started = client.execute_task(task_id)
    assert started["execution_mode"] == "complete" and started["execution_id"].startswith(task_id)
    seen = []
    final = client.wait(task_id, poll_interval=0.1, timeout=60, on_progress=seen.append)
    assert final["status"] == "completed" and seen[-1] is not None and seen[-1]["status"] == "completed"
    progress = [t["current_step"]["progress"] for t in seen
                if t["current_step"] and t["current_step"]["step"] == "qa_generation"
                and t["current_step"]["status"] == "running" and t["current_step"]["progress"]]
    assert progress and progress[-1]["unit"] == "ticks" and progress[-1]["total"] == 15
    history = client.list_executions(task_id)
    assert history["total"] == 1 and history["executions"][0]["status"] == "completed"


def test_step_mode_cancel_and_wait_timeout(client, server):
    task_id = controlled_task(server, {"ddl_generation": {"sleep": 30}})
    client.execute_task(task_id, "step", "ddl_generation")
    wait_until(lambda: client.get_task(task_id)["step_status"]["ddl_generation"] == "running",
               what="ddl_generation running")
    with pytest.raises(WaitTimeout) as caught:
        client.wait(task_id, poll_interval=0.1, timeout=0.5)
    assert caught.value.task["status"] == "in_progress" and isinstance(caught.value, TimeoutError)
    with pytest.raises(DataPipelineError) as caught:
        client.execute_task(task_id)
    assert caught.value.error_code == "TASK_ALREADY_RUNNING"
    cancelled = client.cancel_task(task_id)
    assert cancelled["status"] == "cancelled"
    assert client.wait(task_id, timeout=10)["step_status"]["ddl_generation"] == "cancelled"


def test_failed_step_is_returned_not_raised(client, server):
    task_id = controlled_task(server, {**QUICK, "sql_validation": {"fail": "模拟失败"}})
    client.execute_task(task_id)
    final = client.wait(task_id, poll_interval=0.1, timeout=60)
    assert final["status"] == "failed" and "模拟失败" in final["error_message"]


# ---- files, table lists, logs (guide §4, §5) -----------------------------------------------------

def test_table_lists_uploads_and_info(client, server, tmp_path):
    require_routes(server, "POST /api/v0/data_pipeline/tasks/{}/upload-table-list",
                   "GET /api/v0/data_pipeline/tasks/{}/table-list-info", "POST /api/v0/data_pipeline/tasks/{}/table-list")
    task_id = client.create_task(task_name="表清单")["task_id"]
    assert client.get_table_list_info(task_id)["has_table_list"] is False
    list_file = tmp_path / "tables.txt"
    list_file.write_text("# 注释\nbss_company\nbss_service_area, bss_company\n", encoding="utf-8")
    uploaded = client.upload_table_list(task_id, list_file)
    assert uploaded["table_count"] == 2 and uploaded["tables"] == ["bss_company", "bss_service_area"]
    uploaded = client.upload_table_list(task_id, "bss_car_day_count\n".encode("gbk"), filename="list.txt")
    assert uploaded["tables"] == ["bss_car_day_count"]
    written = client.set_table_list(task_id, list(DEMO_TABLES[:3]), business_context="新的业务上下文")
    assert written["table_count"] == 3
    info = client.get_table_list_info(task_id)
    assert info["has_table_list"] is True and info["tables"] == list(DEMO_TABLES[:3])
    assert client.get_task(task_id)["business_context"] == "新的业务上下文"
    with pytest.raises(DataPipelineError) as caught:
        client.set_table_list(task_id, ["bad name;drop"])
    assert caught.value.status == 400 and caught.value.error_code == "INVALID_TABLE_NAME"


def test_files_download_read_and_upload(client, server, tmp_path):
    require_routes(server, "GET /api/v0/data_pipeline/tasks/{}/files", "GET /api/v0/data_pipeline/tasks/{}/files/{}",
                   "POST /api/v0/data_pipeline/tasks/{}/files")
    task_id = controlled_task(server)
    client.execute_task(task_id)
    assert client.wait(task_id, poll_interval=0.1, timeout=60)["status"] == "completed"
    task_dir = server.training_data_dir / task_id
    (task_dir / "vector_bak").mkdir()
    (task_dir / "vector_bak" / "notes 1.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    listing = client.list_files(task_id)
    names = {f["file_name"] for f in listing["files"]}
    assert {"bss_company.ddl", "bss_service_area_detail.md", PAIR_FILE, "vector_bak/notes 1.csv"} <= names
    assert listing["total_files"] == len(listing["files"])
    primary = client.primary_file(task_id)
    assert primary is not None and primary["file_name"] == PAIR_FILE
    saved = client.download_file(task_id, primary["file_name"], tmp_path)
    assert saved == tmp_path / PAIR_FILE and saved.read_bytes() == (task_dir / PAIR_FILE).read_bytes()
    nested = client.download_file(task_id, "vector_bak/notes 1.csv", tmp_path / "out" / "copy.csv")
    assert nested.read_text(encoding="utf-8") == "a,b\n1,2\n"
    into_new_dir = client.download_file(task_id, "vector_bak/notes 1.csv", f"{tmp_path}/new_dir/")
    assert into_new_dir == tmp_path / "new_dir" / "notes 1.csv" and into_new_dir.is_file()
    assert client.read_file(task_id, "bss_company.ddl") == (task_dir / "bss_company.ddl").read_bytes()
    with pytest.raises(DataPipelineError) as caught:
        client.download_file(task_id, "missing.json", tmp_path / "missing.json")
    assert caught.value.status == 404 and caught.value.error_code == "FILE_NOT_FOUND"
    assert not (tmp_path / "missing.json").exists() and not list(tmp_path.glob(".*.part"))
    pairs = [{"question": "服务区有多少个？", "sql": "select count(*) from bss_service_area"}]
    uploaded = client.upload_file(task_id, json.dumps(pairs, ensure_ascii=False).encode(), filename="qs_mine_pair.json")
    assert uploaded is not None
    assert json.loads(client.read_file(task_id, "qs_mine_pair.json")) == pairs


def test_logs_tail_and_query(client, server):
    require_routes(server, "GET /api/v0/data_pipeline/tasks/{}/logs", "POST /api/v0/data_pipeline/tasks/{}/logs/query")
    task_id = controlled_task(server, {**QUICK, "sql_validation": {"fail": "验证失败了"}})
    client.execute_task(task_id)
    assert client.wait(task_id, poll_interval=0.1, timeout=60)["status"] == "failed"
    tail = client.get_logs(task_id, limit=5)
    assert 0 < len(tail["logs"]) <= 5
    errors = client.get_logs(task_id, level="ERROR")["logs"]
    assert errors and all(entry["level"] == "ERROR" for entry in errors)
    for step in ("ddl_generation", "sql_validation"):
        result = client.query_logs(task_id, step_name=step, page_size=200)
        assert result["logs"] and all(entry["step"] == step for entry in result["logs"])
    found = client.query_logs(task_id, keyword="验证失败", level="ERROR")
    assert found["pagination"]["total"] >= 1 and all("验证失败" in e["message"] for e in found["logs"])


# ---- database tools and vectors (guide §6, ours) ------------------------------------------------

def test_database_tables_and_ddl(client, server):
    require_routes(server, "POST /api/v0/database/tables", "POST /api/v0/database/table/ddl")
    tables = client.list_database_tables(schema=["public"], table_name_pattern="bss_*")
    assert set(tables["tables"]) >= {f"public.{name}" for name in DEMO_TABLES} and tables["total"] == len(tables["tables"])
    document = client.get_table_ddl("public.bss_company", business_context="高速公路服务区管理系统", output_type="ddl")
    assert "create table" in document["ddl"].lower() and "md" not in document
    assert document["table_info"]["table_name"] == "bss_company"
    with pytest.raises(DataPipelineError) as caught:
        client.get_table_ddl("public.no_such_table")
    assert caught.value.status == 404


def test_vector_backup_list_and_restore(client, server):
    require_routes(server, "POST /api/v0/data_pipeline/vector/backup", "GET /api/v0/data_pipeline/vector/restore/list",
                   "POST /api/v0/data_pipeline/vector/restore")
    backup = client.backup_vectors()
    timestamp = backup["timestamp"]
    listing = client.list_vector_backups()
    location = next(loc for loc in listing["backup_locations"] if loc["type"] == "global")
    assert timestamp in [b["timestamp"] for b in location["backups"]]
    restored = client.restore_vectors(location["relative_path"], timestamp)
    assert restored["restore_performed"] is True
    with pytest.raises(DataPipelineError) as caught:
        client.restore_vectors("../outside", timestamp)
    assert caught.value.status == 400 and caught.value.error_code == "INVALID_FILE_PATH"


# ---- the console page (served by the same server) ------------------------------------------------

def test_console_page_is_public_and_locked_down(server):
    import requests

    page = requests.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Data Pipeline 控制台" in page.text and "/console/static/js/main.js" in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    script = requests.get(server.url + "/console/static/js/main.js", timeout=10)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    for escape in ("/console/static/../../../config.py", "/console/static/%2e%2e/%2e%2e/config.py"):
        response = requests.get(server.url + escape, timeout=10)
        assert response.status_code == 404 and "Settings" not in response.text
    assert requests.get(server.url + "/api/v0/data_pipeline/tasks", timeout=10).status_code == 401
