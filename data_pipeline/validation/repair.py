"""LLM repair of SQL that failed validation: the question, the SQL, the error and the involved
tables' DDL go to the LLM; its answer is validated again, for up to `rounds` rounds.

Only the tables a SQL names (or the closest documented names, when it names one that does not
exist) are shown, so the prompt stays small whatever the size of the schema.
"""
from __future__ import annotations

import difflib
import logging
import threading
from dataclasses import dataclass, field

from data_pipeline.errors import LLMError
from data_pipeline.llm import budgets
from data_pipeline.llm.client import LLMClient
from data_pipeline.qa.documents import TableDoc
from data_pipeline.validation.explain_validator import SQLValidator
from data_pipeline.validation.outcome import ValidationOutcome
from data_pipeline.validation.statement_check import check_statement, referenced_tables

MAX_TABLES_IN_PROMPT = 12
# After this many LLM failures the LLM is taken to be down: the remaining repairs are skipped.
MAX_LLM_FAILURES = 3

_SYSTEM_PROMPT = ("你是一名PostgreSQL专家，负责修复无法通过校验的SQL查询。"
                  "只能使用给出的表和字段；修复后的SQL必须是单条只读的SELECT（或WITH）查询，语义与问题一致。"
                  '只输出JSON：{"sql": "修复后的SQL"}，不要任何解释。')


@dataclass
class RepairResult:
    repaired: bool
    sql: str
    outcome: ValidationOutcome
    rounds: int = 0
    attempts: list[dict] = field(default_factory=list)
    skipped_reason: str | None = None
    llm_unusable: bool = False   # no usable answer (or the LLM was given up on): the pair is removed


class SQLRepairer:
    def __init__(self, llm: LLMClient, validator: SQLValidator, docs: list[TableDoc], *, rounds: int = 2,
                 logger: logging.Logger | None = None):
        self.llm = llm
        self.validator = validator
        self.docs = docs
        self.rounds = rounds
        self.logger = logger or logging.getLogger("SQLRepairer")
        self._llm_failures = 0
        self._lock = threading.Lock()

    def repair(self, question: str, sql: str, outcome: ValidationOutcome) -> RepairResult:
        """Try to repair one failed SQL. Never raises for LLM trouble: the pair stays failed."""
        result = RepairResult(repaired=False, sql=sql, outcome=outcome)
        current_sql, current = sql, outcome
        for round_number in range(1, self.rounds + 1):
            if self._llm_down():
                result.skipped_reason = "LLM多次调用失败，跳过修复"
                result.llm_unusable = True
                break
            result.rounds = round_number
            try:
                candidate = self._ask(question, current_sql, current, result.attempts)
            except LLMError as exc:
                self._note_llm_failure()
                result.llm_unusable = True
                self.logger.warning("LLM修复调用失败: %s", exc.details)
                result.attempts.append({"round": round_number, "sql": None, "error": f"LLM调用失败: {exc.details}"})
                break
            current = self.validator.validate(candidate, question)
            # A candidate that failed stays out of the report: only SQL that passed is written anywhere.
            result.attempts.append({"round": round_number, "sql": candidate if current.valid else None,
                                    "error": current.error, "error_class": current.error_class})
            current_sql = candidate
            if current.valid:
                result.repaired, result.sql, result.outcome = True, candidate, current
                return result
        result.outcome = current
        return result

    def involved_tables(self, sql: str) -> list[TableDoc]:
        by_name = {doc.name.lower(): doc for doc in self.docs}
        chosen: dict[str, TableDoc] = {}
        for name in sorted(referenced_tables(sql)):
            if name in by_name:
                chosen[name] = by_name[name]
            else:
                for close in difflib.get_close_matches(name, list(by_name), n=2, cutoff=0.6):
                    chosen[close] = by_name[close]
        if not chosen:
            return self.docs[:MAX_TABLES_IN_PROMPT]
        return list(chosen.values())[:MAX_TABLES_IN_PROMPT]

    def _ask(self, question: str, sql: str, outcome: ValidationOutcome, attempts: list[dict]) -> str:
        schema = "\n\n".join(doc.schema_text() for doc in self.involved_tables(sql))
        earlier = "".join(f"\n- 第{a['round']}轮修复结果仍然失败: {a['error']}" for a in attempts if a.get("error_class"))
        prompt = (f"业务问题：{question}\n\n需要修复的SQL：\n{sql}\n\n"
                  f"数据库报错（{outcome.error_class}）：{outcome.error}{earlier}\n\n"
                  f"相关表结构：\n{schema}\n\n请给出修复后的SQL。")
        messages = [{"role": "system", "content": _SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        return self.llm.chat_json(messages, validate=_repaired_sql, temperature=0.1, max_tokens=budgets.repair())

    def _llm_down(self) -> bool:
        with self._lock:
            return self._llm_failures >= MAX_LLM_FAILURES

    def _note_llm_failure(self) -> None:
        with self._lock:
            self._llm_failures += 1


def _repaired_sql(answer) -> str:
    if not isinstance(answer, dict) or not isinstance(answer.get("sql"), str) or not answer["sql"].strip():
        raise ValueError('回答必须是 {"sql": "..."} 形式的JSON对象')
    sql = answer["sql"].strip()
    checked = check_statement(sql)
    if not checked.ok:
        raise ValueError(f"修复后的SQL不合格：{checked.error}")
    return sql
