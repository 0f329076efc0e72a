"""The acceptance checks of issue 16 on a task directory after the offline workflow, shared by the
demo, in-house and Debian schema tests: no duplicate question, bookkeeping share <= 0.10, every
quoted value of a question is what its SQL compares (typed for the column, a timestamp by its day),
every fact table has a by-time question, and `quality_report.json` equals a recount done here
from the files with regular expressions (not with the report's own parser).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from data_pipeline.qa.column_roles import is_boolean, is_bookkeeping, is_numeric, is_temporal, table_roles
from data_pipeline.qa.documents import discover_tables, load_table_documents

_QUOTED = re.compile(r"“([^”]*)”")
# column [cast to date] = literal, the literal typed: DATE '...', '...', a number, TRUE/FALSE
_COMPARISON = re.compile(r"(?:(\w+)\.)?\"?(\w+)\"?(\s+AS date\))?\s*=\s*(DATE '([^']*)'|'((?:[^']|'')*)'|"
                         r"(-?\d+(?:\.\d+)?)(?![\w.])|TRUE\b|FALSE\b)")
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def task_files(task_dir: Path):
    pair_file = max(task_dir.glob("*_pair.json"), key=lambda p: p.stat().st_mtime)
    pairs = json.loads(pair_file.read_text(encoding="utf-8"))
    docs, _ = load_table_documents(task_dir, discover_tables(task_dir))
    report = json.loads((task_dir / "quality_report.json").read_text(encoding="utf-8"))
    return pair_file, pairs, docs, report


def _ref_pattern(doc) -> str:
    ref = doc.name if doc.schema == "public" else f"{doc.schema}.{doc.name}"
    return "|".join(re.escape(r) for r in {ref, f'"{doc.name}"', f'{doc.schema}."{doc.name}"'})


def _reads(sql: str, doc) -> bool:
    return re.search(rf"\b(?:FROM|JOIN)\s+(?:{_ref_pattern(doc)})(?![\w.\"])", sql) is not None


def _column(sql: str, docs: list, qualifier: str, name: str):
    """The documented column a comparison reads: through its alias, else in a table the SQL reads."""
    read = [doc for doc in docs if _reads(sql, doc)]
    if qualifier:
        read = [doc for doc in read
                if re.search(rf"\b(?:FROM|JOIN)\s+(?:{_ref_pattern(doc)})\s+{re.escape(qualifier)}\b", sql)] or read
    return next((doc.column(name) for doc in read if doc.column(name) is not None), None)


def _level(sql: str) -> str:
    upper = sql.upper()
    if " OVER (" in upper or re.search(r"\b(UNION|INTERSECT|EXCEPT)\b", upper):
        return "highly_complex"
    joins = len(re.findall(r"\bJOIN\b", upper))
    if joins >= 2 or " HAVING " in upper or upper.startswith("WITH ") or upper.count("SELECT ") > 1:
        return "complex"
    if joins or " GROUP BY " in upper or re.search(r"\b(COUNT|SUM|AVG|MIN|MAX)\(", upper):
        return "moderate"
    return "simple"


def check_pair_quality(task_dir: Path, *, bookkeeping: tuple[str, ...] = ()) -> dict:
    """Assert every acceptance item on the task's files; returns the report for more checks."""
    _, pairs, docs, report = task_files(task_dir)
    questions = [_NOISE.sub("", p["question"]).lower() for p in pairs]
    assert len(set(questions)) == len(questions), "duplicate questions"

    keeping = {c.name for doc in docs for c in doc.columns if is_bookkeeping(c, bookkeeping)}
    touching = [p for p in pairs if keeping & set(re.findall(r"\w+", p["sql"]))]
    share = round(len(touching) / len(pairs), 4) if pairs else 0.0
    assert share <= 0.10, (share, [p["question"] for p in touching][:5])

    for pair in pairs:
        compared = []
        for table, name, cast, literal, day, text, number in _COMPARISON.findall(pair["sql"]):
            column = _column(pair["sql"], docs, table, name)
            if column is None:
                continue
            value = day or (text.replace("''", "'") if literal.startswith("'") else number or literal.lower())
            compared.append(value)
            if is_numeric(column):
                assert number, (pair, name)
            elif is_boolean(column):
                assert literal in ("TRUE", "FALSE"), (pair, name)
            elif is_temporal(column):
                assert day, (pair, name)
                if not column.type.lower().startswith("date"):
                    assert cast and "当天" in pair["question"], pair
            assert value in _QUOTED.findall(pair["question"]), (pair, value)
        for quoted in _QUOTED.findall(pair["question"]):
            assert quoted in compared, (pair, quoted)

    for doc in docs:
        roles = table_roles(doc, bookkeeping)
        if roles.measures and roles.dates:
            dates = [d.name for d in roles.dates]
            by_time = [p for p in pairs if _reads(p["sql"], doc) and " GROUP BY " in p["sql"]
                       and any(re.search(rf"\b{re.escape(d)}\b", p["sql"]) for d in dates)]
            assert by_time, f"fact table {doc.name} has no by-time question"

    assert report["pairs_total"] == len(pairs)
    assert report["duplicate_questions"] == 0
    assert report["bookkeeping_share"] == share
    levels = {"simple": 0, "moderate": 0, "complex": 0, "highly_complex": 0}
    for pair in pairs:
        levels[_level(pair["sql"])] += 1
    assert report["complexity"] == levels
    by_table = {entry["table"]: entry for entry in report["tables"]}
    for doc in docs:
        assert by_table[doc.table.full_name]["pairs"] == sum(1 for p in pairs if _reads(p["sql"], doc)), doc.name
        assert by_table[doc.table.full_name]["columns_total"] == len(doc.columns)
    return report


def recount_validation(task_dir: Path) -> dict:
    """The validation block of the report, counted from the newest sql_validation report file."""
    newest = max(task_dir.glob("sql_validation_*_report.json"), key=lambda p: p.name)
    entries = json.loads(newest.read_text(encoding="utf-8"))["pairs"]
    return {"explain_valid": sum(1 for e in entries if e["explain_valid"]),
            "executed": sum(1 for e in entries if e["executed"]),
            "empty_results": sum(1 for e in entries if e["empty_result"]),
            "repaired": sum(1 for e in entries if e["repaired"]),
            "removed": sum(1 for e in entries if e["removed"])}
