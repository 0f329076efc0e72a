"""The words of a table's documentation: database comments, LLM comments, the naming dictionary.

Rules:
- A comment is ranked: missing or just the column name (0) < non-Chinese text (1) < Chinese text
  (2). A database comment is only ever replaced by a strictly better one, so an LLM answer can
  fill a gap or translate, never overwrite a Chinese comment someone wrote.
- LLM answers are matched to columns by name, never by position; answers for unknown columns are
  ignored, refusals and apologies are rejected, and enum meanings are kept only for values that
  really occur in the column.
- Offline (no LLM, or the LLM failed), the database's comments stand, and the naming dictionary
  fills columns and tables that have none. Every column ends up described: where the dictionary
  does not know every word, by the name's readable English words ("release year", "film ID").
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from data_pipeline.errors import LLMError
from data_pipeline.llm import budgets
from data_pipeline.schema import naming
from data_pipeline.schema.model import Column, TableComments, TableInfo

_CJK = re.compile(r"[\u4e00-\u9fff]")
_PLACEHOLDERS = {"", "-", "--", "null", "none", "todo", "tbd", "n/a", "无", "暂无", "空", "备注", "注释"}
_REFUSALS = ("抱歉", "对不起", "无法确定", "无法提供", "无法判断", "不确定", "作为ai", "作为一个ai",
             "sorry", "i cannot", "i can't", "unable to", "as an ai")
MAX_NAME_CHARS = 50
MAX_COMMENT_CHARS = 200
MAX_DESCRIPTION_CHARS = 500
_PROMPT_SAMPLES = 3
_PROMPT_SAMPLE_CHARS = 30

SYSTEM_PROMPT = (
    "你是资深的数据库文档工程师。根据业务背景、表名、列名、数据类型、已有注释和样例数据，"
    "为数据库表及其每个字段写出准确、简洁的中文注释。只输出JSON，不要任何解释。"
)


def one_line(text: str | None) -> str:
    """Whitespace (newlines included) collapsed: comments live on one line in DDL and MD."""
    return re.sub(r"\s+", " ", text or "").strip()


def quality(text: str | None, name: str) -> int:
    text = one_line(text)
    if text.lower() in _PLACEHOLDERS or text.lower() in {name.lower(), name.lower().replace("_", " ")}:
        return 0
    return 2 if _CJK.search(text) else 1


def usable_chinese(text: str, limit: int) -> bool:
    lowered = text.lower()
    return bool(text) and len(text) <= limit and bool(_CJK.search(text)) and not any(
        marker in lowered for marker in _REFUSALS)


@dataclass
class LLMAnswer:
    chinese_name: str
    description: str
    column_comments: dict[str, str] = field(default_factory=dict)
    enum_meanings: dict[str, dict[str, str]] = field(default_factory=dict)


def offline_comments(table: TableInfo) -> TableComments:
    return merge(table, None)


def document_comments(table: TableInfo, business_context: str | None, llm,
                      logger: logging.Logger) -> tuple[TableComments, str | None]:
    """Comments for the table, and the LLM's failure (None if it answered or none is configured).

    An LLM failure falls back to the offline comments: the database's own comments stay, and the
    failure is reported by the caller, never written into a document.
    """
    if llm is None:
        return offline_comments(table), None
    try:
        return llm_comments(llm, table, business_context), None
    except LLMError as exc:
        logger.warning("表 %s 的LLM注释生成失败，改用数据库注释与命名词典: %s", table.full_name, exc.details)
        return offline_comments(table), exc.details


def llm_comments(llm, table: TableInfo, business_context: str | None) -> TableComments:
    """Comments with the LLM's answer merged in; LLMError propagates (the caller falls back)."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": build_prompt(table, business_context)}]
    answer = llm.chat_json(messages, validate=lambda value: validate_answer(value, table),
                           max_tokens=budgets.table_comments(len(table.columns)))
    return merge(table, answer)


def build_prompt(table: TableInfo, business_context: str | None) -> str:
    columns = []
    for column in table.columns:
        entry = {"name": column.name, "type": column.type}
        if one_line(column.comment):
            entry["existing_comment"] = one_line(column.comment)[:MAX_COMMENT_CHARS]
        if column.name in table.primary_key:
            entry["primary_key"] = True
        fk = table.foreign_key_of(column.name)
        if fk:
            entry["references"] = f"{fk.ref_schema}.{fk.ref_table}"
        if column.enum_values:
            entry["enum_values"] = column.enum_values
        elif column.samples:
            entry["samples"] = [s[:_PROMPT_SAMPLE_CHARS] for s in column.samples[:_PROMPT_SAMPLES]]
        columns.append(entry)
    facts = {"business_context": one_line(business_context) or "（未提供）",
             "table": f"{table.schema}.{table.name}", "existing_table_comment": one_line(table.comment),
             "row_count": table.row_count, "columns": columns}
    return (
        "请为下面的表写中文注释。\n"
        + json.dumps(facts, ensure_ascii=False, indent=1)
        + "\n\n输出JSON格式：\n"
        '{"table_name_cn": "简短的中文表名（不超过20字）", '
        '"table_description": "一两句话说明该表存储什么业务数据", '
        '"columns": [{"name": "原样抄写的列名", "comment": "中文注释（不超过30字）", '
        '"enum_meanings": {"取值": "含义"}}]}\n'
        "要求：columns 覆盖上面每一列，name 必须与输入列名完全一致；"
        "enum_meanings 只用于给出了 enum_values 的列，只写你确定含义的取值，不确定就省略；"
        "已有注释准确时可沿用。"
    )


def validate_answer(value, table: TableInfo) -> LLMAnswer:
    """The usable part of an LLM answer; ValueError (with a reason for the re-ask) otherwise."""
    if not isinstance(value, dict):
        raise ValueError("回答必须是JSON对象")
    chinese_name = one_line(_text(value.get("table_name_cn")))
    description = one_line(_text(value.get("table_description")))
    if not usable_chinese(chinese_name, MAX_NAME_CHARS):
        raise ValueError("table_name_cn 必须是简短的中文表名")
    if not usable_chinese(description, MAX_DESCRIPTION_CHARS):
        description = chinese_name
    items = value.get("columns")
    if not isinstance(items, list):
        raise ValueError("columns 必须是数组")
    names = {c.name: c.name for c in table.columns}
    folded = {c.name.lower(): c.name for c in table.columns}
    answer = LLMAnswer(chinese_name, description)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        raw_name = item["name"].strip().strip('"')
        name = names.get(raw_name) or folded.get(raw_name.lower())
        comment = one_line(_text(item.get("comment")))
        if name is None or not usable_chinese(comment, MAX_COMMENT_CHARS):
            continue
        answer.column_comments[name] = comment
        meanings = _checked_meanings(item.get("enum_meanings"), table.column(name))
        if meanings:
            answer.enum_meanings[name] = meanings
    missing = [c.name for c in table.columns if c.name not in answer.column_comments]
    if table.columns and len(missing) * 2 > len(table.columns):
        raise ValueError("以下列缺少可用的中文注释: " + ", ".join(missing[:30]))
    return answer


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _checked_meanings(meanings, column: Column | None) -> dict[str, str]:
    """Enum meanings for values the column really has; invented values are dropped."""
    if not isinstance(meanings, dict) or column is None or not column.enum_values:
        return {}
    real = set(column.enum_values)
    checked = {}
    for key, meaning in meanings.items():
        text = one_line(_text(meaning))
        if str(key) in real and text and len(text) <= MAX_NAME_CHARS and not any(
                marker in text.lower() for marker in _REFUSALS):
            checked[str(key)] = text
    return checked


def merge(table: TableInfo, answer: LLMAnswer | None) -> TableComments:
    column_comments = {}
    for column in table.columns:
        comment = _column_comment(column, answer)
        if comment:
            column_comments[column.name] = comment
    db_comment = one_line(table.comment)
    db_quality = quality(db_comment, table.name)
    if answer and db_quality < 2:
        table_comment, chinese_name, description = answer.chinese_name, answer.chinese_name, answer.description
    elif db_quality:
        short = re.split(r"[（(，,。;；]", db_comment, maxsplit=1)[0].strip()
        table_comment = db_comment
        chinese_name = short if short and len(short) <= MAX_NAME_CHARS else db_comment[:MAX_NAME_CHARS]
        description = answer.description if answer else db_comment
    else:
        label = naming.table_label(table.name) or naming.table_english_label(table.name)
        table_comment, chinese_name, description = label, label, label
    return TableComments(chinese_name=chinese_name, description=description, table_comment=table_comment,
                         column_comments=column_comments, llm_used=answer is not None)


def _column_comment(column: Column, answer: LLMAnswer | None) -> str | None:
    db_comment = one_line(column.comment)
    db_quality = quality(db_comment, column.name)
    llm_comment = answer.column_comments.get(column.name) if answer else None
    if llm_comment and db_quality < 2:
        comment = llm_comment
    elif db_quality:
        comment = db_comment
    else:
        comment = naming.describe(column.name)
    meanings = answer.enum_meanings.get(column.name) if answer else None
    if comment and meanings and not all(value in comment for value in meanings):
        comment += "（" + "；".join(f"{value}={meaning}" for value, meaning in meanings.items()) + "）"
    return comment
