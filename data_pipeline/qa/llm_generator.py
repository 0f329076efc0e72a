"""The LLM generator: business themes from an overview of the tables, then question/SQL pairs
per theme, the themes concurrently (bounded by LLM_CONCURRENCY).

Each theme's prompt carries only the documents of the tables that theme names, and asks for a
spread of complexity and question styles sized to them (spread.py). Pairs whose SQL is not a
single read-only query are dropped on arrival; duplicate and near-duplicate questions are removed
across themes. A theme whose answers stay unusable gets the offline generator's pairs for its
tables (`offline_pairs`), is named in a warning and counted in `fallbacks`; without that
callback it is listed as failed. The plan and every theme the LLM finished are saved as they
come (see checkpoint.py), so a later run asks the LLM again only for the rest.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from data_pipeline.errors import LLMError
from data_pipeline.llm import budgets
from data_pipeline.llm.client import LLMClient
from data_pipeline.qa.checkpoint import ThemeCheckpoint
from data_pipeline.qa.dedupe import remove_duplicates
from data_pipeline.qa.documents import TableDoc
from data_pipeline.qa.model import BusinessScope, QAPair, ScopeItem, Theme
from data_pipeline.qa.offline import display_name, offline_scope
from data_pipeline.qa.spread import spread_instructions
from data_pipeline.validation.statement_check import check_statement

_ANALYST = "你是一名资深的数据分析师，熟悉PostgreSQL，擅长从业务数据中提炼分析主题。只输出JSON，不要任何解释。"
_SQL_WRITER = ("你是一名精通PostgreSQL的数据分析师，为text-to-SQL模型编写训练用的问答对。"
               "只使用给出的表和字段；每条SQL是单条只读的SELECT（或WITH）查询。只输出JSON，不要任何解释。")


@dataclass
class LLMResult:
    themes: list[Theme]
    pairs: list[QAPair]
    scope: BusinessScope
    failed_themes: list[str] = field(default_factory=list)
    duplicates_removed: int = 0
    # The parts whose LLM answers stayed unusable and were made offline ("主题问答对：…").
    fallbacks: list[str] = field(default_factory=list)


class LLMQAGenerator:
    def __init__(self, llm: LLMClient, docs: list[TableDoc], *, business_context: str, db_name: str,
                 theme_count: int, pairs_per_theme: int, concurrency: int, checkpoint: ThemeCheckpoint,
                 logger: logging.Logger | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 offline_pairs: Callable[[Theme, list[TableDoc]], list[QAPair]] | None = None):
        self.llm = llm
        self.docs = docs
        self.business_context = business_context.strip() or "业务系统"
        self.db_name = db_name
        self.theme_count = theme_count
        self.pairs_per_theme = pairs_per_theme
        self.concurrency = concurrency
        self.checkpoint = checkpoint
        self.logger = logger or logging.getLogger("QAGenerator")
        self.progress = progress or (lambda done, total, unit: None)
        self.offline_pairs = offline_pairs
        self.fallbacks: list[str] = []
        self._fallback_lock = threading.Lock()
        self._by_name = {}
        for doc in docs:
            self._by_name[doc.name.lower()] = doc
            self._by_name[doc.table.full_name.lower()] = doc
            self._by_name[f"{doc.schema}.{doc.name}".lower()] = doc

    def generate(self) -> LLMResult:
        themes, scope = self._plan()
        results: dict[int, list[QAPair]] = {}
        for index, theme in enumerate(themes):
            saved = self.checkpoint.load_theme(index, theme)
            if saved is not None:
                results[index] = saved
        if results:
            self.logger.info("从中间结果恢复 %d/%d 个主题", len(results), len(themes))
        failed: dict[int, str] = {}
        lock = threading.Lock()
        self.progress(len(results), len(themes), "themes")

        def run_theme(index: int) -> None:
            theme = themes[index]
            try:
                pairs = self._theme_pairs(theme)
            except LLMError as exc:
                if self.offline_pairs is None:
                    self.logger.error("主题「%s」生成失败: %s", theme.topic_name, exc.details)
                    with lock:
                        failed[index] = theme.topic_name
                    return
                pairs = self._fall_back(theme, exc)
            else:
                self.checkpoint.save_theme(index, theme, pairs)
            with lock:
                results[index] = pairs
                self.logger.info("主题「%s」生成 %d 个问答对 (%d/%d)", theme.topic_name, len(pairs),
                                 len(results), len(themes))
                self.progress(len(results), len(themes), "themes")

        pending = [index for index in range(len(themes)) if index not in results]
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency), thread_name_prefix="qa-theme") as pool:
            list(pool.map(run_theme, pending))

        ordered = [pair for index in sorted(results) for pair in results[index]]
        kept, removed = remove_duplicates(ordered)
        if removed:
            self.logger.info("去除重复或近似重复的问题 %d 个", removed)
        return LLMResult(themes=themes, pairs=kept, scope=scope,
                         failed_themes=[failed[i] for i in sorted(failed)], duplicates_removed=removed,
                         fallbacks=list(self.fallbacks))

    def note_fallback(self, part: str, exc: LLMError) -> None:
        """A part made without the LLM: a warning naming it (never the answer), and the count."""
        self.logger.warning("%s：LLM的回答无法使用，改用离线生成（%s）", part, exc.details)
        with self._fallback_lock:
            self.fallbacks.append(part)

    def _fall_back(self, theme: Theme, exc: LLMError) -> list[QAPair]:
        self.note_fallback(f"主题问答对「{theme.topic_name}」", exc)
        pairs = self.offline_pairs(theme, self._theme_docs(theme))[:self.pairs_per_theme]
        return [QAPair(p.question, p.sql, theme.topic_name) for p in pairs]

    def _plan(self) -> tuple[list[Theme], BusinessScope]:
        saved = self.checkpoint.load_plan()
        if saved is not None:
            themes, scope = saved
            self.logger.info("使用已保存的主题规划（%d 个主题）", len(themes))
            return themes, scope or offline_scope(self.docs, self.business_context)
        # The scope does not depend on the themes: both questions go out at once.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="qa-plan") as pool:
            themes_future = pool.submit(self._ask_themes)
            scope_future = pool.submit(self._ask_scope)
            try:
                scope = scope_future.result()
            except LLMError as exc:
                self.note_fallback("业务范围", exc)
                scope = offline_scope(self.docs, self.business_context)
            themes = themes_future.result()
        self.checkpoint.save_plan(themes, scope)
        self.logger.info("提取到 %d 个业务主题: %s", len(themes), "、".join(t.topic_name for t in themes))
        return themes, scope

    def _overview(self) -> str:
        lines = []
        for doc in self.docs:
            columns = ", ".join(f"{c.name}({c.label})" if c.comment else c.name for c in doc.columns)
            lines.append(f"- {display_name(doc)}（{doc.label}）：{doc.description or doc.label}\n  字段：{columns}")
        return "\n".join(lines)

    def _ask_themes(self) -> list[Theme]:
        prompt = (f"业务背景：{self.business_context}\n数据库：{self.db_name}\n\n数据表概览：\n{self._overview()}\n\n"
                  f"请从这些表中归纳出{self.theme_count}个有价值、互不重复的业务分析主题。每个主题包含："
                  "topic_name（主题名称，不超过20个字）、description（主题说明）、"
                  "related_tables（涉及的表名，只能来自上面的表）、biz_entities（主要业务实体）、"
                  "biz_metrics（主要业务指标）。\n"
                  '只输出JSON：{"themes": [{"topic_name": "...", "description": "...", "related_tables": ["..."], '
                  '"biz_entities": ["..."], "biz_metrics": ["..."]}]}')
        messages = [{"role": "system", "content": _ANALYST}, {"role": "user", "content": prompt}]
        return self.llm.chat_json(messages, validate=self._valid_themes,
                                  max_tokens=budgets.theme_plan(self.theme_count))

    def _valid_themes(self, answer) -> list[Theme]:
        items = answer.get("themes") if isinstance(answer, dict) else answer
        if not isinstance(items, list):
            raise ValueError('回答应为 {"themes": [...]}')
        themes, names = [], set()
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("topic_name"), str):
                continue
            tables = [display_name(self._by_name[t.strip().lower()]) for t in _strings(item.get("related_tables"))
                      if t.strip().lower() in self._by_name]
            name = item["topic_name"].strip()
            if not name or not tables or name in names:
                continue
            names.add(name)
            themes.append(Theme(topic_name=name, description=str(item.get("description") or "").strip(),
                                related_tables=list(dict.fromkeys(tables)),
                                biz_entities=_strings(item.get("biz_entities")),
                                biz_metrics=_strings(item.get("biz_metrics"))))
        if not themes:
            raise ValueError("没有可用的主题：每个主题需要 topic_name 和至少一个来自给定表的 related_tables")
        return themes[:self.theme_count]

    def _ask_scope(self) -> BusinessScope:
        prompt = (f"业务背景：{self.business_context}\n\n数据表概览：\n{self._overview()}\n\n"
                  "请概括这个数据库的业务范围，供问答系统判断一个问题是否应该查询数据库。输出JSON："
                  '{"summary": "当前数据库存储的是……的相关数据，主要涉及……，包含以下业务数据：", '
                  '"entities": [{"name": "实体名", "description": "说明", "fields": ["主要字段名"]}], '
                  '"metrics": [{"name": "指标名", "description": "说明"}]}')
        messages = [{"role": "system", "content": _ANALYST}, {"role": "user", "content": prompt}]
        return self.llm.chat_json(messages, validate=_valid_scope, max_tokens=budgets.business_scope(len(self.docs)))

    def _theme_pairs(self, theme: Theme) -> list[QAPair]:
        docs = self._theme_docs(theme)
        documents = "\n\n".join((doc.md_text or doc.schema_text()) for doc in docs)
        prompt = (f"业务背景：{self.business_context}\n分析主题：{theme.topic_name}\n主题说明：{theme.description}\n"
                  f"业务实体：{'、'.join(theme.biz_entities)}\n业务指标：{'、'.join(theme.biz_metrics)}\n\n"
                  f"相关表结构：\n{documents}\n\n"
                  f"请围绕该主题生成{self.pairs_per_theme}个不同的业务问题及对应的PostgreSQL查询。\n"
                  + spread_instructions(self.pairs_per_theme, len(docs)) +
                  "要求：\n"
                  "1. 问题用中文，互不重复，按上面的风格分布提问；\n"
                  "2. SQL只使用上面给出的表和字段，是单条SELECT查询（可以用WITH），以分号结尾；\n"
                  "3. 表中有删除时间等软删除字段（如delete_ts）时，只统计未删除的数据；\n"
                  "4. 查询结果的字段使用中文别名。\n"
                  '只输出JSON对象：{"pairs": [{"question": "...", "sql": "...", '
                  '"complexity": "simple|moderate|complex|highly_complex", '
                  '"style": "formal|colloquial|imperative|vague"}]}')
        messages = [{"role": "system", "content": _SQL_WRITER}, {"role": "user", "content": prompt}]
        pairs = self.llm.chat_json(messages, validate=self._valid_pairs, temperature=0.5,
                                   max_tokens=budgets.theme_pairs(self.pairs_per_theme))
        return [QAPair(p.question, p.sql, theme.topic_name) for p in pairs[:self.pairs_per_theme]]

    def _theme_docs(self, theme: Theme) -> list[TableDoc]:
        docs = [self._by_name[name.lower()] for name in theme.related_tables if name.lower() in self._by_name]
        return list({doc.key: doc for doc in docs}.values())

    def _valid_pairs(self, answer) -> list[QAPair]:
        items = (answer.get("pairs") or answer.get("questions")) if isinstance(answer, dict) else answer
        if not isinstance(items, list):
            raise ValueError('回答应为 [{"question": "...", "sql": "..."}] 数组')
        pairs, refused = [], []
        for item in items:
            if not isinstance(item, dict):
                continue
            question, sql = item.get("question"), item.get("sql")
            if not isinstance(question, str) or not isinstance(sql, str) or not question.strip():
                continue
            checked = check_statement(sql)
            if checked.ok:
                pairs.append(QAPair(question.strip(), sql.strip()))
            else:
                refused.append(checked.error)
        if refused:
            # The reasons may quote the refused SQL (a function's name): DEBUG only.
            self.logger.warning("丢弃 %d 条不合格的SQL", len(refused))
            self.logger.debug("不合格的原因: %s", "; ".join(refused[:3]))
        if not pairs:
            raise ValueError("没有可用的问答对：每项需要 question 和单条只读查询的 sql")
        return pairs


def _valid_scope(answer) -> BusinessScope:
    if not isinstance(answer, dict) or not isinstance(answer.get("summary"), str) or not answer["summary"].strip():
        raise ValueError('回答应为包含 summary、entities、metrics 的JSON对象')

    def items(key: str) -> list[ScopeItem]:
        found = []
        for item in answer.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"].strip():
                found.append(ScopeItem(item["name"].strip(), str(item.get("description") or "").strip(),
                                       _strings(item.get("fields"))))
        return found

    return BusinessScope(answer["summary"].strip(), items("entities"), items("metrics"))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.replace("，", ",").split(",")]
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if isinstance(v, (str, int, float)) and str(v).strip()]
