"""Step 3, sql_validation: check every SQL of the task's pair file against the business database
(EXPLAIN, read-only), run what passes (the execution check: read-only, timed, row-limited; a
failed run or an empty result on a value the question names makes the pair invalid), repair
failures with the LLM, optionally rewrite the pair file, report, refresh the quality report.

Task flags (ctx.params): enable_llm_repair (default true), modify_original_file (default true),
validate_by_execution (default true).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from data_pipeline.errors import StepFailed
from data_pipeline.qa.documents import TableDoc, as_table_name, discover_tables, load_table_documents
from data_pipeline.qa.quality import write_quality_report
from data_pipeline.steps.context import StepContext
from data_pipeline.validation.execution import ExecutionLimits
from data_pipeline.validation.explain_validator import SQLValidator
from data_pipeline.validation.outcome import ErrorClass
from data_pipeline.validation.pair_file import PairChange, find_pair_file, load_pairs, rewrite_pairs
from data_pipeline.validation.repair import SQLRepairer
from data_pipeline.validation.reports import PairReport, RunTotals, write_reports


def run(ctx: StepContext) -> dict:
    started_at, started = datetime.now(), time.perf_counter()
    timestamp = started_at.strftime("%Y%m%d_%H%M%S")
    logger = ctx.logger
    pair_path = find_pair_file(ctx.task_dir)
    if pair_path is None:
        raise StepFailed("任务目录中没有问答对文件（*_pair.json），请先执行 qa_generation 或上传问答对文件")
    pairs = load_pairs(pair_path)
    repair_enabled = bool(ctx.param("enable_llm_repair", True))
    modify_file = bool(ctx.param("modify_original_file", True))
    execute = ctx.param("validate_by_execution", True) is not False
    settings = ctx.settings
    logger.info("开始验证 %s 中的 %d 条SQL（并发 %d，超时 %d 毫秒）", pair_path.name, len(pairs),
                settings.sql_validation_concurrency, settings.sql_explain_timeout_ms)

    totals = RunTotals(pair_file=pair_path.name, started=started_at, duration=0.0, repair_enabled=repair_enabled)
    with SQLValidator(ctx.db_url, concurrency=settings.sql_validation_concurrency,
                      statement_timeout_ms=settings.sql_explain_timeout_ms,
                      logger=logging.getLogger("SQLValidator"),
                      execution=ExecutionLimits.from_settings(settings) if execute else None) as validator:
        reports = _validate_all(ctx, validator, pairs)
        failed = [r for r in reports if not r.first.valid]
        logger.info("首次验证完成: 有效 %d，无效 %d", len(reports) - len(failed), len(failed))
        llm_fallbacks = 0
        if repair_enabled and failed:
            llm_fallbacks = _repair_all(ctx, validator, [r for r in failed if r.first.repairable], totals)
        totals.total_retries = validator.retries

    if modify_file:
        _rewrite_pair_file(ctx, pair_path, pairs, reports, totals, timestamp)
    totals.duration = time.perf_counter() - started
    result = write_reports(ctx.task_dir, timestamp, reports, totals)
    result["execution_check"] = {"enabled": execute, "executed": sum(1 for r in reports if r.final.executed),
                                 "failed": sum(1 for r in reports if r.first.error_class == ErrorClass.EXECUTION),
                                 "empty_results": sum(1 for r in reports if r.first.error_class == ErrorClass.EMPTY_RESULT)}
    if ctx.llm is not None:
        result["llm_fallbacks"] = llm_fallbacks
    write_quality_report(ctx.task_dir, settings, llm_fallbacks=_generation_fallbacks(ctx) + llm_fallbacks)
    logger.info("SQL验证完成: %d/%d 有效，修复成功 %d，报告 %s", result["valid_sql_count"],
                result["original_sql_count"], totals.repair_successful, result["summary_file"])
    return result


def _generation_fallbacks(ctx: StepContext) -> int:
    """The pairs qa_generation made offline because the LLM's answers were unusable (its result
    file), so the quality report counts the fallbacks of both steps."""
    try:
        result = json.loads((ctx.task_dir / "qa_generation_result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    value = result.get("llm_fallbacks") if isinstance(result, dict) else None
    return value if isinstance(value, int) else 0


def _validate_all(ctx: StepContext, validator: SQLValidator, pairs: list[dict]) -> list[PairReport]:
    total, done, lock = len(pairs), [0], threading.Lock()
    ctx.report_progress(0, total, "pairs")

    def finished(index, outcome) -> None:
        with lock:
            done[0] += 1
            ctx.report_progress(done[0], total, "pairs")

    outcomes = validator.validate_many([pair["sql"] for pair in pairs], on_done=finished,
                                       questions=[pair["question"] for pair in pairs])
    return [PairReport(index=index, question=pair["question"], sql=pair["sql"], first=outcome, final=outcome,
                       final_sql=pair["sql"], seconds=outcome.seconds)
            for index, (pair, outcome) in enumerate(zip(pairs, outcomes))]


def _repair_all(ctx: StepContext, validator: SQLValidator, candidates: list[PairReport], totals: RunTotals) -> int:
    """Repair what can be repaired; the number of pairs whose repair fell back (no usable answer,
    or LLM_STEP_TIMEOUT spent): they stay invalid, and are removed when the file is rewritten."""
    if ctx.llm is None:
        ctx.logger.warning("未配置LLM，跳过SQL修复（%d 条SQL验证失败）", len(candidates))
        return 0
    if not candidates:
        return 0
    docs = _table_documents(ctx)
    repairer = SQLRepairer(ctx.llm, validator, docs, rounds=ctx.settings.sql_repair_rounds,
                           logger=logging.getLogger("SQLRepairer"))
    total, done, lock = len(candidates), [0], threading.Lock()
    ctx.logger.info("开始LLM修复 %d 条SQL（最多 %d 轮）", total, ctx.settings.sql_repair_rounds)
    ctx.report_progress(0, total, "repairs")

    def repair(report: PairReport) -> None:
        started = time.perf_counter()
        result = repairer.repair(report.question, report.sql, report.first)
        report.seconds += time.perf_counter() - started
        report.repaired, report.rounds, report.repair_attempts = result.repaired, result.rounds, result.attempts
        report.final, report.final_sql = result.outcome, result.sql
        with lock:
            done[0] += 1
            fallbacks[0] += result.llm_unusable
            ctx.report_progress(done[0], total, "repairs")
        if result.llm_unusable:
            ctx.logger.warning("第 %d 条问答对的SQL修复：LLM没有可用的回答，该问答对保持无效", report.index + 1)

    fallbacks = [0]
    with ThreadPoolExecutor(max_workers=ctx.settings.llm_concurrency, thread_name_prefix="sql-repair") as pool, \
            ctx.llm.step_budget(ctx.settings.llm_step_timeout):
        list(pool.map(repair, candidates))
    totals.repair_attempted = sum(1 for r in candidates if r.rounds)
    totals.repair_successful = sum(1 for r in candidates if r.repaired)
    ctx.logger.info("LLM修复完成: 尝试 %d，成功 %d", totals.repair_attempted, totals.repair_successful)
    return fallbacks[0]


def _table_documents(ctx: StepContext) -> list[TableDoc]:
    tables = [as_table_name(name) for name in ctx.tables] if ctx.tables else discover_tables(ctx.task_dir)
    try:
        docs, missing = load_table_documents(ctx.task_dir, tables, ctx.column_mask)
    except ValueError as exc:
        ctx.logger.warning("表结构文件无法解析，修复时不提供表结构: %s", exc)
        return []
    if missing:
        ctx.logger.warning("以下表没有DDL/MD文件，修复提示中不包含其结构: %s", ", ".join(missing))
    return docs


def _rewrite_pair_file(ctx: StepContext, pair_path, pairs: list[dict], reports: list[PairReport],
                       totals: RunTotals, timestamp: str) -> None:
    changes = []
    for report in reports:
        if report.repaired:
            changes.append(PairChange(report.index, report.question, report.sql, report.final_sql,
                                      report.first.error or ""))
        elif not report.final.valid:
            reason = f"{report.first.error_class}: {report.first.error}"
            if report.rounds:
                reason += f"；LLM修复{report.rounds}轮后仍失败: {report.final.error}"
            changes.append(PairChange(report.index, report.question, report.sql, None, reason))
    if not changes:
        return
    try:
        backup, log = rewrite_pairs(pair_path, pairs, changes, timestamp)
    except OSError as exc:
        totals.failed_modifications = len(changes)
        ctx.logger.error("修改问答对文件失败，原文件未改动: %s", exc)
        return
    for report in reports:
        report.removed = not report.repaired and not report.final.valid
    totals.modified = sum(1 for c in changes if c.new_sql is not None)
    totals.deleted = len(changes) - totals.modified
    totals.backup_file, totals.modification_log = backup.name, log.name
    ctx.logger.info("已修改问答对文件 %s: 修改 %d，删除 %d，备份 %s", pair_path.name, totals.modified,
                    totals.deleted, backup.name)

