"""The offline generator's analytic kinds, for the complex and highly complex levels of the
quality report: grouping with HAVING, CTEs, and window functions (top N per period, running
totals, period-over-period change, shares of a total, rankings), where the table has what they
need (a measure, a date, a name or category to group by).
"""
from __future__ import annotations

from data_pipeline.qa.column_roles import TableRoles, alias, ident, soft_delete_condition, subject, table_ref
from data_pipeline.qa.documents import Column, TableDoc
from data_pipeline.qa.templates import Candidate, _day, _where, rotations


def analytic_candidates(doc: TableDoc, roles: TableRoles) -> list[Candidate]:
    maker = _Analytic(doc, roles)
    dates = roles.dates[:1]
    m = rotations(roles.measures[:4])     # each kind starts on another measure
    groups = (roles.labels + roles.codes)[:1] + roles.categories[:2]
    found = []
    for d in dates:
        found += [maker.running_total(d, x) for x in m(1)[:2]]
        found += [maker.monthly_change(d, x) for x in m(0)[:2]]
        found += [maker.top_per_month(d, n, x) for n in groups[:1] for x in m(2)[:1]]
    found += [maker.above_average(x) for x in m(1)[:2]]
    found += [maker.having_sum(g, x) for g in groups[:1] for x in m(2)[:2]]
    found += [maker.share_of_total(g, x) for g in groups[:2] for x in m(3)[:1]]
    for g in groups:
        found += [maker.having_count(g), maker.rank_by_count(g)]
    return found


class _Analytic:
    def __init__(self, doc: TableDoc, roles: TableRoles):
        self.table = table_ref(doc)
        self.live = soft_delete_condition(doc)
        self.subject = subject(doc)

    def running_total(self, d: Column, m: Column) -> Candidate:
        total = alias(m.label + "合计")
        return Candidate(f"按{d.label}逐日统计{self.subject}的{m.label}合计及截至当天的累计值",
                         f"SELECT {_day(d)} AS {alias(d.label)}, SUM({ident(m.name)}) AS {total}, "
                         f"SUM(SUM({ident(m.name)})) OVER (ORDER BY {_day(d)}) AS 累计值 "
                         f"FROM {self.table}{_where(self.live)} GROUP BY 1 ORDER BY 1;", "running_total")

    def monthly_change(self, d: Column, m: Column) -> Candidate:
        return Candidate(f"按{d.label}所在月份统计{self.subject}的{m.label}合计，以及与上个月相比的变化",
                         f"WITH 月度 AS (SELECT CAST(date_trunc('month', {ident(d.name)}) AS date) AS 月份, "
                         f"SUM({ident(m.name)}) AS 合计 FROM {self.table}{_where(self.live)} GROUP BY 1) "
                         f"SELECT 月份, 合计 AS {alias(m.label + '合计')}, "
                         f"合计 - LAG(合计) OVER (ORDER BY 月份) AS 环比变化 FROM 月度 ORDER BY 月份;",
                         "monthly_change")

    def top_per_month(self, d: Column, n: Column, m: Column) -> Candidate:
        return Candidate(f"按{d.label}所在月份，每月{self.subject}的{m.label}合计最高的前3个{n.label}是哪些？",
                         f"SELECT 月份, {alias(n.label)}, {alias(m.label + '合计')} FROM ("
                         f"SELECT CAST(date_trunc('month', {ident(d.name)}) AS date) AS 月份, "
                         f"{ident(n.name)} AS {alias(n.label)}, SUM({ident(m.name)}) AS {alias(m.label + '合计')}, "
                         f"ROW_NUMBER() OVER (PARTITION BY date_trunc('month', {ident(d.name)}) "
                         f"ORDER BY SUM({ident(m.name)}) DESC NULLS LAST) AS 排名 "
                         f"FROM {self.table}{_where(self.live)} GROUP BY 1, 2, date_trunc('month', {ident(d.name)})"
                         f") 排名表 WHERE 排名 <= 3 ORDER BY 月份, 排名;", "window_top_per_period")

    def above_average(self, m: Column) -> Candidate:
        return Candidate(f"{m.label}高于全部{self.subject}平均{m.label}的记录有多少条？",
                         f"WITH 平均 AS (SELECT AVG({ident(m.name)}) AS 平均值 FROM {self.table}{_where(self.live)}) "
                         f"SELECT COUNT(*) AS 记录数 FROM {self.table} CROSS JOIN 平均"
                         f"{_where(f'{ident(m.name)} > 平均.平均值', self.live)};", "above_average")

    def having_sum(self, g: Column, m: Column) -> Candidate:
        total = f"SUM({ident(m.name)})"
        return Candidate(f"按{g.label}汇总{self.subject}的{m.label}，合计高于各{g.label}平均水平的有哪些？",
                         f"SELECT {ident(g.name)} AS {alias(g.label)}, {total} AS {alias(m.label + '合计')} "
                         f"FROM {self.table}{_where(self.live)} GROUP BY {ident(g.name)} "
                         f"HAVING {total} > (SELECT SUM({ident(m.name)}) / NULLIF(COUNT(DISTINCT {ident(g.name)}), 0) "
                         f"FROM {self.table}{_where(self.live)}) ORDER BY 2 DESC;", "having_sum")

    def share_of_total(self, g: Column, m: Column) -> Candidate:
        return Candidate(f"按{g.label}分组，各组{self.subject}的{m.label}合计占总量的百分比是多少？",
                         f"SELECT {ident(g.name)} AS {alias(g.label)}, SUM({ident(m.name)}) AS {alias(m.label + '合计')}, "
                         f"ROUND(CAST(100 * SUM({ident(m.name)}) / NULLIF(SUM(SUM({ident(m.name)})) OVER (), 0) "
                         f"AS numeric), 2) AS 占比 FROM {self.table}{_where(self.live)} GROUP BY {ident(g.name)} "
                         f"ORDER BY 2 DESC NULLS LAST;", "share_of_total")

    def having_count(self, g: Column) -> Candidate:
        return Candidate(f"哪些{g.label}的{self.subject}记录不少于2条？各有多少条？",
                         f"SELECT {ident(g.name)} AS {alias(g.label)}, COUNT(*) AS 记录数 FROM {self.table}"
                         f"{_where(self.live)} GROUP BY {ident(g.name)} HAVING COUNT(*) >= 2 ORDER BY 记录数 DESC;",
                         "having_count")

    def rank_by_count(self, g: Column) -> Candidate:
        return Candidate(f"按{g.label}统计{self.subject}的记录数并排名，前10名是哪些？",
                         f"SELECT {ident(g.name)} AS {alias(g.label)}, COUNT(*) AS 记录数, "
                         f"RANK() OVER (ORDER BY COUNT(*) DESC) AS 排名 FROM {self.table}{_where(self.live)} "
                         f"GROUP BY {ident(g.name)} ORDER BY 排名 LIMIT 10;", "rank_by_count")
