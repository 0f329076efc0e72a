"""The guide's own workflows (§8.1 complete, §8.2 vector management, §8.3 step by step) end to end
on the embedded default: real steps, demo database, offline generator, hash embeddings."""
from __future__ import annotations

import json

TASKS = "/api/v0/data_pipeline/tasks"
DEMO_TABLES = ["bss_business_day_data", "bss_car_day_count", "bss_company", "bss_section_route",
               "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]
ALL_STEPS = {"ddl_generation": "completed", "qa_generation": "completed", "sql_validation": "completed",
             "training_load": "completed"}


def test_complete_workflow_as_in_section_8_1(embedded_api):
    api = embedded_api
    (api.training_data_dir / "tables.txt").write_text(
        "# 服务区相关表\n" + ",".join(DEMO_TABLES) + "\n", encoding="utf-8")
    created = api.post(TASKS, json={"table_list_file": "tables.txt", "business_context": "高速公路服务区管理系统",
                                    "db_name": "highway_db", "task_name": "高速公路数据处理",
                                    "backup_vector_tables": False, "truncate_vector_tables": False})
    assert created.status_code == 201, created.text
    task_id = created.json()["data"]["task_id"]
    started = api.execute(task_id, execution_mode="complete", backup_vector_tables=False,
                          truncate_vector_tables=False)
    assert started.status_code == 202 and started.json()["message"] == "任务执行已启动"
    task = api.wait_for(task_id, timeout=300)
    assert task["status"] == "completed", task
    assert task["step_status"] == ALL_STEPS
    results = {s["step_name"]: s["result"] for s in task["steps"]}
    assert results["ddl_generation"]["processed_successfully"] == len(DEMO_TABLES)
    assert results["qa_generation"]["total_questions"] >= 50
    assert results["sql_validation"]["invalid_sql_count"] == 0
    assert results["training_load"]["total_records"] > results["qa_generation"]["total_questions"]

    files = api.get(f"{TASKS}/{task_id}/files").json()["data"]["files"]
    primary = [f for f in files if f["is_primary"]]
    assert len(primary) == 1 and primary[0]["file_name"].startswith("qs_highway_db_")
    download = api.get(primary[0]["download_url"])
    assert download.status_code == 200
    pairs = json.loads(download.content)
    assert len(pairs) == results["qa_generation"]["total_questions"]
    assert all(set(p) == {"question", "sql"} for p in pairs)
    names = {f["file_name"] for f in files}
    for table in DEMO_TABLES:
        assert {f"{table}.ddl", f"{table}_detail.md"} <= names
    assert {"metadata.txt", "metadata_detail.md", "db_query_decision_prompt.txt", "task_config.json",
            "task_result.json", "data_pipeline.log"} <= names


def test_vector_management_as_in_section_8_2(embedded_api):
    api = embedded_api
    task_id = api.create_task(business_context="高速公路服务区管理系统", db_name="highway_db",
                              task_name="高速公路数据处理_清空vector", truncate_vector_tables=True,
                              enable_sql_validation=False)
    api.set_table_list(task_id, ["bss_company", "bss_service_area"])
    assert api.execute(task_id, execution_mode="complete", truncate_vector_tables=True).status_code == 202
    task = api.wait_for(task_id, timeout=300)
    assert task["status"] == "completed", task
    load = next(s for s in task["steps"] if s["step_name"] == "training_load")["result"]
    assert load["vector_management"]["backup_performed"] is True
    assert load["vector_management"]["truncate_performed"] is True
    files = api.get(f"{TASKS}/{task_id}/files").json()["data"]["files"]
    backups = [f for f in files if "langchain_" in f["file_name"]]
    assert {f["file_name"].split("/")[0] for f in backups} == {"vector_bak"}
    assert len(backups) == 2
    for backup in backups:
        assert api.get(backup["download_url"]).status_code == 200


def test_step_by_step_as_in_section_8_3(embedded_api):
    api = embedded_api
    created = api.post(TASKS, json={"business_context": "测试系统", "db_name": "test_db", "task_name": "测试任务"})
    task_id = created.json()["data"]["task_id"]
    upload = api.post(f"{TASKS}/{task_id}/upload-table-list",
                      files={"file": ("tables.txt", "bss_company\nbss_service_area\nbss_car_day_count\n")})
    assert upload.status_code == 200, upload.text
    assert upload.json()["data"]["table_count"] == 3
    for step in ("ddl_generation", "qa_generation", "sql_validation", "training_load"):
        response = api.execute(task_id, execution_mode="step", step_name=step)
        assert response.status_code == 202, response.text
        task = api.wait_for(task_id, timeout=300)
        assert task["step_status"][step] == "completed", task
        assert task["status"] == ("completed" if step == "training_load" else "partial_completed")
    pair_file = next(f for f in api.get(f"{TASKS}/{task_id}/files").json()["data"]["files"] if f["is_primary"])
    assert pair_file["file_name"].startswith("qs_test_db_")
