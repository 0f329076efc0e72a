"""Task logs (guide §5.1, §5.2) over real HTTP, on a log written by real executor runs: a complete
run of the four steps and a failing step run with a traceback. Every answer is compared with a
brute-force reading of the same file, downloaded through the files API. The request checks and the
missing log run in-process (Flask's test client)."""
from __future__ import annotations

import pytest

from data_pipeline.logs import LogQuery
from data_pipeline.timeutil import parse_time
from tests.support.envelope import data_of, error_of
from tests.support.in_process import create_task, training_data_dir
from tests.support.task_runs import make_task, task_dir, write_control
from tests.test_logs_reader import brute_force_entries, brute_force_query

TASKS = "/api/v0/data_pipeline/tasks"
STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")


@pytest.fixture(scope="module")
def executed(embedded_api):
    """A complete run of the real steps on the demo database (training_load controlled until it
    exists; it waits a little so the log spans several seconds), then a failing step run."""
    api = embedded_api
    task_id = make_task(api, {"training_load": {"sleep": 1.2}}, tables=("bss_company", "bss_service_area", "bss_car_day_count"))
    assert api.execute(task_id).status_code == 202
    assert api.wait_for(task_id)["status"] == "completed"
    write_control(api, task_id, {"training_load": {"raise": "unexpected 异常"}})
    assert api.execute(task_id, execution_mode="step", step_name="training_load").status_code == 202
    assert api.wait_for(task_id)["status"] == "failed"
    downloaded = api.get(f"{TASKS}/{task_id}/files/data_pipeline.log")
    assert downloaded.status_code == 200
    return api, task_id, brute_force_entries(downloaded.text)


@pytest.fixture(scope="module")
def logged_task(web_app) -> str:
    """A task created in-process: its log holds the creation entries (for the request checks)."""
    client = web_app.test_client()
    task_id = create_task(client, task_name="日志校验")
    assert (training_data_dir(web_app) / task_id / "data_pipeline.log").is_file()
    return task_id


def query(api, task_id: str, **body) -> dict:
    response = api.post(f"{TASKS}/{task_id}/logs/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_step_name_returns_exactly_each_steps_entries(executed):
    api, task_id, entries = executed
    seen = 0
    real_loggers = {"ddl_generation": "DDLGenerator", "qa_generation": "QAGenerator", "sql_validation": "SQLValidator",
                    "training_load": "ControlledStep"}
    for step in STEPS:
        data = query(api, task_id, step_name=step, page_size=1000)
        expected = [e for e in entries if e["step"] == step]
        assert expected and data["pagination"]["total"] == len(expected)
        assert all(e["step"] == step for e in data["logs"])
        assert real_loggers[step] in {e["logger"] for e in data["logs"]}
        assert sorted(e["line_number"] for e in data["logs"]) == [e["line_number"] for e in expected]
        seen += len(expected)
    without_step = [e for e in entries if e["step"] is None]
    assert seen + len(without_step) == len(entries)
    assert {e["logger"] for e in without_step} >= {"WorkflowOrchestrator", "TaskExecutor", f"TaskDir_{task_id}"}


def filter_cases(entries: list[dict]) -> list[dict]:
    stamps = sorted({e["timestamp"] for e in entries})
    middle = stamps[len(stamps) // 2]
    return [
        {},
        {"level": "ERROR"},
        {"level": "info"},
        {"keyword": "已生成"},
        {"keyword": "SELECT"},
        {"keyword": "runtimeerror: UNEXPECTED"},
        {"keyword": "异常"},
        {"keyword": "WorkflowOrchestrator"},
        {"logger_name": "DDLGenerator"},
        {"logger_name": "qa_generation.QAGenerator"},
        {"logger_name": "ControlledStep"},
        {"logger_name": "training_load.WorkflowOrchestrator"},
        {"logger_name": "TaskExecutor"},
        {"start_time": middle.replace(" ", "T")},
        {"end_time": middle},
        {"start_time": stamps[0], "end_time": stamps[-1].replace(" ", "T")},
        {"start_time": stamps[1].replace(" ", "T") + "+00:00"},
        {"step_name": "training_load", "level": "ERROR", "keyword": "Traceback"},
        {"step_name": "ddl_generation", "logger_name": "DDLGenerator", "end_time": stamps[-1]},
        {"step_name": "sql_validation", "keyword": "有效"},
        {"keyword": "", "logger_name": "", "level": "", "step_name": ""},
    ]


def test_every_filter_and_sort_matches_the_file(executed):
    api, task_id, entries = executed
    for filters in filter_cases(entries):
        for sort_by in ("timestamp", "level", "logger", "step", "line_number"):
            for sort_order in ("asc", "desc"):
                for page in (1, 2):
                    body = {**filters, "page": page, "page_size": 5, "sort_by": sort_by, "sort_order": sort_order}
                    data = query(api, task_id, **body)
                    typed = {k: (parse_time(v) if k.endswith("_time") else v) for k, v in body.items() if v != ""}
                    total, expected = brute_force_query(entries, LogQuery(**typed))
                    assert data["pagination"]["total"] == total, body
                    assert data["logs"] == expected, body
                    pages = -(-total // 5)
                    assert data["pagination"] == {"page": page, "page_size": 5, "total": total, "total_pages": pages,
                                                  "has_next": page < pages, "has_prev": page > 1}


def test_query_result_block(executed):
    api, task_id, entries = executed
    data = query(api, task_id)
    info = data["log_file_info"]
    path = task_dir(api, task_id) / "data_pipeline.log"
    assert info == {"exists": True, "file_path": str(path), "file_size": path.stat().st_size,
                    "last_modified": info["last_modified"]}
    assert data["query_time"].endswith("s") and float(data["query_time"][:-1]) >= 0
    assert data["pagination"]["page_size"] == 50 and data["logs"][0]["line_number"] == entries[-1]["line_number"]
    error = query(api, task_id, level="ERROR")["logs"][0]
    assert error["step"] == "training_load" and error["logger"] == "WorkflowOrchestrator"
    assert "\n    Traceback" not in error["message"] and "\nTraceback (most recent call last):" in error["message"]
    assert error["message"].endswith("RuntimeError: unexpected 异常")


def test_recent_logs_from_the_end(executed):
    api, task_id, entries = executed
    plain = [{k: v for k, v in e.items() if k != "line_number"} for e in entries]
    response = api.get(f"{TASKS}/{task_id}/logs", params={"limit": 5})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["logs"] == plain[-5:] and data["total"] == 5
    assert data["source"] == "file" and data["log_file"].endswith(f"{task_id}/data_pipeline.log")
    everything = api.get(f"{TASKS}/{task_id}/logs").json()["data"]
    assert everything["logs"] == plain[-100:]
    errors = api.get(f"{TASKS}/{task_id}/logs", params={"level": "error"}).json()["data"]["logs"]
    assert errors == [e for e in plain if e["level"] == "ERROR"] and "Traceback" in errors[0]["message"]
    assert api.get(f"{TASKS}/{task_id}/logs", params={"level": "CRITICAL"}).json()["data"]["logs"] == []


@pytest.mark.parametrize("params, param", [
    ({"limit": 1001}, "limit"),
    ({"limit": 0}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"level": "VERBOSE"}, "level"),
    ({"other": 1}, "other"),
])
def test_recent_logs_validation(client, logged_task, params, param):
    error_of(client.get(f"{TASKS}/{logged_task}/logs", query_string=params), 400, "VALIDATION_ERROR", param)


@pytest.mark.parametrize("body, param", [
    ({"page_size": 1001}, "page_size"),
    ({"page": 0}, "page"),
    ({"page": 5000, "page_size": 100}, "page"),
    ({"sort_by": "message"}, "sort_by"),
    ({"sort_order": "random"}, "sort_order"),
    ({"step_name": "ddl"}, "step_name"),
    ({"level": "LOUD"}, "level"),
    ({"start_time": "yesterday"}, "start_time"),
    ({"start_time": "2025-07-02T00:00:00", "end_time": "2025-07-01 00:00:00"}, "start_time"),
    ({"keyword": 5}, "keyword"),
    ({"keyword": "a\nb"}, "keyword"),
    ({"page": "1"}, "page"),
])
def test_log_query_validation(client, logged_task, body, param):
    error_of(client.post(f"{TASKS}/{logged_task}/logs/query", json=body), 400, "VALIDATION_ERROR", param)


def test_missing_log_and_unknown_task(web_app, client):
    task_id = create_task(client, task_name="没有日志")
    (training_data_dir(web_app) / task_id / "data_pipeline.log").unlink()
    recent = data_of(client.get(f"{TASKS}/{task_id}/logs"))
    assert recent["logs"] == [] and recent["exists"] is False
    data = data_of(client.post(f"{TASKS}/{task_id}/logs/query", json={"keyword": "x"}))
    assert data["logs"] == [] and data["pagination"]["total"] == 0
    assert data["log_file_info"]["exists"] is False and data["log_file_info"]["file_size"] == 0
    error_of(client.get(f"{TASKS}/task_20000101_000000/logs"), 404, "TASK_NOT_FOUND")
    error_of(client.post(f"{TASKS}/task_20000101_000000/logs/query", json={}), 404, "TASK_NOT_FOUND")
    error_of(client.get(f"{TASKS}/not-a-task/logs"), 404, "TASK_NOT_FOUND")
