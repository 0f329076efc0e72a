"""The offline generator: themes, question/SQL pairs and the business scope from the table
documents alone, for when no LLM is configured.

A theme is one anchor table with the tables its foreign keys lead to; its pairs come from the
templates. Every candidate is EXPLAINed on the task's database and only those that pass are
kept, so a table gets its `per_table` pairs from the candidates that work. Across the task no two
pairs share a question text (after normalising spaces and punctuation) and at most
`MAX_PER_TEMPLATE` share a SQL template (the SQL with its literals replaced).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from data_pipeline.qa.column_roles import RolesByTable, roles_by_table, subject
from data_pipeline.qa.dedupe import normalize, remove_duplicates
from data_pipeline.qa.documents import TableDoc
from data_pipeline.qa.model import BusinessScope, QAPair, ScopeItem, Theme
from data_pipeline.qa.sql_shape import sql_template
from data_pipeline.qa.templates import table_candidates
from data_pipeline.validation.explain_validator import SQLValidator

MAX_LIST_ITEMS = 6
MAX_SCOPE_ITEMS = 10
MAX_PER_TEMPLATE = 2


@dataclass
class OfflineResult:
    themes: list[Theme]
    pairs: list[QAPair]
    rejected: int


def display_name(doc: TableDoc) -> str:
    """How themes name a table: bare for `public`, schema-qualified otherwise."""
    return doc.name if doc.schema == "public" else doc.table.full_name


def generate_offline(docs: list[TableDoc], validator: SQLValidator, *, per_table: int,
                     logger: logging.Logger | None = None,
                     roles: RolesByTable | None = None,
                     progress: Callable[[int, int, str], None] | None = None) -> OfflineResult:
    """`roles`: each table's column roles, worked out once per run (roles_by_table, with the
    configured bookkeeping columns)."""
    logger = logger or logging.getLogger("QAGenerator")
    roles = roles if roles is not None else roles_by_table(docs)
    by_key = {doc.key: doc for doc in docs}
    candidates = {doc.key: table_candidates(doc, by_key, roles) for doc in docs}
    flat = [(doc.key, c) for doc in docs for c in candidates[doc.key]]
    checked, lock = [0], threading.Lock()

    def candidate_done(index, outcome) -> None:
        with lock:  # called from the validator's worker threads
            checked[0] += 1
            if progress is not None:
                progress(checked[0], len(flat), "candidate SQL")

    outcomes = validator.validate_many([c.sql for _, c in flat], on_done=candidate_done)
    passed: dict[tuple[str, str], list[QAPair]] = {doc.key: [] for doc in docs}
    rejected = 0
    for (key, candidate), outcome in zip(flat, outcomes):
        if outcome.valid:
            passed[key].append(QAPair(candidate.question, candidate.sql))
        else:
            rejected += 1
            logger.debug("模板SQL未通过EXPLAIN，已丢弃: %s (%s)", candidate.sql, outcome.error)

    themes, pairs = [], []
    questions: set[str] = set()
    templates: dict[str, int] = {}
    for done, doc in enumerate(docs, start=1):
        theme = anchor_theme(doc, by_key, roles)
        kept, _ = remove_duplicates(passed[doc.key])
        taken = 0
        for pair in kept:
            if taken >= per_table:
                break
            text, template = normalize(pair.question), sql_template(pair.sql)
            if text in questions or templates.get(template, 0) >= MAX_PER_TEMPLATE:
                continue
            questions.add(text)
            templates[template] = templates.get(template, 0) + 1
            pair.theme = theme.topic_name
            pairs.append(pair)
            taken += 1
        themes.append(theme)
        if progress is not None:
            progress(done, len(docs), "themes")
    if rejected:
        logger.info("离线生成: %d 条模板SQL未通过EXPLAIN，已丢弃", rejected)
    return OfflineResult(themes, pairs, rejected)


def anchor_theme(doc: TableDoc, by_key: dict[tuple[str, str], TableDoc], roles: RolesByTable) -> Theme:
    parents = []
    for fk in doc.foreign_keys:
        parent = by_key.get((fk.target.qualified_schema, fk.target.name))
        if parent is not None and parent.key != doc.key and all(p.key != parent.key for p in parents):
            parents.append(parent)
    own = roles[doc.key]
    metrics = ["记录数"] + [f"{m.label}合计" for m in own.measures]
    dimensions = [c.label for c in own.dates[:1] + own.categories + own.labels[:1]]
    entities = [subject(doc)] + [subject(p) for p in parents] + [c.label for c in own.categories]
    description = f"基于{doc.label}"
    if parents:
        description += f"及关联的{'、'.join(p.label for p in parents)}"
    description += f"，统计{'、'.join(metrics[:4])}等指标"
    if dimensions:
        description += f"，支持按{'、'.join(_unique(dimensions)[:4])}分析"
    return Theme(topic_name=f"{subject(doc)}分析", description=description + "。",
                 related_tables=[display_name(doc)] + [display_name(p) for p in parents],
                 biz_entities=_unique(entities)[:MAX_LIST_ITEMS], biz_metrics=_unique(metrics)[:MAX_LIST_ITEMS])


def offline_scope(docs: list[TableDoc], business_context: str, roles: RolesByTable | None = None) -> BusinessScope:
    roles = roles if roles is not None else roles_by_table(docs)
    subjects = [subject(doc) for doc in docs]
    context = business_context.strip() or "业务系统"
    summary = f"当前数据库存储的是{context}的相关数据，主要涉及{'、'.join(subjects[:MAX_LIST_ITEMS])}，包含以下业务数据："
    entities, metrics = [], []
    for doc in docs[:MAX_SCOPE_ITEMS]:
        own = roles[doc.key]
        fields = [c.name for c in own.labels + own.codes + own.categories][:4]
        entities.append(ScopeItem(subject(doc), doc.description or doc.label, fields))
    for doc in docs:
        own = roles[doc.key]
        dimensions = [c.label for c in own.dates[:1] + own.categories[:2] + own.labels[:1]]
        for measure in own.measures[:2]:
            if len(metrics) >= MAX_SCOPE_ITEMS:
                break
            how = f"，可按{'、'.join(_unique(dimensions))}汇总" if dimensions else ""
            metrics.append(ScopeItem(measure.label, f"{subject(doc)}中的{measure.label}{how}", [measure.name]))
    return BusinessScope(summary, entities, metrics)


def _unique(items: list[str]) -> list[str]:
    seen, result = set(), []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            result.append(item)
    return result
