"""qa_generation and sql_validation run by the real executor: API server subprocess, real HTTP,
the embedded demo database as the business database, no LLM (the offline generator)."""
from __future__ import annotations

import json

import pytest

from data_pipeline.db.demo_db import DEMO_TABLES
from tests.support.api_server import ApiServer


@pytest.fixture
def real_steps_api(embedded_api):
    """The session's server: a task without a test_control.json runs the real steps, offline."""
    return embedded_api


def run_step(api: ApiServer, task_id: str, step: str) -> dict:
    response = api.execute(task_id, execution_mode="step", step_name=step)
    assert response.status_code == 202, response.text
    task = api.wait_for(task_id)
    assert task["step_status"][step] == "completed", task
    return task


def test_steps_two_and_three_through_the_executor(real_steps_api):
    api = real_steps_api
    task_id = api.create_task(task_name="问答生成与验证", business_context="高速公路服务区管理系统",
                              enable_llm_repair=True, modify_original_file=True)
    api.set_table_list(task_id, list(DEMO_TABLES))
    task_dir = api.training_data_dir / task_id

    run_step(api, task_id, "ddl_generation")
    task = run_step(api, task_id, "qa_generation")
    qa = json.loads((task_dir / "qa_generation_result.json").read_text(encoding="utf-8"))
    assert qa["output_file"].startswith("qs_highway_db_") and "/" not in qa["output_file"]
    assert qa["total_themes"] == len(DEMO_TABLES) and qa["failed_themes"] == []
    assert qa["total_questions"] >= 10 * (len(DEMO_TABLES) - 1)
    qa_step = next(s for s in task["steps"] if s["step_name"] == "qa_generation")
    assert qa_step["result"]["output_file"] == qa["output_file"]

    run_step(api, task_id, "sql_validation")
    validation = json.loads((task_dir / "sql_validation_result.json").read_text(encoding="utf-8"))
    assert validation["original_sql_count"] == validation["valid_sql_count"] == qa["total_questions"]
    assert (task_dir / validation["summary_file"]).is_file() and (task_dir / validation["report_file"]).is_file()
    assert not (task_dir / (qa["output_file"] + ".backup")).exists(), "nothing to change, nothing rewritten"

    log = (task_dir / "data_pipeline.log").read_text(encoding="utf-8")
    assert "qa_generation.QAGenerator: 问答对生成完成" in log
    assert "sql_validation.SQLValidator: SQL验证完成" in log
