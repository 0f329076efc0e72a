"""The quality report of a task's question/SQL pairs: `quality_report.json` and a readable
`quality_report.md`, built from the task directory's files alone, so any step may refresh it.

    write_quality_report(task_dir, settings)                 # after qa_generation / sql_validation
    write_quality_report(task_dir, settings, retrieval=...)  # after training_load

Read: the newest top-level `*_pair.json`, the tables' `.ddl`/`_detail.md`, the newest
`sql_validation_*_report.json` written for that pair file, and the retrieval figures of the
newest `training_load_result.json` when it is not older than the pair file (a pair file changed
after loading no longer matches the vectors; the figures are then null).

The JSON keys (docs/pairs.md): pairs_total; tables [{table, pairs, columns_used, columns_total}]
(a pair counts for every documented table its SQL reads); complexity {simple, moderate, complex,
highly_complex} (sql_shape); validation {explain_valid, executed, empty_results, repaired,
removed}; bookkeeping_share (the share of pairs whose SQL reads a bookkeeping column, soft-delete
markers aside); duplicate_questions (pairs whose normalised question repeats an earlier one);
retrieval {k, self_recall_at_1, self_recall_at_5} or null; llm_fallbacks.
"""
from __future__ import annotations

import json
from pathlib import Path

from data_pipeline.errors import StepFailed
from data_pipeline.qa.column_roles import is_bookkeeping
from data_pipeline.qa.dedupe import normalize
from data_pipeline.qa.documents import TableDoc, discover_tables, load_table_documents
from data_pipeline.qa.sql_shape import LEVELS, shape
from data_pipeline.tasks.directory import write_json_atomic, write_text_atomic
from data_pipeline.validation.pair_file import find_pair_file, load_pairs

REPORT_JSON = "quality_report.json"
REPORT_MD = "quality_report.md"
TRAINING_RESULT = "training_load_result.json"
VALIDATION_KEYS = ("explain_valid", "executed", "empty_results", "repaired", "removed")


def write_quality_report(task_dir: Path, settings=None, *, retrieval: dict | None = None,
                         llm_fallbacks: int | None = None) -> dict:
    """Build the report from the task directory's files, write both files, return the dict."""
    report = build_quality_report(task_dir, settings, retrieval=retrieval, llm_fallbacks=llm_fallbacks)
    write_json_atomic(task_dir / REPORT_JSON, report)
    write_text_atomic(task_dir / REPORT_MD, render_markdown(report))
    return report


def build_quality_report(task_dir: Path, settings=None, *, retrieval: dict | None = None,
                         llm_fallbacks: int | None = None) -> dict:
    extra = tuple(getattr(settings, "bookkeeping_columns", ()) or ())
    pair_path = find_pair_file(task_dir)
    pairs = _read_pairs(pair_path) if pair_path else []
    docs = _documents(task_dir)
    by_name = _index(docs)

    tables = {doc.key: {"pairs": 0, "used": set()} for doc in docs}
    complexity = {level: 0 for level in LEVELS}
    bookkeeping_pairs, duplicates, seen = 0, 0, set()
    for pair in pairs:
        text = normalize(pair["question"])
        if text in seen:
            duplicates += 1
        seen.add(text)
        facts = shape(pair["sql"])
        complexity[facts.level] += 1
        read = _tables_of(facts, by_name)
        for key in read:
            tables[key]["pairs"] += 1
        columns = referenced_columns(facts, by_name, read)
        for key, column in columns:
            tables[key]["used"].add(column.name)
        if any(is_bookkeeping(column, extra) for _, column in columns):
            bookkeeping_pairs += 1

    previous = _read_json(task_dir / REPORT_JSON) or {}
    return {
        "pairs_total": len(pairs),
        "tables": [{"table": doc.table.full_name, "pairs": tables[doc.key]["pairs"],
                    "columns_used": len(tables[doc.key]["used"]), "columns_total": len(doc.columns)}
                   for doc in docs],
        "complexity": complexity,
        "validation": _validation(task_dir, pair_path),
        "bookkeeping_share": round(bookkeeping_pairs / len(pairs), 4) if pairs else 0.0,
        "duplicate_questions": duplicates,
        "retrieval": retrieval if retrieval is not None else _retrieval(task_dir, pair_path),
        "llm_fallbacks": llm_fallbacks if llm_fallbacks is not None else int(previous.get("llm_fallbacks", 0) or 0),
    }


def referenced_columns(facts, by_name: dict, read: list[tuple[str, str]]) -> list[tuple[tuple[str, str], object]]:
    """(table key, documented Column) for every column the SQL reads that a documented table has:
    qualified columns through their alias, bare ones in the one read table that has them; only
    columns of the tables `read` (`_tables_of`)."""
    found = []
    for qualifier, name in facts.columns:
        if qualifier:
            target = facts.aliases.get(qualifier)
            doc = by_name.get(_lookup_key(target)) if target else None
            candidates = [doc] if doc is not None else []
        else:
            candidates = [by_name[_lookup_key(t)] for t in facts.tables if _lookup_key(t) in by_name]
        for doc in candidates:
            column = doc.column(name)
            if column is not None:
                if (doc.key, column) not in found:
                    found.append((doc.key, column))
                break
    return [(key, column) for key, column in found if key in read]


def _tables_of(facts, by_name: dict) -> list[tuple[str, str]]:
    keys = []
    for table in facts.tables:
        doc = by_name.get(_lookup_key(table))
        if doc is not None and doc.key not in keys:
            keys.append(doc.key)
    return keys


def _lookup_key(table: tuple[str, str]) -> tuple[str, str]:
    schema, name = table
    return ((schema or "public").lower(), name.lower())


def _index(docs: list[TableDoc]) -> dict:
    return {(doc.schema.lower(), doc.name.lower()): doc for doc in docs}


def _documents(task_dir: Path) -> list[TableDoc]:
    try:
        docs, _ = load_table_documents(task_dir, discover_tables(task_dir))
    except ValueError:
        return []
    return docs


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None


def _read_pairs(path: Path) -> list[dict]:
    """The pairs as sql_validation reads them (an entry that is not an object is an empty pair);
    none when the file cannot be read: the report never fails its step."""
    try:
        return load_pairs(path)
    except StepFailed:
        return []


def _validation(task_dir: Path, pair_path: Path | None) -> dict:
    counts = {key: 0 for key in VALIDATION_KEYS}
    if pair_path is None:
        return counts
    reports = sorted(task_dir.glob("sql_validation_*_report.json"), key=lambda p: p.name, reverse=True)
    for path in reports:
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("summary", {}).get("pair_file") != pair_path.name:
            continue
        for entry in data.get("pairs", []):
            counts["explain_valid"] += bool(entry.get("explain_valid", entry.get("initial_error") is None))
            counts["executed"] += bool(entry.get("executed"))
            counts["empty_results"] += bool(entry.get("empty_result"))
            counts["repaired"] += bool(entry.get("repaired"))
            counts["removed"] += bool(entry.get("removed"))
        break
    return counts


def _retrieval(task_dir: Path, pair_path: Path | None) -> dict | None:
    result_path = task_dir / TRAINING_RESULT
    if pair_path is None or not result_path.is_file():
        return None
    if result_path.stat().st_mtime < pair_path.stat().st_mtime:
        return None
    data = _read_json(result_path)
    retrieval = data.get("retrieval") if isinstance(data, dict) else None
    return retrieval if isinstance(retrieval, dict) else None


def render_markdown(report: dict) -> str:
    lines = ["# 问答对质量报告", "", f"- 问答对总数: {report['pairs_total']}",
             f"- 重复问题: {report['duplicate_questions']}",
             f"- 涉及记录管理字段（bookkeeping）的问答对占比: {report['bookkeeping_share'] * 100:.1f}%",
             f"- LLM生成失败后改用离线模板: {report.get('llm_fallbacks', 0)}", "",
             "## 复杂度分布", "", "| 级别 | 数量 |", "|---|---|"]
    names = {"simple": "简单", "moderate": "中等", "complex": "复杂", "highly_complex": "高度复杂"}
    lines += [f"| {names[level]} ({level}) | {count} |" for level, count in report["complexity"].items()]
    v = report["validation"]
    lines += ["", "## SQL验证", "", "| EXPLAIN通过 | 已执行 | 空结果 | 已修复 | 已删除 |", "|---|---|---|---|---|",
              f"| {v['explain_valid']} | {v['executed']} | {v['empty_results']} | {v['repaired']} | {v['removed']} |",
              "", "## 检索自召回", ""]
    r = report.get("retrieval")
    if r:
        lines += [f"- k = {r['k']}", f"- self_recall@1: {r['self_recall_at_1']:.3f}",
                  f"- self_recall@{r['k']}: {r['self_recall_at_5']:.3f}"]
    else:
        lines.append("- 尚未计算（training_load 之后才有）")
    lines += ["", "## 各表", "", "| 表 | 问答对 | 用到的字段 | 字段总数 |", "|---|---|---|---|"]
    lines += [f"| {t['table']} | {t['pairs']} | {t['columns_used']} | {t['columns_total']} |"
              for t in report["tables"]]
    return "\n".join(lines) + "\n"
