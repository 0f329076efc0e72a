"""Step 2, qa_generation: business themes and question/SQL pairs from the task's DDL/MD files.

With an LLM (ctx.llm) the LLM generator runs; without one the offline generator builds the same
files from the schema alone and keeps only SQL that passes EXPLAIN on the task's database. With
an LLM whose answers stay unusable (or after LLM_STEP_TIMEOUT), the offline generator makes the
part that failed: the whole step when the theme plan did, one theme's pairs when they did. The
step fails because of the model only when it could not be reached or refused every call.
Writes `qs_<db>_<ts>_pair.json`, `metadata.txt`, `metadata_detail.md` and
`db_query_decision_prompt.txt`; the returned dict becomes `qa_generation_result.json`.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from data_pipeline.errors import LLMError, StepFailed
from data_pipeline.qa.checkpoint import ThemeCheckpoint
from data_pipeline.qa.column_roles import resolve_domains, roles_by_table
from data_pipeline.qa.documents import TableDoc, as_table_name, discover_tables, load_table_documents
from data_pipeline.qa.llm_generator import LLMQAGenerator, LLMResult
from data_pipeline.qa.model import BusinessScope, QAPair, Theme
from data_pipeline.qa.offline import generate_offline, offline_scope
from data_pipeline.qa.quality import write_quality_report
from data_pipeline.qa.writers import pair_file_name, write_outputs
from data_pipeline.schema.types_file import TYPES_FILE
from data_pipeline.steps.context import StepContext
from data_pipeline.validation.explain_validator import SQLValidator

MIN_OFFLINE_PAIRS_PER_TABLE = 12


def run(ctx: StepContext) -> dict:
    started_at, started = datetime.now(), time.perf_counter()
    docs = _documents(ctx)
    ctx.logger.info("开始生成问答对：%d 个表，%s", len(docs), "使用LLM" if ctx.llm else "离线模板（未配置LLM）")

    failed_themes: list[str] = []
    fallbacks: list[str] = []
    duplicates_removed = 0
    generator_name = "offline"
    if ctx.llm is None:
        themes, pairs, scope = _offline(ctx, docs)
    else:
        with _OfflineFallback(ctx) as offline, ctx.llm.step_budget(ctx.settings.llm_step_timeout):
            result, fallbacks = _with_llm(ctx, docs, offline)
        if result is None:   # the theme plan fell back: the offline generator makes the whole step
            themes, pairs, scope = _offline(ctx, docs)
        else:
            generator_name = "llm"
            themes, pairs, scope = result.themes, result.pairs, result.scope
            failed_themes, duplicates_removed = result.failed_themes, result.duplicates_removed

    output_file = pair_file_name(ctx.db_name, started_at)
    write_outputs(ctx.task_dir, pair_file=output_file, pairs=pairs, themes=_successful(themes, failed_themes),
                  scope=scope, db_name=ctx.db_name, business_context=ctx.business_context, when=started_at)
    write_quality_report(ctx.task_dir, ctx.settings, llm_fallbacks=len(fallbacks))
    duration = time.perf_counter() - started
    ctx.logger.info("问答对生成完成: %d 个主题，%d 个问答对，输出 %s", len(themes) - len(failed_themes), len(pairs),
                    output_file)
    if failed_themes:
        ctx.logger.warning("以下主题生成失败: %s", "、".join(failed_themes))
    if fallbacks:
        ctx.logger.warning("%d 个部分改用了离线生成: %s", len(fallbacks), "、".join(fallbacks))
    return {
        "output_file": output_file,
        "total_questions": len(pairs),
        "total_themes": len(themes),
        "successful_themes": len(themes) - len(failed_themes),
        "failed_themes": failed_themes,
        "duration": duration,
        "generator": generator_name,
        "duplicates_removed": duplicates_removed,
        "llm_fallbacks": len(fallbacks),
        "llm_fallback_parts": fallbacks,
    }


def _with_llm(ctx: StepContext, docs: list[TableDoc],
              offline: "_OfflineFallback") -> tuple[LLMResult | None, list[str]]:
    """The LLM generator's result (None when the theme plan fell back) and the parts that fell
    back. Fails the step only when the model could not be reached or refused every call."""
    settings = ctx.settings
    usage_before = ctx.llm.usage_summary()
    checkpoint = ThemeCheckpoint(ctx.task_dir, {
        "tables": [doc.table.full_name for doc in docs], "theme_count": settings.qa_theme_count,
        "pairs_per_theme": settings.qa_pairs_per_theme, "business_context": ctx.business_context,
        "model": ctx.llm.model})
    generator = LLMQAGenerator(
        ctx.llm, docs, business_context=ctx.business_context, db_name=ctx.db_name,
        theme_count=settings.qa_theme_count, pairs_per_theme=settings.qa_pairs_per_theme,
        concurrency=settings.llm_concurrency, checkpoint=checkpoint,
        logger=logging.getLogger("QAGenerator"), progress=ctx.report_progress, offline_pairs=offline.pairs)
    try:
        result = generator.generate()
    except LLMError as exc:
        unavailable = ctx.llm.unavailable_reason(usage_before)
        if unavailable:
            raise StepFailed(f"业务主题提取失败: {unavailable}", error_code="LLM_UNAVAILABLE") from None
        generator.note_fallback("业务主题规划", exc)
        return None, generator.fallbacks
    unavailable = ctx.llm.unavailable_reason(usage_before)
    if unavailable:
        raise StepFailed(f"问答对生成失败: {unavailable}", error_code="LLM_UNAVAILABLE")
    if not result.pairs:
        raise StepFailed(f"所有主题的问答对生成都失败了: {'、'.join(result.failed_themes)}（已完成的中间结果会在重新执行时复用）")
    checkpoint.clear()
    return result, result.fallbacks


class _OfflineFallback:
    """The offline generator for one theme's tables, its SQL checked with EXPLAIN on the task's
    database; the validator is opened only when a theme first needs it."""

    def __init__(self, ctx: StepContext):
        self.ctx = ctx
        self._validator: SQLValidator | None = None
        self._lock = threading.Lock()

    def pairs(self, theme: Theme, docs: list[TableDoc]) -> list[QAPair]:
        settings = self.ctx.settings
        with self._lock:
            if self._validator is None:
                self._validator = _explain_validator(self.ctx)
                self._validator.open()
            result = generate_offline(docs, self._validator, per_table=settings.qa_pairs_per_theme,
                                      roles=roles_by_table(docs, settings.bookkeeping_columns),
                                      logger=logging.getLogger("QAGenerator"))
        return _interleaved(result.pairs, len(docs))

    def __enter__(self) -> "_OfflineFallback":
        return self

    def __exit__(self, *exc) -> None:
        if self._validator is not None:
            self._validator.close()


def _interleaved(pairs: list[QAPair], tables: int) -> list[QAPair]:
    """Pairs of several tables taken in turn, so a theme's first pairs cover all its tables."""
    by_theme: dict[str, list[QAPair]] = {}
    for pair in pairs:
        by_theme.setdefault(pair.theme, []).append(pair)
    columns = list(by_theme.values())[:max(1, tables)]
    return [column[i] for i in range(max(map(len, columns), default=0)) for column in columns if i < len(column)]


def _documents(ctx: StepContext) -> list[TableDoc]:
    try:
        tables = [as_table_name(name) for name in ctx.tables] if ctx.tables else discover_tables(ctx.task_dir)
    except ValueError as exc:
        raise StepFailed(f"表名无效: {exc}") from None
    try:
        docs, missing = load_table_documents(ctx.task_dir, tables, ctx.column_mask)
    except ValueError as exc:
        raise StepFailed(f"表结构文件无法解析: {exc}") from None
    if missing:
        raise StepFailed(f"以下表缺少DDL/MD文件，请先执行 ddl_generation 或上传: {', '.join(missing)}")
    if not docs:
        raise StepFailed("任务目录中没有表结构文件（*.ddl / *_detail.md）")
    types_file = ctx.task_dir / TYPES_FILE
    if types_file.is_file():
        resolve_domains(docs, types_file.read_text(encoding="utf-8", errors="replace"))
    return docs


def _offline(ctx: StepContext, docs: list[TableDoc]) -> tuple[list[Theme], list[QAPair], BusinessScope]:
    settings = ctx.settings
    # once for the run: the pairs, themes and scope read the same tables
    roles = roles_by_table(docs, settings.bookkeeping_columns)
    with _explain_validator(ctx) as validator:
        result = generate_offline(docs, validator, roles=roles,
                                  per_table=max(MIN_OFFLINE_PAIRS_PER_TABLE, settings.qa_pairs_per_theme),
                                  logger=logging.getLogger("QAGenerator"), progress=ctx.report_progress)
    return result.themes, result.pairs, offline_scope(docs, ctx.business_context, roles)


def _explain_validator(ctx: StepContext) -> SQLValidator:
    """The offline generator's check of its candidates: EXPLAIN on the task's database (no execution)."""
    return SQLValidator(ctx.db_url, concurrency=ctx.settings.sql_validation_concurrency,
                        statement_timeout_ms=ctx.settings.sql_explain_timeout_ms,
                        logger=logging.getLogger("SQLValidator"))


def _successful(themes: list[Theme], failed: list[str]) -> list[Theme]:
    return [theme for theme in themes if theme.topic_name not in set(failed)]

