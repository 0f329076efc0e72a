"""The execution check of sql_validation (issue 16) on real PostgreSQL: an uploaded pair file with a
filter on a value that does not exist and one with a division by zero are caught; the LLM repairs
what it can; nothing the statement check refused is run; validate_by_execution=false turns it off;
the quality report counts what the validation report says."""
from __future__ import annotations

import json
import time

from data_pipeline.llm.client import LLMClient
from data_pipeline.steps import sql_validation
from data_pipeline.validation.outcome import ErrorClass
from tests.support.fake_llm import FakeLLMServer, Reply
from tests.support.pair_quality import recount_validation
from tests.support.task_runs import make_task, task_dir
from tests.support.waiting import wait_until
from tests.test_sql_validation import SHOP_DDL, SHOP_SQL, make_context, read_report, table_state, write_pairs

JOIN = "FROM sale s JOIN shop p ON s.shop_id = p.id"
PAIRS = [
    {"question": "店铺“庐山店”的销售额合计是多少？", "sql": f"SELECT SUM(s.amount) AS 销售额 {JOIN} WHERE p.shop_name = '庐山店'"},
    {"question": "店铺“南昌店”的销售记录", "sql": f"SELECT s.* {JOIN} WHERE p.shop_name = '南昌店'"},
    {"question": "每笔销售的单位金额", "sql": "SELECT id, amount / (amount - amount) AS 单位金额 FROM sale"},
    {"question": "2030年以后的销售", "sql": "SELECT * FROM sale WHERE sale_date > DATE '2030-01-01'"},
    {"question": "先查后删", "sql": "SELECT 1; DELETE FROM sale"},
    {"question": "慢查询", "sql": "SELECT pg_sleep(3), id FROM sale"},
    {"question": "各店铺所在城市的编号", "sql": "SELECT shop_name, CAST(city AS integer) AS 城市编号 FROM shop"},
]


def test_missing_value_and_division_by_zero_are_caught_and_removed(make_local_db, tmp_path):
    db_url = make_local_db(SHOP_SQL)
    before = table_state(db_url)
    pair_path = write_pairs(tmp_path, PAIRS)
    result = sql_validation.run(make_context(tmp_path, db_url, enable_llm_repair=False))
    report = read_report(tmp_path, result)
    assert table_state(db_url) == before

    assert report[0]["valid"] and report[0]["executed"] and report[0]["row_count"] == 1
    assert report[1]["error_class"] == ErrorClass.EMPTY_RESULT and report[1]["empty_result"]
    assert report[1]["explain_valid"] and report[1]["row_count"] == 0 and "南昌店" in report[1]["error"]
    assert report[2]["error_class"] == ErrorClass.EXECUTION and "division by zero" in report[2]["error"]
    assert report[2]["explain_valid"] and not report[2]["executed"]
    # An empty result the question names no value for is an answer, not an error.
    assert report[3]["valid"] and report[3]["executed"] and report[3]["row_count"] == 0
    # A value read from a row (it could be a secret column's) is not quoted back from the error.
    assert report[6]["error_class"] == ErrorClass.EXECUTION and "invalid input syntax" in report[6]["error"]
    assert "九江" not in json.dumps(report, ensure_ascii=False) and "宜春\"" not in report[6]["error"]
    # Refused by the statement check: never EXPLAINed, never run.
    for entry in report[4:6]:
        assert not entry["valid"] and not entry["explain_valid"] and not entry["executed"]
        assert entry["row_count"] is None and entry["time"] < 1
    assert [e["removed"] for e in report] == [False, True, True, False, True, True, True]
    assert result["execution_check"] == {"enabled": True, "executed": 3, "failed": 2, "empty_results": 1}

    kept = json.loads(pair_path.read_text(encoding="utf-8"))
    assert kept == [PAIRS[0], PAIRS[3]]
    quality = json.loads((tmp_path / "quality_report.json").read_text(encoding="utf-8"))
    assert quality["validation"] == recount_validation(tmp_path) == {
        "explain_valid": 5, "executed": 3, "empty_results": 1, "repaired": 0, "removed": 5}
    assert "| 5 | 3 | 1 | 0 | 5 |" in (tmp_path / "quality_report.md").read_text(encoding="utf-8")


def test_the_llm_repairs_an_execution_failure_with_the_reason(make_local_db, tmp_path):
    db_url = make_local_db(SHOP_SQL)
    (tmp_path / "sale.ddl").write_text(SHOP_DDL, encoding="utf-8")
    write_pairs(tmp_path, PAIRS[1:3])

    def responder(request):
        prompt = request["messages"][-1]["content"]
        if "division by zero" in prompt:
            return Reply(content='{"sql": "SELECT id, amount / NULLIF(amount - amount, 0) AS 单位金额 FROM sale"}')
        return Reply(content=json.dumps({"sql": PAIRS[1]["sql"]}))   # the same empty query again

    with FakeLLMServer(responder) as server:
        llm = LLMClient(base_url=server.base_url, model="fake", max_retries=0)
        result = sql_validation.run(make_context(tmp_path, db_url, llm=llm, tables=["sale"]))
        prompts = [r["messages"][-1]["content"] for r in server.chat_requests()]
    report = read_report(tmp_path, result)
    assert any("empty_result" in p and "南昌店" in p for p in prompts)
    assert report[1]["repaired"] and report[1]["valid"] and report[1]["executed"]
    assert not report[0]["repaired"] and report[0]["error_class"] == ErrorClass.EMPTY_RESULT and report[0]["removed"]
    quality = json.loads((tmp_path / "quality_report.json").read_text(encoding="utf-8"))
    assert quality["validation"] == recount_validation(tmp_path)
    assert quality["validation"]["repaired"] == 1 and quality["validation"]["removed"] == 1


def test_validate_by_execution_false_keeps_the_explain_only_check(make_local_db, tmp_path):
    db_url = make_local_db(SHOP_SQL)
    write_pairs(tmp_path, PAIRS[:4])
    result = sql_validation.run(make_context(tmp_path, db_url, enable_llm_repair=False, validate_by_execution=False))
    report = read_report(tmp_path, result)
    assert all(e["valid"] and e["explain_valid"] and not e["executed"] for e in report)
    assert result["execution_check"]["enabled"] is False and result["valid_sql_count"] == 4


UPLOADED = [
    {"question": "公司名称为“南昌分公司”的公司编码是什么？",
     "sql": "SELECT company_no FROM bss_company WHERE company_name = '南昌分公司' AND delete_ts IS NULL"},
    {"question": "公司名称为“北京分公司”的公司编码是什么？",
     "sql": "SELECT company_no FROM bss_company WHERE company_name = '北京分公司' AND delete_ts IS NULL"},
    {"question": "各公司的编码长度比",
     "sql": "SELECT company_name, 100 / (LENGTH(company_no) - LENGTH(company_no)) AS 比值 FROM bss_company"},
]


def test_uploaded_pairs_and_validate_by_execution_through_the_api(embedded_api):
    """Through the API and the executor, real steps on the demo database: the task's
    validate_by_execution=false keeps EXPLAIN only; then a pair file uploaded through the files API
    is validated with an execute request's validate_by_execution=true, which overrides the task's:
    the filter on a company that does not exist and the division by zero are caught and removed."""
    api = embedded_api
    task_id = make_task(api, {}, tables=("bss_company", "bss_service_area"), validate_by_execution=False)
    assert api.execute(task_id).status_code == 202
    assert api.wait_for(task_id)["status"] == "completed"

    def newest_report() -> list[dict]:
        newest = max(task_dir(api, task_id).glob("sql_validation_*_report.json"), key=lambda p: p.stat().st_mtime)
        return json.loads(newest.read_text(encoding="utf-8"))["pairs"]

    first = newest_report()
    assert first and not any(e["executed"] for e in first) and all(e["explain_valid"] for e in first)

    second = int(time.time())
    wait_until(lambda: int(time.time()) > second, what="the next second")   # file names carry the second
    name = "qs_highway_db_20991231_000000_pair.json"
    body = json.dumps(UPLOADED, ensure_ascii=False).encode("utf-8")
    assert api.post(f"/api/v0/data_pipeline/tasks/{task_id}/files", files={"file": (name, body)}).status_code < 300
    started = api.execute(task_id, execution_mode="step", step_name="sql_validation", validate_by_execution=True)
    assert started.status_code == 202 and started.json()["data"]["validate_by_execution"] is True
    assert api.wait_for(task_id)["step_status"]["sql_validation"] == "completed"
    report = newest_report()
    assert [e["error_class"] for e in report] == [None, ErrorClass.EMPTY_RESULT, ErrorClass.EXECUTION]
    assert report[0]["executed"] and report[0]["row_count"] == 1 and "division by zero" in report[2]["error"]
    assert json.loads((task_dir(api, task_id) / name).read_text(encoding="utf-8")) == UPLOADED[:1]
    quality = json.loads((task_dir(api, task_id) / "quality_report.json").read_text(encoding="utf-8"))
    assert quality["pairs_total"] == 1
    # executed: the two that ran to the end (one with no rows)
    assert quality["validation"] == {"explain_valid": 3, "executed": 2, "empty_results": 1, "repaired": 0, "removed": 2}
