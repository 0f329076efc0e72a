"""Task management endpoints (guide §3.1, §3.3–3.5), in-process (Flask's test client).

What the store answers runs on both stores (`store_client`); input validation, routing and the
OpenAPI document run once (`client`). That no password reaches a log file is checked on a server
process, whose log files are the point.
"""
from __future__ import annotations

import concurrent.futures
import re

import pytest

from tests.support.envelope import error_of, text_of
from tests.support.in_process import TASKS, create_task, get_task, training_data_dir

SECRET = "S3cr3t-pw-4711"


def test_health_reports_store_and_version(store_client):
    body = store_client.get("/api/v0/health").get_json()
    assert body["success"] is True
    assert body["data"]["status"] == "healthy"
    assert body["data"]["store"]["reachable"] is True
    assert re.match(r"\d+\.\d+\.\d+", body["data"]["version"])


def test_create_task_with_defaults(store_client):
    response = store_client.post(TASKS, json={"task_name": "高速公路数据处理", "business_context": "高速公路服务区管理系统"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["success"] is True and body["code"] == 201
    data = body["data"]
    assert re.fullmatch(r"task_\d{8}_\d{6}(_\d+)?", data["task_id"])
    assert data["status"] == "pending" and data["task_name"] == "高速公路数据处理"
    status = get_task(store_client, data["task_id"])
    assert status["parameters"]["enable_sql_validation"] is True
    assert status["parameters"]["enable_llm_repair"] is True
    assert status["parameters"]["modify_original_file"] is True
    assert status["parameters"]["enable_training_data_load"] is True
    assert status["parameters"]["backup_vector_tables"] is False
    assert status["created_by"] == "guest"
    assert status["db_name"] == "highway_db"
    assert status["step_status"] == {s: "pending" for s in
                                     ("ddl_generation", "qa_generation", "sql_validation", "training_load")}
    assert status["total_steps"] == 4 and status["current_step"] is None
    assert status["directory_exists"] is True


def test_db_name_derived_from_connection_and_password_masked(store_client):
    task_id = create_task(store_client, db_connection=f"postgresql://analyst:{SECRET}@db.example.com:5432/sales_db",
                          created_by="user123", truncate_vector_tables=True)
    status = store_client.get(f"{TASKS}/{task_id}")
    assert SECRET not in text_of(status)
    data = status.get_json()["data"]
    assert data["db_name"] == "sales_db" and data["created_by"] == "user123"
    assert data["parameters"]["db_connection"] == "postgresql://analyst:***@db.example.com:5432/sales_db"
    assert data["parameters"]["backup_vector_tables"] is True  # truncate implies backup
    listing = store_client.get(TASKS, query_string={"limit": 100})
    assert SECRET not in text_of(listing)


def test_table_list_file_is_copied_into_the_task(web_app, client):
    list_file = training_data_dir(web_app) / "lists" / "tables.txt"
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text("# 服务区相关表\nbss_company, bss_service_area\nbss_company\n", encoding="utf-8")
    task_id = create_task(client, table_list_file=str(list_file))
    copied = (training_data_dir(web_app) / task_id / "table_list.txt").read_text(encoding="utf-8")
    assert copied.split() == ["bss_company", "bss_service_area"]


@pytest.mark.parametrize("path, code", [
    ("/etc/passwd", "INVALID_FILE_PATH"),
    ("../../x", "INVALID_FILE_PATH"),
    ("../shared/DESIGN.md", "INVALID_FILE_PATH"),
    ("no_such_tables.txt", "FILE_NOT_FOUND"),
])
def test_table_list_file_confined(client, path, code):
    error_of(client.post(TASKS, json={"table_list_file": path}), 400, code, "table_list_file")


def test_table_list_file_with_invalid_names(web_app, client):
    bad = training_data_dir(web_app) / "lists" / "bad.txt"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("ok_table\nbad name; drop table x\n", encoding="utf-8")
    body = error_of(client.post(TASKS, json={"table_list_file": str(bad)}), 400, "INVALID_TABLE_NAME", "table_list_file")
    assert "bad name; drop table x" in body["error"]["details"]


@pytest.mark.parametrize("payload, param", [
    ({"enable_llm_repair": "yes"}, "enable_llm_repair"),
    ({"validate_by_execution": "yes"}, "validate_by_execution"),
    ({"enable_sql_validation": 1}, "enable_sql_validation"),
    ({"task_name": 42}, "task_name"),
    ({"business_context": ["a"]}, "business_context"),
    ({"db_connection": "mysql://root@localhost/x"}, "db_connection"),
    ({"db_connection": ""}, "db_connection"),
    ({"db_name": "a/b"}, "db_name"),
    ({"unknown_flag": True}, "unknown_flag"),
    ({"created_by": ""}, "created_by"),
])
def test_create_task_rejects_bad_parameters(client, payload, param):
    error_of(client.post(TASKS, json=payload), 400, "VALIDATION_ERROR", param)


def test_create_task_rejects_malformed_bodies(client):
    error_of(client.post(TASKS, data="{not json", headers={"Content-Type": "application/json"}), 400,
             "VALIDATION_ERROR", "body")
    error_of(client.post(TASKS, json=[1, 2]), 400, "VALIDATION_ERROR", "body")
    error_of(client.post(TASKS, data=b"\xff\xfe", headers={"Content-Type": "application/json"}), 400,
             "VALIDATION_ERROR", "body")


def test_oversized_body_is_413(client):
    body = b'{"business_context": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    response = client.post(TASKS, data=body, headers={"Content-Type": "application/json"})
    error_of(response, 413, "PAYLOAD_TOO_LARGE")


def test_unknown_routes_and_methods_answer_json(client):
    error_of(client.get("/api/v0/no/such/route"), 404, "NOT_FOUND")
    error_of(client.put(TASKS), 405, "METHOD_NOT_ALLOWED")
    error_of(client.get(f"{TASKS}/task_20990101_000000"), 404, "TASK_NOT_FOUND", "task_id")
    error_of(client.get(f"{TASKS}/..%2F..%2Fetc%2Fpasswd"), 404, "NOT_FOUND")
    error_of(client.get(f"{TASKS}/..%2e%2e"), 404, "TASK_NOT_FOUND", "task_id")


def test_get_task_status_fields(store_client):
    task_id = create_task(store_client, task_name="状态字段")
    data = get_task(store_client, task_id)
    for field in ("task_id", "task_name", "status", "step_status", "created_at", "started_at", "completed_at",
                  "parameters", "current_step", "total_steps", "steps", "error_message", "db_name",
                  "business_context"):
        assert field in data
    assert [s["step_name"] for s in data["steps"]] == ["ddl_generation", "qa_generation", "sql_validation",
                                                      "training_load"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", data["created_at"])


def test_list_tasks_total_counts_all_matches(store_client):
    created = [create_task(store_client, task_name=f"列表{i}", created_by="lister") for i in range(5)]
    page = store_client.get(TASKS, query_string={"limit": 2, "offset": 0, "status": "pending"}).get_json()["data"]
    assert page["limit"] == 2 and page["offset"] == 0
    assert len(page["tasks"]) == 2
    assert page["total"] >= 5
    item = page["tasks"][0]
    for field in ("task_id", "task_name", "status", "step_status", "created_at", "started_at", "completed_at",
                  "created_by", "db_name", "business_context", "directory_exists", "updated_at"):
        assert field in item
    everything = store_client.get(TASKS, query_string={"limit": 100}).get_json()["data"]
    ids = {t["task_id"] for t in everything["tasks"]}
    assert set(created) <= ids or everything["total"] > 100


@pytest.mark.parametrize("params, param", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "abc"}, "limit"),
    ({"offset": -1}, "offset"), ({"status": "running"}, "status"), ({"status": "DROP TABLE"}, "status"),
    ({"bogus": "1"}, "bogus"),
])
def test_list_tasks_rejects_bad_query(client, params, param):
    error_of(client.get(TASKS, query_string=params), 400, "VALIDATION_ERROR", param)


def test_query_tasks_filters_sort_and_pagination(store_app, store_client):
    backend = store_app.backend
    marker = f"查询{backend}"
    ids = [create_task(store_client, task_name=f"{marker}_{i}", created_by=f"qa-{backend}", db_name="query_db")
           for i in range(3)]
    create_task(store_client, task_name=f"{marker}_other", created_by="someone-else", db_name="query_db")
    response = store_client.post(f"{TASKS}/query", json={
        "page": 1, "page_size": 2, "task_name": marker, "created_by": f"qa-{backend}", "db_name": "query_db",
        "status": "pending", "created_time_start": "2000-01-01T00:00:00", "created_time_end": "2999-12-31 23:59:59",
        "sort_by": "task_name", "sort_order": "asc"})
    assert response.status_code == 200, text_of(response)
    data = response.get_json()["data"]
    assert data["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2,
                                  "has_next": True, "has_prev": False}
    assert [t["task_name"] for t in data["tasks"]] == [f"{marker}_0", f"{marker}_1"]
    assert re.fullmatch(r"\d+\.\d{3}s", data["query_time"])
    second = store_client.post(f"{TASKS}/query", json={
        "page": 2, "page_size": 2, "task_name": marker, "created_by": f"qa-{backend}", "sort_by": "task_name",
        "sort_order": "asc"}).get_json()["data"]
    assert [t["task_id"] for t in second["tasks"]] == [ids[2]]
    assert second["pagination"]["has_prev"] is True and second["pagination"]["has_next"] is False
    future = store_client.post(f"{TASKS}/query", json={"task_name": marker,
                                                       "created_time_start": "2999-01-01"}).get_json()["data"]
    assert future["pagination"]["total"] == 0 and future["tasks"] == []


def test_query_task_name_is_literal_not_a_pattern(store_client):
    create_task(store_client, task_name="100%_literal")
    create_task(store_client, task_name="100x literal")
    found = store_client.post(f"{TASKS}/query", json={"task_name": "100%_"}).get_json()["data"]["tasks"]
    assert {t["task_name"] for t in found} == {"100%_literal"}


@pytest.mark.parametrize("payload, param", [
    ({"page_size": 0}, "page_size"), ({"page_size": 10000}, "page_size"), ({"page": 0}, "page"),
    ({"page": "1"}, "page"), ({"status": "unknown"}, "status"), ({"sort_by": "password"}, "sort_by"),
    ({"sort_order": "sideways"}, "sort_order"), ({"created_time_start": "yesterday"}, "created_time_start"),
])
def test_query_tasks_rejects_bad_parameters(client, payload, param):
    error_of(client.post(f"{TASKS}/query", json=payload), 400, "VALIDATION_ERROR", param)


def test_fifty_concurrent_creates_get_distinct_ids(store_app):
    """Concurrent requests (threads of one process, as the server's are) never share a task id."""
    probe = create_task(store_app.test_client(), task_name="probe")

    def create(i):
        return store_app.test_client().post(TASKS, json={"task_name": f"并发{i}"})

    def read(_):
        return store_app.test_client().get(f"{TASKS}/{probe}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
        creates = [pool.submit(create, i) for i in range(50)]
        reads = [pool.submit(read, i) for i in range(50)]
        created = [f.result() for f in creates]
        read_back = [f.result() for f in reads]
    assert all(r.status_code == 201 for r in created), [text_of(r) for r in created if r.status_code != 201]
    ids = [r.get_json()["data"]["task_id"] for r in created]
    assert len(set(ids)) == 50
    assert all(r.status_code == 200 for r in read_back)
    for task_id in ids:
        assert (training_data_dir(store_app) / task_id).is_dir()


def test_delete_task_removes_rows_and_directory(store_app, store_client):
    task_id = create_task(store_client, task_name="待删除")
    directory = training_data_dir(store_app) / task_id
    assert directory.is_dir()
    response = store_client.delete(f"{TASKS}/{task_id}")
    assert response.status_code == 200 and response.get_json()["data"]["deleted"] is True
    assert not directory.exists()
    error_of(store_client.get(f"{TASKS}/{task_id}"), 404, "TASK_NOT_FOUND")
    error_of(store_client.delete(f"{TASKS}/{task_id}"), 404, "TASK_NOT_FOUND")


def test_openapi_document_is_valid_and_covers_every_route(client):
    from openapi_spec_validator import validate

    document = client.get("/api/v0/openapi.json").get_json()
    validate(document)
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    import data_pipeline.api as api_package
    from data_pipeline.api.endpoints import declared_endpoints
    expected = set()
    for module_name in api_package.BLUEPRINT_MODULES:
        module = __import__(f"data_pipeline.api.{module_name}", fromlist=["bp"])
        for spec in declared_endpoints(module.bp):
            expected.add((re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", spec.rule), spec.method))
    assert expected and expected <= documented
    schemas = document["components"]["schemas"]
    for request in ("CreateTaskRequest", "ExecuteTaskRequest"):
        assert schemas[request]["properties"]["validate_by_execution"], request
    assert "queued" in schemas["TaskStatus"]["enum"]
    assert schemas["TaskStatusBody"]["properties"]["queue_position"]["type"] == ["integer", "null"]
    assert set(schemas["ExecutionStarted"]["properties"]["status"]["enum"]) == {"queued", "in_progress"}
    codes = schemas["TaskErrorCode"]["enum"]
    assert {"WORKER_LOST", "EXECUTOR_KILLED", "VECTOR_BACKUP_FAILED", "DATABASE_CONNECTION_ERROR",
            "LLM_ERROR"} <= set(codes)
    assert all(f"`{code}`" in schemas["TaskErrorCode"]["description"] for code in codes if code)
    assert schemas["TaskStatusBody"]["properties"]["error_code"] == {"$ref": "#/components/schemas/TaskErrorCode"}
    status_read = document["paths"]["/api/v0/data_pipeline/tasks/{task_id}"]["get"]["responses"]["200"]
    assert status_read["content"]["application/json"]["schema"]["properties"]["data"] == {
        "$ref": "#/components/schemas/TaskStatusBody"}


def test_no_password_in_any_log_file(embedded_api):
    """A server process writes its own log files: none of them, nor any task file, holds a password."""
    api = embedded_api
    api.create_task(db_connection=f"postgresql://u:{SECRET}@127.0.0.1:1/nowhere")
    api.post(TASKS, json={"db_connection": f"postgresql://u:{SECRET}@[bad"})
    for path in list(api.log_dir.rglob("*")) + list(api.training_data_dir.rglob("*")):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
