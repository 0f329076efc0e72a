"""Complete runs on the demo database with an imperfect model (issue 17): the real API server and
executor, the fake OpenAI-compatible server answering as the demo model (tests/support/demo_llm)
with one flaw per run.

Each run completes; every part the model could not make is made without it and counted in its
step's `llm_fallbacks` (and the quality report); every request carries `max_tokens`; and nothing
of a rejected answer (each carries MARKER) reaches the task directory, a log or a vector.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from data_pipeline.db import embedded_pg
from data_pipeline.db.demo_db import DEMO_TABLES
from data_pipeline.qa.spread import LEVELS, STYLES
from tests.support.api_server import ApiServer
from tests.support.demo_llm import DemoModel, part_of, theme_tables
from tests.support.fake_llm import FakeLLMServer, Reply, prompt_tokens, rambling

MARKER = f"BADANSWER{uuid.uuid4().hex[:8]}"
MAX_OUTPUT_TOKENS = 1500
PAIRS_PER_THEME = 4
# Between the largest prompt that must fit (a table's comments, the theme plan) and the pair
# prompt of the theme over all seven tables: that theme's pairs cannot be asked for.
CONTEXT_SIZE = 6000


def flawed(step: str, key: str) -> bool:
    """The parts a flawed model answers badly: one table's comments, the first theme's pairs,
    every repair. The plan stays good, so the other themes show the model's own pairs."""
    return (step, key) in {("ddl_generation", "bss_company"), ("qa_generation", "演示主题1")} \
        or step == "sql_validation"


def wrong_shape(request: dict) -> Reply:
    return Reply(content=json.dumps({"themes": MARKER, "table_name_cn": 7, "sql": [MARKER],
                                     "pairs": [{"question": MARKER, "sql": f"DELETE FROM bss_company -- {MARKER}"}]}))


def prose_around(text: str) -> str:
    return (f"好的，{MARKER}。先看一段示例代码：\n```python\nrow = {{\"{MARKER}\": 1}}\nprint(row)\n```\n"
            f"最终答案：\n```json\n{text}\n```\n{MARKER}，希望有帮助。")


BEHAVIOURS = {
    "rambling": dict(model=lambda: DemoModel(flawed, rambling(MARKER))),
    "wrong_shape": dict(model=lambda: DemoModel(flawed, wrong_shape)),
    "prose_and_code": dict(model=lambda: DemoModel(wrap=prose_around)),
    "response_format_400": dict(model=DemoModel, refuse_response_format=True),
    "context_exceeded": dict(model=DemoModel, context_size=CONTEXT_SIZE),
    "never_useful": dict(model=lambda: DemoModel(lambda step, key: True,
                                                 lambda request: Reply(content=f"抱歉，{MARKER}，我说不清楚。"))),
}


@dataclass
class Run:
    task: dict
    task_dir: Path
    requests: list[dict]
    fell_back: set[tuple[str, str]]   # the parts no request got a usable answer for

    def result(self, step: str) -> dict:
        return json.loads((self.task_dir / f"{step}_result.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def fake_llm():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def llm_api(embedded_pg_dir, tmp_path_factory, fake_llm):
    root = tmp_path_factory.mktemp("api-imperfect-llm")
    env = {"DATA_PIPELINE_TRAINING_DATA_DIR": str(root / "training_data"), "DATA_PIPELINE_LOG_DIR": str(root / "logs"),
           "DATA_PIPELINE_EMBEDDED_PG_DIR": str(embedded_pg_dir), "DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING": "1",
           "DATA_PIPELINE_HEARTBEAT_SECONDS": "0.5",
           "LLM_BASE_URL": fake_llm.base_url, "LLM_MODEL": "demo", "LLM_MAX_RETRIES": "0", "LLM_CONCURRENCY": "4",
           "LLM_MAX_OUTPUT_TOKENS": str(MAX_OUTPUT_TOKENS), "DATA_PIPELINE_QA_THEMES": "3",
           "DATA_PIPELINE_QA_PAIRS_PER_THEME": str(PAIRS_PER_THEME), "EMBEDDING_PROVIDER": "hash"}
    server = ApiServer(env, root).start()
    server.root = root
    yield server
    server.close()


@pytest.fixture(scope="module")
def complete_run(llm_api, fake_llm):
    """complete_run(behaviour): one complete run with that flaw, made once per module."""
    runs: dict[str, Run] = {}

    def run(behaviour: str) -> Run:
        if behaviour not in runs:
            options = BEHAVIOURS[behaviour]
            model = options["model"]()
            fake_llm.responder = model
            fake_llm.context_size = options.get("context_size")
            fake_llm.refuse_response_format = options.get("refuse_response_format", False)
            first = len(fake_llm.requests)
            task_id = llm_api.create_task(task_name=f"imperfect {behaviour}", business_context="高速公路服务区管理系统")
            llm_api.set_table_list(task_id, list(DEMO_TABLES))
            response = llm_api.execute(task_id, execution_mode="complete")
            assert response.status_code == 202, response.text
            task = llm_api.wait_for(task_id, timeout=240)
            requests = [r for r in fake_llm.requests[first:] if r["_path"].endswith("/chat/completions")]
            refused = {part_of(r) for r in requests if options.get("context_size")
                       and prompt_tokens(r) > options["context_size"]}
            runs[behaviour] = Run(task, llm_api.training_data_dir / task_id, requests, model.bad_parts | refused)
        return runs[behaviour]
    return run


def texts_with_marker(paths) -> list[str]:
    return [str(path) for path in paths if path.is_file() and MARKER.encode() in path.read_bytes()]


@pytest.mark.parametrize("behaviour", list(BEHAVIOURS))
def test_a_complete_run_with_an_imperfect_model(complete_run, llm_api, embedded_pg_dir, behaviour):
    run = complete_run(behaviour)
    assert run.task["status"] == "completed", run.task
    assert run.requests and all(isinstance(r.get("max_tokens"), int) and 0 < r["max_tokens"] <= MAX_OUTPUT_TOKENS
                                for r in run.requests), "every request carries its budget"

    for step in ("ddl_generation", "qa_generation", "sql_validation"):
        expected = sum(1 for s, _ in run.fell_back if s == step)
        assert run.result(step)["llm_fallbacks"] == expected, (step, sorted(run.fell_back))
    quality = json.loads((run.task_dir / "quality_report.json").read_text(encoding="utf-8"))
    assert quality["llm_fallbacks"] == sum(1 for s, _ in run.fell_back if s != "ddl_generation")
    qa = run.result("qa_generation")
    plan_fell_back = ("qa_generation", "plan") in run.fell_back
    assert qa["generator"] == ("offline" if plan_fell_back else "llm")
    assert qa["total_questions"] > 0 and run.result("training_load")

    if behaviour == "response_format_400":
        asked = [("response_format" in r) for r in run.requests]
        # Learnt once per executor process: only the calls in flight before the first refusal
        # (LLM_CONCURRENCY of them) ask with it, and each of those is asked again without it.
        assert asked[0] and asked.count(True) <= 4 and not any(asked[8:]), asked
    else:
        assert all(r.get("response_format") == {"type": "json_object"} for r in run.requests)
    if behaviour in ("rambling", "wrong_shape", "context_exceeded"):
        assert any(s == "qa_generation" and k.startswith("演示主题") for s, k in run.fell_back), run.fell_back
        assert qa["generator"] == "llm" and qa["llm_fallback_parts"]

    tainted = texts_with_marker(run.task_dir.rglob("*")) + texts_with_marker(llm_api.root.rglob("*.log")) \
        + texts_with_marker(llm_api.root.glob("*.out"))
    assert not tainted, f"a rejected answer reached {tainted}"
    with psycopg.connect(embedded_pg.store_url(embedded_pg_dir)) as conn:
        leaked = conn.execute("select count(*) from langchain_pg_embedding where document like %s "
                              "or cmetadata::text like %s", (f"%{MARKER}%", f"%{MARKER}%")).fetchone()[0]
    assert leaked == 0


def test_pair_prompts_ask_for_the_four_levels_and_styles_sized_to_each_theme(complete_run):
    run = complete_run("response_format_400")
    prompts = {part_of(r)[1]: r["messages"][1]["content"] for r in run.requests
               if part_of(r)[0] == "qa_generation" and part_of(r)[1].startswith("演示主题")}
    assert len(prompts) == 3
    for topic, prompt in prompts.items():
        tables = theme_tables(prompt)
        asked = {level: int(found.group(1)) for level in LEVELS
                 if (found := re.search(rf"(?<!\w){level}（.*?）(\d+)个", prompt))}
        # 4 pairs: one of each level, whatever the theme's size (not the code's own level_counts)
        assert PAIRS_PER_THEME == 4 and asked == dict.fromkeys(LEVELS, 1), (topic, asked)
        assert all(re.search(rf"{style}（.+?）\d+个", prompt) for style in STYLES), topic
        assert f"本主题涉及{len(tables)}个表" in prompt
        joins = "多表连接" in prompt, "两表连接" in prompt
        assert joins == (len(tables) >= 3, len(tables) == 2), (topic, tables)
