"""qa_generation with an LLM: the real `openai` client against the fake OpenAI-compatible server."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psycopg
import pytest

from config import Settings
from data_pipeline.errors import StepFailed
from data_pipeline.llm.client import LLMClient
from data_pipeline.qa.checkpoint import CHECKPOINT_DIR
from data_pipeline.steps import qa_generation
from data_pipeline.steps.context import StepContext
from tests.support.fake_llm import FakeLLMServer, Reply
from tests.test_qa_writers import run_sql_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent

COMPANY_DDL = """-- 中文名: 公司表
-- 描述: 服务区所属公司
create table public.company (
  id varchar(32) not null, -- 公司ID
  company_name varchar(100) not null, -- 公司名称
  delete_ts timestamp, -- 删除时间
  primary key (id)
);
"""
COMPANY_MD = """## company（公司表）
company 表服务区所属公司
字段列表：
- id (varchar(32)) - 公司ID [主键, 非空]
- company_name (varchar(100)) - 公司名称 [非空] [示例: 南昌分公司, 宜春分公司]
- delete_ts (timestamp) - 删除时间
字段补充说明：
- id 为主键
"""
AREA_DDL = """-- 中文名: 服务区表
-- 描述: 服务区基础信息
create table public.service_area (
  id varchar(32) not null, -- 服务区ID
  area_name varchar(100), -- 服务区名称
  company_id varchar(32), -- 所属公司ID
  primary key (id)
  -- foreign key (company_id) references public.company(id)
);
"""
DAY_DDL = """-- 中文名: 日营收表
-- 描述: 服务区每日营收
create table public.day_data (
  id varchar(32) not null, -- 主键ID
  area_id varchar(32), -- 服务区ID
  oper_date date, -- 统计日期
  pay_sum numeric(19,4), -- 支付总金额
  primary key (id)
  -- foreign key (area_id) references public.service_area(id)
);
"""

THEMES = [
    {"topic_name": "公司经营分析", "description": "各公司营收", "related_tables": ["company", "day_data", "service_area"],
     "biz_entities": ["公司"], "biz_metrics": ["营收"]},
    {"topic_name": "服务区分布", "description": "服务区与公司", "related_tables": ["public.service_area", "company"],
     "biz_entities": ["服务区"], "biz_metrics": ["服务区数量"]},
    {"topic_name": "日营收趋势", "description": "按日营收", "related_tables": ["day_data"],
     "biz_entities": ["日期"], "biz_metrics": ["日营收"]},
    {"topic_name": "失败主题", "description": "LLM在这里出错", "related_tables": ["day_data"],
     "biz_entities": [], "biz_metrics": []},
    {"topic_name": "不存在的表", "description": "只涉及未知表，被丢弃", "related_tables": ["nowhere"]},
]
SCOPE = {"summary": "当前数据库存储的是服务区经营的相关数据，包含以下业务数据：",
         "entities": [{"name": "服务区", "description": "高速公路服务区", "fields": ["area_name"]}],
         "metrics": [{"name": "日营收", "description": "每日支付总金额"}]}
PAIRS = {
    "公司经营分析": [
        {"question": "2023年各公司的营收合计是多少？",
         "sql": "SELECT c.company_name, SUM(d.pay_sum) FROM day_data d JOIN service_area s ON d.area_id = s.id "
                "JOIN company c ON s.company_id = c.id GROUP BY c.company_name;"},
        {"question": "有多少家公司？", "sql": "SELECT COUNT(*) FROM company WHERE delete_ts IS NULL;"},
        {"question": "删掉公司", "sql": "DELETE FROM company;"},
        {"question": "两条语句", "sql": "SELECT 1; SELECT 2;"},
        {"question": "公司名称列表", "sql": "SELECT company_name FROM company ORDER BY 1;"},
    ],
    "服务区分布": [
        {"question": "每个公司有几个服务区？",
         "sql": "SELECT c.company_name, COUNT(*) FROM service_area s JOIN company c ON s.company_id = c.id "
                "GROUP BY 1;"},
        {"question": "服务区总数是多少？", "sql": "SELECT COUNT(*) FROM service_area;"},
    ],
    "日营收趋势": [
        {"question": "2023年 各公司的营收合计是多少", "sql": "SELECT 1;"},   # a near-duplicate of the first
        {"question": "2024年各公司的营收合计是多少？", "sql": "SELECT 2;"},   # another year: not a duplicate
        {"question": "每天的营收合计", "sql": "SELECT oper_date, SUM(pay_sum) FROM day_data GROUP BY 1 ORDER BY 1;"},
    ],
    "失败主题": [{"question": "最近一天的营收是多少？",
                  "sql": "SELECT SUM(pay_sum) FROM day_data WHERE oper_date = (SELECT MAX(oper_date) FROM day_data);"}],
}


class ScriptedLLM:
    """Answers by what the prompt asks; records what was asked and how many calls overlapped."""

    def __init__(self, failing: set[str] = frozenset(), delay: float = 0.0):
        self.failing = set(failing)
        self.delay = delay
        self.theme_prompts: dict[str, str] = {}
        self.kinds: list[str] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, request) -> Reply:
        prompt = request["messages"][-1]["content"]
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            topic = re.search(r"分析主题：(.+)\n", prompt)
            if topic:
                name = topic.group(1)
                with self._lock:
                    self.kinds.append(f"pairs:{name}")
                    self.theme_prompts[name] = prompt
                if name in self.failing:
                    return Reply(status=500)
                return Reply(content="```json\n" + json.dumps(PAIRS[name], ensure_ascii=False) + "\n```")
            if "归纳出" in prompt:
                self.kinds.append("themes")
                return Reply(content=json.dumps({"themes": THEMES}, ensure_ascii=False))
            self.kinds.append("scope")
            return Reply(content="好的，业务范围如下：" + json.dumps(SCOPE, ensure_ascii=False))
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def task_dir(tmp_path) -> Path:
    (tmp_path / "company.ddl").write_text(COMPANY_DDL, encoding="utf-8")
    (tmp_path / "company_detail.md").write_text(COMPANY_MD, encoding="utf-8")
    (tmp_path / "service_area.ddl").write_text(AREA_DDL, encoding="utf-8")
    (tmp_path / "day_data.ddl").write_text(DAY_DDL, encoding="utf-8")
    return tmp_path


def make_context(task_dir: Path, server: FakeLLMServer, *, concurrency: int = 3,
                 db_url: str = "postgresql://postgres@127.0.0.1:1/unused", step_timeout: float = 1800.0) -> StepContext:
    settings = Settings().with_overrides(llm_base_url=server.base_url, llm_model="fake", llm_concurrency=concurrency,
                                         qa_theme_count=4, qa_pairs_per_theme=3, llm_step_timeout=step_timeout)
    llm = LLMClient(base_url=server.base_url, model="fake", max_retries=0, concurrency=concurrency)
    return StepContext(task_id="task_test", task_dir=task_dir, settings=settings,
                       db_url=db_url, db_name="service_db",
                       business_context="高速公路服务区管理系统", tables=["company", "service_area", "day_data"],
                       params={}, llm=llm)


def test_a_failing_theme_gets_offline_pairs_and_is_counted(task_dir, make_local_db, caplog):
    llm = ScriptedLLM(failing={"失败主题"}, delay=0.2)
    db_url = make_local_db(COMPANY_DDL + AREA_DDL + DAY_DDL)
    with FakeLLMServer(llm) as server:
        ctx = make_context(task_dir, server, db_url=db_url)
        progress = []
        ctx.report_progress = lambda done, total, unit: progress.append((done, total, unit))
        with caplog.at_level(logging.INFO):
            result = qa_generation.run(ctx)

    assert result["total_themes"] == result["successful_themes"] == 4 and result["failed_themes"] == []
    assert result["llm_fallbacks"] == 1 and result["llm_fallback_parts"] == ["主题问答对「失败主题」"]
    assert "主题问答对「失败主题」：LLM的回答无法使用，改用离线生成" in caplog.text
    assert not Path(result["output_file"]).is_absolute() and result["output_file"].startswith("qs_service_db_")
    pairs = json.loads((task_dir / result["output_file"]).read_text(encoding="utf-8"))
    questions = [p["question"] for p in pairs]
    assert questions[:7] == ["2023年各公司的营收合计是多少？", "有多少家公司？", "公司名称列表",
                             "每个公司有几个服务区？", "服务区总数是多少？",
                             "2024年各公司的营收合计是多少？", "每天的营收合计"]
    offline = pairs[7:]
    assert len(offline) == 3 and all("day_data" in p["sql"] for p in offline), offline
    assert result["total_questions"] == 10 and result["duplicates_removed"] == 1
    assert progress[-1] == (4, 4, "themes")

    # Each theme's prompt carries its own tables and no others.
    area_prompt = llm.theme_prompts["服务区分布"]
    assert "create table public.service_area" in area_prompt and "## company（公司表）" in area_prompt
    assert "day_data" not in area_prompt
    assert "company" not in llm.theme_prompts["日营收趋势"]
    assert 1 < llm.max_in_flight <= 3, "themes (and the scope with the theme plan) run concurrently, bounded"

    # metadata.txt lists the themes and runs as SQL.
    run_sql_file(db_url, task_dir / "metadata.txt")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select topic_name, related_tables from metadata order by id").fetchall()
    assert rows == [("公司经营分析", ["company", "day_data", "service_area"]),
                    ("服务区分布", ["service_area", "company"]), ("日营收趋势", ["day_data"]),
                    ("失败主题", ["day_data"])]
    assert (task_dir / "db_query_decision_prompt.txt").read_text(encoding="utf-8") == (
        "=== 数据库业务范围 ===\n当前数据库存储的是服务区经营的相关数据，包含以下业务数据：\n核心业务实体：\n"
        "- 服务区：高速公路服务区，主要字段：area_name\n关键业务指标：\n- 日营收：每日支付总金额\n")
    assert not (task_dir / CHECKPOINT_DIR).exists()


def test_after_the_step_timeout_the_rest_of_the_step_falls_back(task_dir, make_local_db):
    quick = ScriptedLLM()

    def slow_pairs(request):
        reply = quick(request)
        if "分析主题：" in request["messages"][-1]["content"]:
            reply.delay = 2.0
        return reply

    with FakeLLMServer(slow_pairs) as server:
        started = time.monotonic()
        result = qa_generation.run(make_context(task_dir, server, step_timeout=0.8,
                                                db_url=make_local_db(COMPANY_DDL + AREA_DDL + DAY_DDL)))
        elapsed = time.monotonic() - started
    assert result["generator"] == "llm", "the plan came in time"
    assert result["llm_fallbacks"] == 4 and all(p.startswith("主题问答对") for p in result["llm_fallback_parts"])
    assert result["total_questions"] > 0
    assert elapsed < 2.0, "no theme waited for its slow answer"


@pytest.mark.parametrize("status, reason", [(500, "无法连接"), (401, "拒绝了全部")])
def test_a_model_that_cannot_be_reached_or_refuses_every_call_fails_the_step(task_dir, status, reason):
    with FakeLLMServer(lambda request: Reply(status=status)) as server:
        with pytest.raises(StepFailed, match=f"业务主题提取失败: LLM服务{reason}"):
            qa_generation.run(make_context(task_dir, server))
    assert not list(task_dir.glob("*_pair.json"))


CRASHING_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    from config import Settings
    from data_pipeline.llm.client import LLMClient
    from data_pipeline.steps import qa_generation
    from data_pipeline.steps.context import StepContext
    base_url, task_dir = sys.argv[1], Path(sys.argv[2])
    settings = Settings().with_overrides(llm_base_url=base_url, llm_model="fake", llm_concurrency=1,
                                         qa_theme_count=4, qa_pairs_per_theme=3)
    ctx = StepContext(task_id="t", task_dir=task_dir, settings=settings, db_url="postgresql://x@127.0.0.1:1/x",
                      db_name="service_db", business_context="高速公路服务区管理系统",
                      tables=["company", "service_area", "day_data"], params={},
                      llm=LLMClient(base_url=base_url, model="fake", max_retries=0, concurrency=1))
    qa_generation.run(ctx)
""")


def test_a_killed_run_loses_at_most_the_theme_in_flight(task_dir):
    slow = ScriptedLLM(delay=0.3)
    with FakeLLMServer(slow) as server:
        process = subprocess.Popen([sys.executable, "-c", CRASHING_RUN, server.base_url, str(task_dir)],
                                   cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        checkpoint = task_dir / CHECKPOINT_DIR
        deadline = time.monotonic() + 30
        while not (checkpoint / "theme_001.json").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    saved = len(list(checkpoint.glob("theme_*.json")))
    assert 2 <= saved < 4

    resumed = ScriptedLLM()
    with FakeLLMServer(resumed) as server:
        result = qa_generation.run(make_context(task_dir, server))
    assert len(resumed.kinds) == 4 - saved and all(kind.startswith("pairs:") for kind in resumed.kinds)
    assert result["successful_themes"] == 4 and result["total_questions"] == 8
