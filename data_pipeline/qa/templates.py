"""Question/SQL templates of the offline generator, for one anchor table and its foreign keys.

Counts, group-by on enum columns, sums and averages by date, top-N, joins along foreign keys
(one and two hops, and from the referenced side), filters on documented sample values, and the
analytic kinds of analytic_templates (HAVING, CTEs, window functions); every query keeps only
live rows where the table has a soft-delete column. Questions are phrased from the documented
Chinese names and say exactly what the SQL computes: the subject table, what it groups by, the
filter value as compared (typed for its column) and the time grain. The candidates come out
by rounds, one of each kind per round in `PRIORITY` order, so that the first N cover the kinds
that matter most (a fact table's measure by time and by dimension first); the caller EXPLAINs
them and keeps the first N valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest

from data_pipeline.qa.column_roles import (RolesByTable, TableRoles, alias, base_type, ident, is_temporal,
                                           soft_delete_condition, subject, table_ref, typed_value, usable_samples)
from data_pipeline.qa.documents import Column, ForeignKey, TableDoc

PER_KIND = 3
PRIORITY = ("sum_by_date", "count", "top_groups", "join_sum", "count_by_enum", "filter_count",
            "window_top_per_period", "monthly_change", "join_count", "having_count", "running_total", "above_average",
            "rank_by_count", "join_two_hops", "sum_by_enum", "join_month", "avg_by_month", "filter_rows",
            "having_sum", "share_of_total", "join_category", "join_filter", "top_rows", "referenced_count",
            "distinct_count", "date_range", "latest_rows", "filter_sum", "avg_latest_date", "enum_values",
            "avg_by_name", "missing_values")


@dataclass(frozen=True)
class Candidate:
    question: str
    sql: str
    kind: str


def table_candidates(doc: TableDoc, docs: dict[tuple[str, str], TableDoc], roles: RolesByTable) -> list[Candidate]:
    """Every candidate for `doc`, by rounds in PRIORITY order; joins only to tables in `docs`
    (`roles` has theirs)."""
    from data_pipeline.qa.analytic_templates import analytic_candidates

    found = _SingleTable(doc, roles[doc.key]).candidates() + _Joins(doc, docs, roles).candidates()
    found += analytic_candidates(doc, roles[doc.key])
    by_kind: dict[str, list[Candidate]] = {}
    for candidate in found:
        by_kind.setdefault(candidate.kind, []).append(candidate)
    ordered = [by_kind.get(kind, [])[:PER_KIND] for kind in PRIORITY]
    interleaved = [c for group in zip_longest(*ordered) for c in group if c is not None]
    unique, seen = [], set()
    for candidate in interleaved:
        if candidate.sql not in seen:
            seen.add(candidate.sql)
            unique.append(candidate)
    return unique


def rotations(items: list):
    """`rotated(k)`: the list starting at its k-th item (wrapping); empty stays empty."""
    def rotated(k: int) -> list:
        if not items:
            return []
        k %= len(items)
        return items[k:] + items[:k]
    return rotated


def _where(*conditions: str | None) -> str:
    present = [c for c in conditions if c]
    return f" WHERE {' AND '.join(present)}" if present else ""


def _day(column: Column, qualifier: str = "") -> str:
    """The column as a day: dates as they are, timestamps cast to date."""
    name = f"{qualifier}{ident(column.name)}"
    return name if base_type(column).startswith("date") else f"CAST({name} AS date)"


def filter_on(column: Column, value: str, qualifier: str = "") -> tuple[str, str] | None:
    """(the SQL condition, how the question says it) for `column` equal to a sample value, the
    literal typed for the column and quoted in the question exactly as compared: a timestamp is
    compared by its day and the question says “当天”. None when the value does not fit the type."""
    typed = typed_value(column, value)
    if typed is None:
        return None
    sql_literal, shown = typed
    if is_temporal(column):
        grain = "" if base_type(column).startswith("date") else "当天"
        return f"{_day(column, qualifier)} = {sql_literal}", f"{column.label}为“{shown}”{grain}"
    return f"{qualifier}{ident(column.name)} = {sql_literal}", f"{column.label}为“{shown}”"


class _SingleTable:
    def __init__(self, doc: TableDoc, roles: TableRoles):
        self.doc = doc
        self.table = table_ref(doc)
        self.live = soft_delete_condition(doc)
        self.roles = roles
        self.subject = subject(doc)

    def candidates(self) -> list[Candidate]:
        r = self.roles
        measures, dates, categories = r.measures[:4], r.dates[:2], r.categories[:3]
        names = (r.labels + r.codes)[:3]
        time_column = dates[0] if dates else None
        filterable = [c for c in categories + names + dates if usable_samples(c)]
        # (condition, phrase) on each column's first sample, and on its second (the first if alone)
        filters = [f for c in filterable for v in usable_samples(c, 1) if (f := filter_on(c, v))]
        other_filters = [f for c in filterable if (f := filter_on(c, usable_samples(c, 2)[-1]))]
        m = rotations(measures)       # each kind starts on another measure: more columns get used
        kinds = [
            [self._count()],
            [self._count_by(c) for c in categories],
            [self._sum_by(c, m(1)[0]) for c in categories] if measures else [],
            [self._daily_sum(d, x) for d in dates[:1] for x in m(0)[:3]],
            [self._top_groups(n, x) for n in names[:1] for x in m(0)[:3]],
            [self._top_rows(x) for x in m(2)],
            [self._filter_rows(*f) for f in filters],
            [self._monthly(d, x) for d in dates[:1] for x in m(1)[:2]],
            [self._distinct_count(c) for c in names + categories],
            [self._date_range(d) for d in ([time_column] if time_column else [])],
            [self._latest_rows(time_column)] if time_column else [],
            [self._filter_count(*f) for f in other_filters],
            [self._filter_sum(*f, m(3)[0]) for f in filters] if measures else [],
            [self._latest_day_average(d, x) for d in dates[:1] for x in m(2)[:2]],
            [self._values_of(c) for c in categories],
            [self._average_by(n, x) for n in names[:1] for x in m(3)[:2]],
            [self._missing(c) for c in (names + categories + measures)[:3] if not c.not_null],
        ]
        return [c for kind in kinds for c in kind if c is not None]

    def _display_columns(self, shown: Column | None = None) -> str:
        r = self.roles
        columns = [c for c in [r.name_column, *r.categories[:1], *r.dates[:1], *r.measures[:2]] if c is not None]
        if shown is not None and shown not in columns:
            columns.append(shown)
        if not columns:
            columns = [c for c in self.doc.columns if not c.primary_key][:5] or self.doc.columns[:5]
        return ", ".join(f"{ident(c.name)} AS {alias(c.label)}" for c in columns)

    def _count(self) -> Candidate:
        return Candidate(f"{self.subject}共有多少条记录？",
                         f"SELECT COUNT(*) AS 记录数 FROM {self.table}{_where(self.live)};", "count")

    def _count_by(self, c: Column) -> Candidate:
        return Candidate(f"按{c.label}统计{self.subject}的记录数",
                         f"SELECT {ident(c.name)} AS {alias(c.label)}, COUNT(*) AS 记录数 FROM {self.table}"
                         f"{_where(self.live)} GROUP BY {ident(c.name)} ORDER BY 记录数 DESC;", "count_by_enum")

    def _sum_by(self, c: Column, m: Column) -> Candidate:
        return Candidate(f"按{c.label}分组，{self.subject}的{m.label}合计分别是多少？",
                         f"SELECT {ident(c.name)} AS {alias(c.label)}, SUM({ident(m.name)}) AS {alias(m.label + '合计')} "
                         f"FROM {self.table}{_where(self.live)} GROUP BY {ident(c.name)} ORDER BY 2 DESC NULLS LAST;",
                         "sum_by_enum")

    def _daily_sum(self, d: Column, m: Column) -> Candidate:
        return Candidate(f"按{d.label}统计{self.subject}每天的{m.label}合计",
                         f"SELECT {_day(d)} AS {alias(d.label)}, SUM({ident(m.name)}) AS {alias(m.label + '合计')} "
                         f"FROM {self.table}{_where(self.live)} GROUP BY 1 ORDER BY 1;", "sum_by_date")

    def _monthly(self, d: Column, m: Column) -> Candidate:
        return Candidate(f"按{d.label}所在月份统计{self.subject}的{m.label}合计与平均值",
                         f"SELECT CAST(date_trunc('month', {ident(d.name)}) AS date) AS 月份, "
                         f"SUM({ident(m.name)}) AS {alias(m.label + '合计')}, "
                         f"ROUND(CAST(AVG({ident(m.name)}) AS numeric), 2) AS {alias('平均' + m.label)} "
                         f"FROM {self.table}{_where(self.live)} GROUP BY 1 ORDER BY 1;", "avg_by_month")

    def _latest_day_average(self, d: Column, m: Column) -> Candidate:
        latest = f"(SELECT MAX({ident(d.name)}) FROM {self.table}{_where(self.live)})"
        return Candidate(f"{self.subject}最近一个{d.label}的平均{m.label}是多少？",
                         f"SELECT ROUND(CAST(AVG({ident(m.name)}) AS numeric), 2) AS {alias('平均' + m.label)} "
                         f"FROM {self.table}{_where(f'{ident(d.name)} = {latest}', self.live)};", "avg_latest_date")

    def _top_groups(self, n: Column, m: Column) -> Candidate:
        return Candidate(f"按{n.label}汇总{self.subject}的{m.label}，合计最高的前10个{n.label}是哪些？",
                         f"SELECT {ident(n.name)} AS {alias(n.label)}, SUM({ident(m.name)}) AS {alias(m.label + '合计')} "
                         f"FROM {self.table}{_where(self.live)} GROUP BY {ident(n.name)} "
                         f"ORDER BY 2 DESC NULLS LAST LIMIT 10;", "top_groups")

    def _average_by(self, n: Column, m: Column) -> Candidate:
        return Candidate(f"按{n.label}分组，{self.subject}的平均{m.label}分别是多少？",
                         f"SELECT {ident(n.name)} AS {alias(n.label)}, "
                         f"ROUND(CAST(AVG({ident(m.name)}) AS numeric), 2) AS {alias('平均' + m.label)} "
                         f"FROM {self.table}{_where(self.live)} GROUP BY {ident(n.name)} ORDER BY 2 DESC NULLS LAST;",
                         "avg_by_name")

    def _top_rows(self, m: Column) -> Candidate:
        return Candidate(f"{m.label}最高的10条{self.subject}记录",
                         f"SELECT {self._display_columns(m)} FROM {self.table}{_where(self.live)} "
                         f"ORDER BY {ident(m.name)} DESC NULLS LAST LIMIT 10;", "top_rows")

    def _filter_rows(self, condition: str, phrase: str) -> Candidate:
        return Candidate(f"查询{phrase}的{self.subject}记录",
                         f"SELECT {self._display_columns()} FROM {self.table}{_where(condition, self.live)} LIMIT 100;",
                         "filter_rows")

    def _filter_count(self, condition: str, phrase: str) -> Candidate:
        return Candidate(f"{phrase}的{self.subject}记录有多少条？",
                         f"SELECT COUNT(*) AS 记录数 FROM {self.table}{_where(condition, self.live)};",
                         "filter_count")

    def _filter_sum(self, condition: str, phrase: str, m: Column) -> Candidate:
        return Candidate(f"{phrase}的{self.subject}中，{m.label}合计是多少？",
                         f"SELECT SUM({ident(m.name)}) AS {alias(m.label + '合计')} FROM {self.table}"
                         f"{_where(condition, self.live)};", "filter_sum")

    def _distinct_count(self, c: Column) -> Candidate:
        return Candidate(f"{self.subject}中共有多少个不同的{c.label}？",
                         f"SELECT COUNT(DISTINCT {ident(c.name)}) AS {alias(c.label + '数量')} FROM {self.table}"
                         f"{_where(self.live)};", "distinct_count")

    def _date_range(self, d: Column) -> Candidate:
        return Candidate(f"{self.subject}的{d.label}最早和最晚分别是什么时候？",
                         f"SELECT MIN({ident(d.name)}) AS {alias('最早' + d.label)}, "
                         f"MAX({ident(d.name)}) AS {alias('最晚' + d.label)} FROM {self.table}{_where(self.live)};",
                         "date_range")

    def _latest_rows(self, d: Column) -> Candidate:
        return Candidate(f"按{d.label}列出最新的10条{self.subject}记录",
                         f"SELECT {self._display_columns()} FROM {self.table}{_where(self.live)} "
                         f"ORDER BY {ident(d.name)} DESC NULLS LAST LIMIT 10;", "latest_rows")

    def _values_of(self, c: Column) -> Candidate:
        return Candidate(f"{self.subject}中的{c.label}有哪些取值？",
                         f"SELECT DISTINCT {ident(c.name)} AS {alias(c.label)} FROM {self.table}{_where(self.live)} "
                         f"ORDER BY 1;", "enum_values")

    def _missing(self, c: Column) -> Candidate:
        return Candidate(f"{self.subject}中{c.label}为空的记录有多少条？",
                         f"SELECT COUNT(*) AS 记录数 FROM {self.table}"
                         f"{_where(f'{ident(c.name)} IS NULL', self.live)};", "missing_values")


class _Joins:
    """Templates along the anchor's foreign keys (to its parents and grandparents) and from the
    tables that reference it. Questions name the table whose column they group or filter by."""

    def __init__(self, doc: TableDoc, docs: dict[tuple[str, str], TableDoc], roles: RolesByTable):
        self.doc = doc
        self.docs = docs
        self.all_roles = roles
        self.roles = roles[doc.key]
        self.subject = subject(doc)

    def candidates(self) -> list[Candidate]:
        found = []
        for fk, parent in self._parents(self.doc):
            parent_roles = self.all_roles[parent.key]
            label = parent_roles.name_column
            if label is None:
                continue
            join = f"FROM {table_ref(self.doc)} t JOIN {table_ref(parent)} p ON {_on(fk, 't', 'p')}"
            live = (soft_delete_condition(self.doc, "t"), soft_delete_condition(parent, "p"))
            of = f"{subject(parent)}的{label.label}"
            found.append(self._count_by_parent(join, live, label, of))
            found += [self._sum_by_parent(join, live, label, of, m) for m in self.roles.measures[:2]]
            found += [self._month_by_parent(join, live, label, of, d, m)
                      for d in self.roles.dates[:1] for m in self.roles.measures[:1]]
            found += [self._count_by_parent_category(join, live, parent, c) for c in parent_roles.categories[:1]]
            found += [self._filter_by_parent(join, live, label, subject(parent), v) for v in usable_samples(label, 1)]
            for fk2, grandparent in self._parents(parent):
                top = self.all_roles[grandparent.key].name_column
                if top is not None and grandparent.key != self.doc.key:
                    found.append(self._two_hops(fk, parent, fk2, grandparent, top))
        return [c for c in found + self._referenced_by() if c is not None]

    def _parents(self, doc: TableDoc):
        for fk in doc.foreign_keys:
            parent = self.docs.get((fk.target.qualified_schema, fk.target.name))
            if parent is not None and all(parent.column(c) for c in fk.target_columns):
                yield fk, parent

    def _count_by_parent(self, join: str, live, label: Column, of: str) -> Candidate:
        return Candidate(f"按{of}统计{self.subject}的记录数，最多的前20个是哪些？",
                         f"SELECT p.{ident(label.name)} AS {alias(label.label)}, COUNT(*) AS 记录数 {join}"
                         f"{_where(*live)} GROUP BY p.{ident(label.name)} ORDER BY 记录数 DESC LIMIT 20;",
                         "join_count")

    def _sum_by_parent(self, join: str, live, label: Column, of: str, m: Column) -> Candidate:
        return Candidate(f"按{of}汇总{self.subject}的{m.label}，合计最高的前10个是哪些？",
                         f"SELECT p.{ident(label.name)} AS {alias(label.label)}, "
                         f"SUM(t.{ident(m.name)}) AS {alias(m.label + '合计')} {join}{_where(*live)} "
                         f"GROUP BY p.{ident(label.name)} ORDER BY 2 DESC NULLS LAST LIMIT 10;", "join_sum")

    def _month_by_parent(self, join: str, live, label: Column, of: str, d: Column, m: Column) -> Candidate:
        return Candidate(f"按{of}和{d.label}所在月份统计{self.subject}的{m.label}合计",
                         f"SELECT p.{ident(label.name)} AS {alias(label.label)}, "
                         f"CAST(date_trunc('month', t.{ident(d.name)}) AS date) AS 月份, "
                         f"SUM(t.{ident(m.name)}) AS {alias(m.label + '合计')} {join}{_where(*live)} "
                         f"GROUP BY 1, 2 ORDER BY 2, 3 DESC NULLS LAST;", "join_month")

    def _count_by_parent_category(self, join: str, live, parent: TableDoc, c: Column) -> Candidate:
        return Candidate(f"按{subject(parent)}的{c.label}统计{self.subject}的记录数",
                         f"SELECT p.{ident(c.name)} AS {alias(c.label)}, COUNT(*) AS 记录数 {join}{_where(*live)} "
                         f"GROUP BY p.{ident(c.name)} ORDER BY 记录数 DESC;", "join_category")

    def _filter_by_parent(self, join: str, live, label: Column, parent: str, value: str) -> Candidate | None:
        found = filter_on(label, value, "p.")
        if found is None:
            return None
        condition, phrase = found
        return Candidate(f"{parent}的{phrase}的{self.subject}记录有多少条？",
                         f"SELECT COUNT(*) AS 记录数 {join}{_where(condition, *live)};", "join_filter")

    def _two_hops(self, fk: ForeignKey, parent: TableDoc, fk2: ForeignKey, grandparent: TableDoc,
                  top: Column) -> Candidate:
        joins = (f"FROM {table_ref(self.doc)} t JOIN {table_ref(parent)} p ON {_on(fk, 't', 'p')} "
                 f"JOIN {table_ref(grandparent)} g ON {_on(fk2, 'p', 'g')}")
        live = (soft_delete_condition(self.doc, "t"), soft_delete_condition(parent, "p"),
                soft_delete_condition(grandparent, "g"))
        measure = self.roles.measures[0] if self.roles.measures else None
        by = f"经由{subject(parent)}关联的{subject(grandparent)}的{top.label}"
        if measure is None:
            return Candidate(f"按{by}统计{self.subject}的记录数",
                             f"SELECT g.{ident(top.name)} AS {alias(top.label)}, COUNT(*) AS 记录数 {joins}"
                             f"{_where(*live)} GROUP BY g.{ident(top.name)} ORDER BY 记录数 DESC;", "join_two_hops")
        return Candidate(f"按{by}汇总{self.subject}的{measure.label}合计",
                         f"SELECT g.{ident(top.name)} AS {alias(top.label)}, "
                         f"SUM(t.{ident(measure.name)}) AS {alias(measure.label + '合计')} {joins}{_where(*live)} "
                         f"GROUP BY g.{ident(top.name)} ORDER BY 2 DESC NULLS LAST;", "join_two_hops")

    def _referenced_by(self) -> list[Candidate]:
        label = self.roles.name_column
        if label is None:
            return []
        found = []
        for child in self.docs.values():
            for fk in child.foreign_keys:
                if (fk.target.qualified_schema, fk.target.name) != self.doc.key or child.key == self.doc.key:
                    continue
                child_live = soft_delete_condition(child, "c")
                on = _on(fk, "c", "p") + (f" AND {child_live}" if child_live else "")
                found.append(Candidate(
                    f"按{self.subject}的{label.label}统计各有多少条{subject(child)}记录（含没有记录的）",
                    f"SELECT p.{ident(label.name)} AS {alias(label.label)}, COUNT(c.{ident(fk.columns[0])}) AS 记录数 "
                    f"FROM {table_ref(self.doc)} p LEFT JOIN {table_ref(child)} c ON {on}"
                    f"{_where(soft_delete_condition(self.doc, 'p'))} GROUP BY p.{ident(label.name)} "
                    f"ORDER BY 记录数 DESC;", "referenced_count"))
        return found


def _on(fk: ForeignKey, child: str, parent: str) -> str:
    return " AND ".join(f"{child}.{ident(a)} = {parent}.{ident(b)}" for a, b in zip(fk.columns, fk.target_columns))
