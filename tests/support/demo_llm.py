"""A model for the fake LLM server that knows the demo database: it answers every kind of call of
a complete run (table comments, theme plan, business scope, theme pairs, SQL repair) the way a
good model would, except for the parts `bad(step, key)` picks, which get `bad_reply(request)`.

Each request belongs to one part, (step, key): ("ddl_generation", table), ("qa_generation",
"plan" | "scope" | topic), ("sql_validation", SQL to repair). A part whose every answer is bad
is what the run must make without the model and count in `llm_fallbacks`.

Every theme's pairs include one SQL that names a missing column, so sql_validation has a repair
to ask for.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Callable

from data_pipeline.db.demo_db import DEMO_TABLES
from tests.support.fake_llm import Reply

BROKEN_COLUMN = "no_such_column"
_TOPIC = re.compile(r"分析主题：(.+)\n")
_TABLE_HEADER = re.compile(r"^(?:## |create table (?:public\.)?)(\w+)", re.MULTILINE | re.IGNORECASE)


def part_of(request: dict) -> tuple[str, str]:
    """The part of the run a chat request asks for."""
    system = request["messages"][0]["content"]
    prompt = request["messages"][1]["content"]
    if "数据库文档工程师" in system:
        facts = json.loads(prompt[prompt.index("{"):prompt.index("\n\n输出JSON格式")])
        return "ddl_generation", facts["table"].split(".")[-1]
    if "修复" in system:
        return "sql_validation", prompt.split("需要修复的SQL：\n", 1)[1].split("\n\n", 1)[0]
    topic = _TOPIC.search(prompt)
    if topic:
        return "qa_generation", topic.group(1)
    return "qa_generation", "plan" if "归纳出" in prompt else "scope"


def theme_tables(prompt: str) -> list[str]:
    """The demo tables whose documents a pair prompt carries."""
    documents = prompt.split("相关表结构：", 1)[1]
    return list(dict.fromkeys(t for t in _TABLE_HEADER.findall(documents) if t in DEMO_TABLES))


class DemoModel:
    """The responder. `bad(step, key)` picks the parts answered with `bad_reply`; `wrap` turns a
    good answer into its final text (prose around it, for instance)."""

    def __init__(self, bad: Callable[[str, str], bool] = lambda step, key: False,
                 bad_reply: Callable[[dict], Reply] | None = None, wrap: Callable[[str], str] = lambda text: text):
        self.bad, self.bad_reply, self.wrap = bad, bad_reply, wrap
        self.bad_parts: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, request: dict) -> Reply:
        step, key = part_of(request)
        if self.bad_reply is not None and self.bad(step, key):
            with self._lock:
                self.bad_parts.add((step, key))
            return self.bad_reply(request)
        prompt = request["messages"][1]["content"]
        if step == "ddl_generation":
            answer = self._comments(prompt)
        elif step == "sql_validation":
            table = re.search(r"FROM (\w+)", key).group(1)
            answer = {"sql": f"SELECT COUNT(*) AS 记录数 FROM {table};"}
        elif key == "plan":
            answer = {"themes": self._themes(int(re.search(r"归纳出(\d+)个", prompt).group(1)))}
        elif key == "scope":
            answer = {"summary": "当前数据库存储的是高速公路服务区经营的相关数据，包含以下业务数据：",
                      "entities": [{"name": "服务区", "description": "高速公路服务区", "fields": ["service_area_name"]}],
                      "metrics": [{"name": "营收", "description": "档口每日营收"}]}
        else:
            answer = {"pairs": self._pairs(key, theme_tables(prompt))}
        return Reply(content=self.wrap(json.dumps(answer, ensure_ascii=False)))

    @staticmethod
    def _comments(prompt: str) -> dict:
        facts = json.loads(prompt[prompt.index("{"):prompt.index("\n\n输出JSON格式")])
        return {"table_name_cn": "演示业务表", "table_description": "演示数据库中的业务数据表",
                "columns": [{"name": c["name"], "comment": f"演示字段{c['name']}"} for c in facts["columns"]]}

    @staticmethod
    def _themes(count: int) -> list[dict]:
        groups = [list(DEMO_TABLES), ["bss_company", "bss_service_area"], ["bss_car_day_count"],
                  ["bss_business_day_data", "bss_service_area"], ["bss_section_route"]]
        return [{"topic_name": f"演示主题{i + 1}", "description": "演示主题说明", "related_tables": tables,
                 "biz_entities": ["服务区"], "biz_metrics": ["记录数"]} for i, tables in enumerate(groups[:count])]

    @staticmethod
    def _pairs(topic: str, tables: list[str]) -> list[dict]:
        pairs = [{"question": f"{topic}里{table}一共有多少条记录？", "sql": f"SELECT COUNT(*) AS 记录数 FROM {table};"}
                 for table in tables]
        first = tables[0]
        return pairs + [{"question": f"{topic}中{first}的某个字段是什么？",
                         "sql": f"SELECT {BROKEN_COLUMN} AS 字段 FROM {first};"}]
