"""The guide's own Python client (§8.6 `DataPipelineAPI` and its `run_data_pipeline_workflow()`
example), run as printed in the guide against a real server on the demo database.

The code is read from the guide itself, not copied: if the guide and the server drift apart, this
test says so. The example's only fixed points are its base URL (the class's default argument,
pointed at the test server) and the relative `tables.txt` (project root, else training data dir).
"""
from __future__ import annotations

import json
import re

import pytest

from tests.conftest import SHARED_DIR
from tests.support.api_server import PROJECT_ROOT
from tests.support.console_support import DEMO_TABLES, real_steps_available, require_routes

GUIDE = SHARED_DIR / "spec" / "data_pipeline_api_guide.zh.md"
TABLES_FILE = PROJECT_ROOT / "tables.txt"


def guide_section_8_6() -> str:
    if not GUIDE.is_file():
        pytest.skip(f"the API guide is not at {GUIDE} (../shared is absent)")
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("### 8.6 Python客户端示例"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def guide_namespace():
    namespace = {"__name__": "guide_section_8_6"}  # not "__main__": the example does not start by itself
    exec(compile(guide_section_8_6(), str(GUIDE), "exec"), namespace)
    return namespace


@pytest.fixture
def server(embedded_api):
    # Without a test_control.json in the task directory the executor runs the real steps, which
    # the example needs (it leaves no room for test controls).
    return embedded_api


@pytest.fixture
def tables_file(server):
    """`tables.txt` with the demo tables, where the server finds the example's relative name: the
    project root first (a file there with other tables is the user's: left alone, test skipped),
    else the training data directory."""
    if TABLES_FILE.exists():
        if set(TABLES_FILE.read_text(encoding="utf-8").split()) != set(DEMO_TABLES):
            pytest.skip(f"{TABLES_FILE} exists with other tables (yours?); the §8.6 example would read it")
        return TABLES_FILE
    path = server.training_data_dir / "tables.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in DEMO_TABLES), encoding="utf-8")
    return path


def test_guide_class_methods(guide_namespace, server):
    api = guide_namespace["DataPipelineAPI"](server.url)
    created = api.create_task(task_name="指南客户端", business_context="高速公路服务区管理系统", db_name="highway_db")
    task_id = created["data"]["task_id"]
    assert created["success"] is True and created["code"] == 201
    status = api.get_task_status(task_id)
    assert status["data"]["status"] == "pending" and status["data"]["task_name"] == "指南客户端"
    with pytest.raises(Exception) as caught:  # the guide's class raises requests' HTTPError on errors
        api.execute_task(task_id, "step", "no_such_step")
    assert caught.value.response.status_code == 400
    assert caught.value.response.json()["error"]["error_code"] == "INVALID_STEP_NAME"
    with pytest.raises(Exception) as caught:
        api.get_task_status("task_20000101_000000")
    assert caught.value.response.status_code == 404


def test_guide_workflow_example_as_printed(guide_namespace, server, tables_file, tmp_path, monkeypatch, capsys):
    if not real_steps_available():
        pytest.skip("the real steps are not on this branch yet (the example runs the whole workflow)")
    require_routes(server, "GET /api/v0/data_pipeline/tasks/{}/files", "GET /api/v0/data_pipeline/tasks/{}/files/{}",
                   "GET /api/v0/data_pipeline/tasks/{}/logs")
    api_class = guide_namespace["DataPipelineAPI"]
    monkeypatch.setattr(api_class.__init__, "__defaults__", (server.url,))
    monkeypatch.chdir(tmp_path)  # download_file() saves into the current directory

    guide_namespace["run_data_pipeline_workflow"]()

    out = capsys.readouterr().out
    assert "工作流执行失败" not in out, out[-3000:]
    task_id = re.search(r"任务创建成功: (task_\w+)", out).group(1)
    assert "任务执行已启动" in out and "任务状态: completed" in out and "任务执行完成:" in out
    saved = re.search(r"主要输出文件已下载: (.+)", out).group(1).strip()
    pair_file = tmp_path / saved
    assert pair_file.is_file() and pair_file.name.startswith("qs_highway_db_") and pair_file.name.endswith("_pair.json")
    assert pair_file.read_bytes() == (server.training_data_dir / task_id / saved).read_bytes()
    pairs = json.loads(pair_file.read_text(encoding="utf-8"))
    assert pairs and all(pair["question"] and pair["sql"] for pair in pairs)
    assert re.search(rf"^  - {re.escape(saved)} \(\d+(\.\d+)? [KM]?B\)$", out, re.M)  # the file list it printed
    task = server.task(task_id)
    assert task["status"] == "completed" and all(s == "completed" for s in task["step_status"].values())

    logs = api_class().get_task_logs(task_id, limit=10)
    assert logs["success"] is True and 0 < len(logs["data"]["logs"]) <= 10
