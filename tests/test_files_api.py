"""Task files (guide §4.1–4.5 and the generic upload): listing and downloads of the files a real
executor run produced, over real HTTP; table lists, uploads and their refusals in-process (Flask's
test client); a body over the limit and changes while a task runs through a server process."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import in_process
from tests.support.api_server import ApiServer
from tests.support.envelope import data_of, error_of
from tests.support.task_runs import QUICK, make_task, task_dir, write_control

TASKS = "/api/v0/data_pipeline/tasks"


def files_of(api, task_id: str) -> dict:
    response = api.get(f"{TASKS}/{task_id}/files")
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture(scope="module")
def finished_task(embedded_api):
    """A task after a complete run of the real steps (training_load controlled until it exists) on
    the demo database, plus backup subdirectories."""
    api = embedded_api
    task_id = make_task(api, {"training_load": {}}, tables=("bss_company", "bss_service_area"))
    assert api.execute(task_id).status_code == 202
    assert api.wait_for(task_id)["status"] == "completed"
    directory = task_dir(api, task_id)
    (directory / "vector_bak").mkdir()
    (directory / "vector_bak" / "langchain_pg_embedding_20250101_000000.csv").write_text("uuid,document\n1,x\n")
    (directory / "vector_bak" / "vector_backup_log.txt").write_text("=== Vector Table Backup Log ===\n")
    (directory / "file_bak_20250101_000000").mkdir()
    (directory / "file_bak_20250101_000000" / "bss_company.ddl").write_text("-- old\n")
    (directory / ".table_list.txt.abc.tmp").write_text("half-written")
    return api, task_id


def test_listing_covers_every_file_with_its_fields(finished_task):
    api, task_id = finished_task
    data = files_of(api, task_id)
    directory = task_dir(api, task_id)
    on_disk = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                     if p.is_file() and not p.name.startswith("."))
    listed = [f["file_name"] for f in data["files"]]
    assert sorted(listed) == on_disk
    assert "vector_bak/langchain_pg_embedding_20250101_000000.csv" in listed
    assert "file_bak_20250101_000000/bss_company.ddl" in listed
    assert data["total_files"] == len(on_disk)
    assert data["total_size"] == sum((directory / name).stat().st_size for name in on_disk)
    assert re.fullmatch(r"\d+\.\d (B|KB|MB|GB)", data["total_size_human"])
    by_name = {f["file_name"]: f for f in data["files"]}
    pair_name = next(name for name in listed if re.fullmatch(r"qs_highway_db_\d{8}_\d{6}_pair\.json", name))
    pair = by_name[pair_name]
    assert pair["is_primary"] is True and listed[0] == pair["file_name"]
    assert sum(f["is_primary"] for f in data["files"]) == 1
    assert pair["description"] == "Question-SQL训练数据对" and pair["file_type"] == "json"
    log = by_name["data_pipeline.log"]
    assert log["description"] == "任务执行日志" and log["file_type"] == "log"
    assert by_name["bss_company.ddl"]["description"] == "表 bss_company 的DDL"
    assert by_name["bss_service_area_detail.md"]["description"] == "表 bss_service_area 的结构说明文档"
    assert by_name["metadata.txt"]["description"].startswith("业务主题元数据")
    assert by_name["sql_validation_result.json"]["description"] == "SQL验证步骤结果"
    generic = {"JSON文件", "Markdown文档", "SQL文件", "CSV数据文件", "文本文件", "日志文件", "DDL文件", "其他文件"}
    assert [name for name, f in by_name.items() if f["description"] in generic] == ["test_control.json"]
    assert by_name["table_list.txt"]["description"] == "表清单"
    assert by_name["vector_bak/vector_backup_log.txt"]["description"] == "向量表备份日志"
    assert "langchain_pg_embedding" in by_name["vector_bak/langchain_pg_embedding_20250101_000000.csv"]["description"]
    assert by_name["file_bak_20250101_000000/bss_company.ddl"]["description"].startswith("备份于 2025-01-01 00:00:00")
    for entry in data["files"]:
        assert entry["description"] and entry["file_size_human"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["created_at"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", entry["modified_at"])
        assert entry["download_url"] == f"{TASKS}/{task_id}/files/{quote(entry['file_name'])}"


def test_every_listed_file_downloads_with_a_fitting_content_type(finished_task):
    api, task_id = finished_task
    directory = task_dir(api, task_id)
    expected_types = {"json": "application/json", "md": "text/markdown; charset=utf-8",
                      "ddl": "text/plain; charset=utf-8", "log": "text/plain; charset=utf-8",
                      "txt": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8"}
    for entry in files_of(api, task_id)["files"]:
        response = api.get(entry["download_url"])
        assert response.status_code == 200, entry
        assert response.content == (directory / entry["file_name"]).read_bytes()
        assert response.headers["Content-Type"] == expected_types[entry["file_type"]], entry["file_name"]
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment") and entry["file_name"].split("/")[-1] in disposition


def test_descriptions_of_every_kind_of_task_file():
    from data_pipeline.files.catalog import describe, file_type

    assert describe("ops__bss_service_area_detail.md") == "表 ops.bss_service_area 的结构说明文档"
    assert describe("ops__bss_service_area.ddl") == "表 ops.bss_service_area 的DDL"
    assert describe("qs_db_20250101_000000_pair.json.backup").startswith("Question-SQL训练数据对备份")
    assert file_type("qs_db_20250101_000000_pair.json.backup_20250102_000000") == "backup"
    assert describe("sql_validation_20250101_000000_report.json") == "SQL验证详细报告"
    assert describe("file_modifications_20250101_000000.log") == "SQL验证对问答对文件的修改记录"
    assert describe("vector_bak/langchain_pg_collection_20250101_000000.csv").startswith("向量集合表")
    assert describe("qa_generation_checkpoint/plan.json").startswith("问答生成断点")
    assert describe("file_bak_20250101_000000_2/metadata.txt").startswith("备份于 2025-01-01 00:00:00 的旧文件: 业务主题元数据")
    assert describe("executor_output.log") == "执行器进程输出" and describe("task_config.json").startswith("任务配置")
    assert describe("whatever.bin") == "其他文件"


def test_large_and_chinese_named_downloads(embedded_api):
    api = embedded_api
    task_id = api.create_task(task_name="下载")
    big = task_dir(api, task_id) / "big.csv"
    big.write_bytes(b"id,value\n" + b"1,abcdefghij\n" * 1_500_000)
    response = api.get(f"{TASKS}/{task_id}/files/big.csv", stream=True)
    assert response.status_code == 200 and int(response.headers["Content-Length"]) == big.stat().st_size
    assert sum(len(chunk) for chunk in response.iter_content(1 << 20)) == big.stat().st_size
    (task_dir(api, task_id) / "说明.md").write_text("# 说明\n", encoding="utf-8")
    named = api.get(f"{TASKS}/{task_id}/files/{quote('说明.md')}")
    assert named.status_code == 200 and named.text == "# 说明\n"
    assert "filename*=UTF-8''%E8%AF%B4%E6%98%8E.md" in named.headers["Content-Disposition"]


def test_unknown_task_is_404_on_every_file_endpoint(client):
    missing = "task_20000101_000000"
    error_of(client.get(f"{TASKS}/{missing}/files"), 404, "TASK_NOT_FOUND")
    error_of(client.get(f"{TASKS}/{missing}/files/table_list.txt"), 404, "TASK_NOT_FOUND")
    error_of(client.get(f"{TASKS}/{missing}/table-list-info"), 404, "TASK_NOT_FOUND")
    error_of(client.post(f"{TASKS}/{missing}/table-list", json={"table_names": ["a"]}), 404, "TASK_NOT_FOUND")
    error_of(in_process.upload(client, f"{TASKS}/{missing}/upload-table-list", "t.txt", b"a\n"), 404,
             "TASK_NOT_FOUND")
    error_of(in_process.upload(client, f"{TASKS}/{missing}/files", "t.ddl", b"x\n"), 404, "TASK_NOT_FOUND")


# ---- table lists (in-process: the request's contract, no process boundary) -----------------------

def upload_list(client, task_id: str, name: str, content: bytes):
    """A table list upload, through a server process (`ApiServer`) or in-process (Flask's test client)."""
    if isinstance(client, ApiServer):
        return client.post(f"{TASKS}/{task_id}/upload-table-list", files={"file": (name, content)})
    return in_process.upload(client, f"{TASKS}/{task_id}/upload-table-list", name, content)


def in_process_task(web_app, client, **body) -> tuple[str, Path]:
    """A task created in-process, and its directory."""
    task_id = in_process.create_task(client, **body)
    return task_id, in_process.training_data_dir(web_app) / task_id


def test_table_list_upload_converts_gbk_and_drops_duplicates_in_order(web_app, client):
    task_id, directory = in_process_task(web_app, client, task_name="表清单")
    info = client.get(f"{TASKS}/{task_id}/table-list-info").get_json()["data"]
    assert info["has_table_list"] is False and info["table_count"] == 0 and info["tables"] == []
    content = ("# 服务区相关表\nbss_service_area, bss_company\n-- 注释\nBSS_COMPANY\n"
               "\"业务\".\"营收 表\"\nops.bss_car_day_count, bss_service_area\n").encode("gbk")
    response = upload_list(client, task_id, "tables.TXT", content)
    data = data_of(response)
    expected = ["bss_service_area", "bss_company", '"业务"."营收 表"', "ops.bss_car_day_count"]
    assert data["tables"] == expected and data["table_count"] == 4 and data["duplicates_removed"] == 2
    assert data["file_name"] == "table_list.txt" and data["task_id"] == task_id
    stored = directory / "table_list.txt"
    assert stored.read_text(encoding="utf-8").splitlines() == expected
    assert data["file_size"] == stored.stat().st_size and data["file_path"].endswith(f"{task_id}/table_list.txt")
    info = client.get(f"{TASKS}/{task_id}/table-list-info").get_json()["data"]
    assert info["has_table_list"] is True and info["tables"] == expected and info["table_count"] == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", info["uploaded_at"])
    replaced = data_of(upload_list(client, task_id, "t.txt", b"bss_company\n"))
    assert replaced["tables"] == ["bss_company"]
    backup = directory / replaced["replaced_file_backup"]
    assert backup.read_text(encoding="utf-8").splitlines() == expected


@pytest.mark.parametrize("name, content, code, mentioned", [
    ("tables.csv", b"bss_company\n", "INVALID_FILE", ".txt"),
    ("tables", b"bss_company\n", "INVALID_FILE", ".txt"),
    ("tables.txt", b"", "INVALID_FILE", "为空"),
    ("tables.txt", b"# only a comment\n\n", "VALIDATION_ERROR", "为空"),
    ("tables.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "INVALID_FILE", "文本"),
    ("tables.txt", b"a\n" * (1024 * 1024 + 1), "INVALID_FILE", "2 MB"),
    ("tables.txt", b"bss_company\nbad-name\n1abc\nx;drop table y\n", "INVALID_TABLE_NAME", "bad-name"),
    ("tables.txt", "".join(f"t{i}\n" for i in range(1001)).encode(), "VALIDATION_ERROR", "1000"),
])
def test_table_list_upload_rejections(web_app, client, name, content, code, mentioned):
    task_id, directory = in_process_task(web_app, client, task_name="表清单拒绝")
    body = error_of(upload_list(client, task_id, name, content), 400, code, "file")
    assert mentioned in body["error"]["details"]
    if code == "INVALID_TABLE_NAME":
        for offending in ("bad-name", "1abc", "x;drop table y"):
            assert offending in body["error"]["details"]
    assert not (directory / "table_list.txt").exists()


def test_table_list_upload_needs_a_file_field(client):
    task_id = in_process.create_task(client, task_name="无文件")
    error_of(in_process.upload(client, f"{TASKS}/{task_id}/upload-table-list", "t.txt", b"a\n", field="other"), 400,
             "VALIDATION_ERROR", "file")
    error_of(client.post(f"{TASKS}/{task_id}/upload-table-list", json={"file": "a"}), 400, "VALIDATION_ERROR", "file")


def test_create_table_list_updates_business_context(client):
    task_id = in_process.create_task(client, task_name="直接创建", business_context="旧的")
    response = client.post(f"{TASKS}/{task_id}/table-list", json={
        "table_names": ["bss_company", "bss_service_area", "BSS_COMPANY", "ops.t"],
        "business_context": "高速公路服务区管理系统"})
    data = data_of(response)
    assert data["tables"] == ["bss_company", "bss_service_area", "ops.t"] and data["duplicates_removed"] == 1
    task = in_process.get_task(client, task_id)
    assert task["business_context"] == "高速公路服务区管理系统"
    assert task["parameters"]["business_context"] == "高速公路服务区管理系统"
    without_context = client.post(f"{TASKS}/{task_id}/table-list", json={"table_names": ["bss_company"]})
    assert without_context.status_code == 200
    assert in_process.get_task(client, task_id)["business_context"] == "高速公路服务区管理系统"


@pytest.mark.parametrize("body, code, param", [
    ({}, "VALIDATION_ERROR", "table_names"),
    ({"table_names": []}, "VALIDATION_ERROR", "table_names"),
    ({"table_names": "bss_company"}, "VALIDATION_ERROR", "table_names"),
    ({"table_names": [1, 2]}, "VALIDATION_ERROR", "table_names"),
    ({"table_names": ["ok", "not ok"]}, "INVALID_TABLE_NAME", "table_names"),
    ({"table_names": [f"t{i}" for i in range(1001)]}, "VALIDATION_ERROR", "table_names"),
    ({"table_names": ["a"], "business_context": 5}, "VALIDATION_ERROR", "business_context"),
    ({"table_names": ["a"], "extra": 1}, "VALIDATION_ERROR", "extra"),
])
def test_create_table_list_rejections(web_app, client, body, code, param):
    task_id, directory = in_process_task(web_app, client, task_name="直接创建拒绝")
    error_of(client.post(f"{TASKS}/{task_id}/table-list", json=body), 400, code, param)
    assert not (directory / "table_list.txt").exists()


# ---- generic uploads -----------------------------------------------------------------------------

def upload(client, task_id: str, name: str, content: bytes):
    """A generic upload, through a server process (`ApiServer`) or in-process (Flask's test client)."""
    if isinstance(client, ApiServer):
        return client.post(f"{TASKS}/{task_id}/files", files={"file": (name, content)})
    return in_process.upload(client, f"{TASKS}/{task_id}/files", name, content)


def test_uploaded_pair_file_becomes_primary_and_unblocks_sql_validation(embedded_api):
    api = embedded_api
    task_id = make_task(api, QUICK)
    blocked = api.execute(task_id, execution_mode="step", step_name="sql_validation")
    error_of(blocked, 400, "STEP_PREREQUISITE_NOT_MET", "step_name")
    pairs = [{"question": "有多少家公司？", "sql": "SELECT count(*) FROM bss_company"}]
    response = upload(api, task_id, "qs_highway_db_20250101_000000_pair.json", json.dumps(pairs, ensure_ascii=False).encode())
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["file"]["is_primary"] is True and data["replaced"] is False
    assert data["file"]["description"] == "Question-SQL训练数据对"
    assert api.execute(task_id, execution_mode="step", step_name="sql_validation").status_code == 202
    assert api.wait_for(task_id)["step_status"]["sql_validation"] == "completed"


def test_replaced_upload_is_kept_under_file_bak(web_app, client):
    task_id, directory = in_process_task(web_app, client, task_name="替换")
    first = data_of(upload(client, task_id, "bss_company.ddl", b"create table bss_company (id int);\n"))
    assert first["replaced"] is False
    same = data_of(upload(client, task_id, "bss_company.ddl", b"create table bss_company (id int);\n"))
    assert same["replaced"] is False  # identical content: nothing to keep
    second = upload(client, task_id, "bss_company.ddl", "create table bss_company (id int, 名称 text);\n".encode("gbk"))
    data = data_of(second)
    assert data["replaced"] is True and re.fullmatch(r"file_bak_\d{8}_\d{6}/bss_company.ddl", data["replaced_file_backup"])
    assert (directory / data["replaced_file_backup"]).read_text() == "create table bss_company (id int);\n"
    assert (directory / "bss_company.ddl").read_text(encoding="utf-8") == "create table bss_company (id int, 名称 text);\n"
    listed = {f["file_name"] for f in data_of(client.get(f"{TASKS}/{task_id}/files"))["files"]}
    assert data["replaced_file_backup"] in listed


@pytest.mark.parametrize("name, content, status, code, mentioned", [
    ("tool.exe", b"MZ", 400, "INVALID_FILE", ".ddl"),
    ("notes", b"text", 400, "INVALID_FILE", ".ddl"),
    ("empty.sql", b"", 400, "INVALID_FILE", "为空"),
    ("binary.csv", b"a,b\n\x00\x01", 400, "INVALID_FILE", "文本"),
    ("huge.sql", b"-- x\n" * (2 * 1024 * 1024 + 1), 413, "PAYLOAD_TOO_LARGE", "10 MB"),
    ("broken.json", b"{not json", 400, "INVALID_FILE", "JSON"),
    ("qs_x_pair.json", b"{\"question\": \"q\", \"sql\": \"s\"}", 400, "INVALID_FILE", "数组"),
    ("qs_x_pair.json", b"[]", 400, "INVALID_FILE", "数组"),
    ("qs_x_pair.json", json.dumps([{"question": "q", "sql": "select 1"}, {"question": "q2"},
                                   {"question": "", "sql": "s"}, "x"]).encode(), 400, "INVALID_FILE", "1, 2, 3"),
    ("table_list.txt", b"bss_company\n", 400, "INVALID_FILE", "upload-table-list"),
    ("task_config.json", b"{}", 400, "INVALID_FILE", "task_config.json"),
    ("ddl_generation_result.json", b"{}", 400, "INVALID_FILE", "ddl_generation_result.json"),
])
def test_generic_upload_rejections(web_app, client, name, content, status, code, mentioned):
    task_id, directory = in_process_task(web_app, client, task_name="上传拒绝")
    before = sorted(p.name for p in directory.iterdir())
    body = error_of(upload(client, task_id, name, content), status, code, "file")
    assert mentioned in body["error"]["details"]
    assert sorted(p.name for p in directory.iterdir()) == before


def test_body_over_the_server_limit_is_413_in_the_envelope(embedded_api):
    api = embedded_api
    task_id = api.create_task(task_name="超大")
    response = upload(api, task_id, "huge.sql", b"-- x\n" * (3 * 1024 * 1024))
    error_of(response, 413, "PAYLOAD_TOO_LARGE")


def test_changes_are_refused_while_the_task_runs(embedded_api):
    api = embedded_api
    task_id = make_task(api, {**QUICK, "ddl_generation": {"sleep": 30}})
    assert api.execute(task_id).status_code == 202
    deadline = time.monotonic() + 30
    while api.task(task_id)["status"] != "in_progress" and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        error_of(upload_list(api, task_id, "t.txt", b"bss_company\n"), 409, "TASK_ALREADY_RUNNING")
        error_of(api.post(f"{TASKS}/{task_id}/table-list", json={"table_names": ["a"]}), 409, "TASK_ALREADY_RUNNING")
        error_of(upload(api, task_id, "x.ddl", b"create table x (id int);\n"), 409, "TASK_ALREADY_RUNNING")
        assert api.get(f"{TASKS}/{task_id}/files").status_code == 200
        assert api.get(f"{TASKS}/{task_id}/table-list-info").json()["data"]["tables"] == ["bss_company", "bss_service_area"]
    finally:
        assert api.post(f"{TASKS}/{task_id}/cancel").status_code == 200
    write_control(api, task_id, QUICK)
    assert upload_list(api, task_id, "t.txt", b"bss_company\n").status_code == 200
