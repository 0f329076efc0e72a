"""What sql_validation tells its reader: `sql_validation_<ts>_report.json` (one entry per pair),
`sql_validation_<ts>_summary.log` (for a person) and the step's result dict.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from data_pipeline.validation.outcome import ErrorClass, ValidationOutcome
from data_pipeline.tasks.directory import write_json_atomic, write_text_atomic


@dataclass
class PairReport:
    index: int
    question: str
    sql: str
    first: ValidationOutcome
    final: ValidationOutcome
    final_sql: str
    repaired: bool = False
    rounds: int = 0
    seconds: float = 0.0
    repair_attempts: list[dict] = field(default_factory=list)
    removed: bool = False             # taken out of the pair file

    def as_dict(self) -> dict:
        entry = {
            "index": self.index, "question": self.question, "sql": self.sql,
            "valid": self.final.valid, "error": self.final.error, "error_class": self.final.error_class,
            "initial_error": self.first.error, "initial_error_class": self.first.error_class,
            "repaired": self.repaired, "rounds": self.rounds, "time": round(self.seconds, 4),
            "retries": self.first.retries,
            # the execution check (quality_report.json counts these)
            "explain_valid": self.first.explain_valid, "executed": self.final.executed,
            "row_count": self.final.row_count, "empty_result": self.first.error_class == ErrorClass.EMPTY_RESULT,
            "removed": self.removed,
        }
        if self.repaired:
            entry["repaired_sql"] = self.final_sql
        if self.repair_attempts:
            entry["repair_attempts"] = self.repair_attempts
        return entry


@dataclass
class RunTotals:
    pair_file: str
    started: datetime
    duration: float
    repair_enabled: bool
    repair_attempted: int = 0
    repair_successful: int = 0
    modified: int = 0
    deleted: int = 0
    failed_modifications: int = 0
    total_retries: int = 0
    backup_file: str | None = None
    modification_log: str | None = None


def result_dict(reports: list[PairReport], totals: RunTotals, report_file: str, summary_file: str) -> dict:
    """The step result: the reference's fields, then counts by error class and the file names."""
    valid = sum(1 for r in reports if r.final.valid)
    total = len(reports)
    times = [r.first.seconds for r in reports]
    return {
        "original_sql_count": total,
        "valid_sql_count": valid,
        "invalid_sql_count": total - valid,
        "success_rate": round(valid / total, 4) if total else 0.0,
        "repair_stats": {"attempted": totals.repair_attempted, "successful": totals.repair_successful,
                         "failed": totals.repair_attempted - totals.repair_successful},
        "file_modification_stats": {"modified": totals.modified, "deleted": totals.deleted,
                                    "failed_modifications": totals.failed_modifications},
        "average_execution_time": sum(times) / len(times) if times else 0.0,
        "total_retries": totals.total_retries,
        "duration": totals.duration,
        "error_class_counts": dict(Counter(r.first.error_class for r in reports if not r.first.valid)),
        "remaining_error_class_counts": dict(Counter(r.final.error_class for r in reports if not r.final.valid)),
        "pair_file": totals.pair_file,
        "report_file": report_file,
        "summary_file": summary_file,
        "backup_file": totals.backup_file,
        "modification_log": totals.modification_log,
    }


def write_reports(task_dir: Path, timestamp: str, reports: list[PairReport], totals: RunTotals) -> dict:
    """Write both report files; returns the step result dict that names them."""
    report_name = f"sql_validation_{timestamp}_report.json"
    summary_name = f"sql_validation_{timestamp}_summary.log"
    result = result_dict(reports, totals, report_name, summary_name)
    write_json_atomic(task_dir / report_name, {"summary": {k: v for k, v in result.items()
                                                           if k not in ("report_file",)},
                                               "pairs": [r.as_dict() for r in reports]})
    write_text_atomic(task_dir / summary_name, _summary_text(reports, totals, result))
    return result


def _summary_text(reports: list[PairReport], totals: RunTotals, result: dict) -> str:
    lines = [
        "SQL验证报告", "=" * 40,
        f"验证时间: {totals.started.strftime('%Y-%m-%d %H:%M:%S')}",
        f"问答对文件: {totals.pair_file}",
        f"耗时: {totals.duration:.2f} 秒", "",
        f"SQL总数: {result['original_sql_count']}",
        f"有效: {result['valid_sql_count']}",
        f"无效: {result['invalid_sql_count']}",
        f"成功率: {result['success_rate'] * 100:.1f}%",
        f"平均验证耗时: {result['average_execution_time'] * 1000:.1f} 毫秒",
        f"连接重试次数: {result['total_retries']}", "",
    ]
    if totals.repair_enabled:
        stats = result["repair_stats"]
        lines.append(f"LLM修复: 尝试 {stats['attempted']}, 成功 {stats['successful']}, 失败 {stats['failed']}")
    else:
        lines.append("LLM修复: 未启用")
    mods = result["file_modification_stats"]
    if totals.backup_file:
        lines.append(f"文件修改: 修改 {mods['modified']}, 删除 {mods['deleted']}, 备份 {totals.backup_file}")
    else:
        lines.append(f"文件修改: 修改 {mods['modified']}, 删除 {mods['deleted']}")
    if result["error_class_counts"]:
        lines += ["", "首次验证错误分类:"]
        lines += [f"  {name}: {count}" for name, count in sorted(result["error_class_counts"].items())]
    failed = [r for r in reports if not r.first.valid]
    if failed:
        lines += ["", "失败明细:"]
    for report in failed:
        status = "已修复" if report.repaired else "未修复"
        lines += [f"[第{report.index + 1}条] {status} ({report.first.error_class}) 问题: {report.question}",
                  f"  SQL: {' '.join(report.sql.split())}", f"  错误: {report.first.error}"]
        if report.repaired:
            lines.append(f"  修复后SQL（第{report.rounds}轮）: {' '.join(report.final_sql.split())}")
        elif report.rounds:
            lines.append(f"  修复{report.rounds}轮后仍失败: {report.final.error}")
    return "\n".join(lines) + "\n"
