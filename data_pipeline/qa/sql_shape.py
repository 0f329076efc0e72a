"""What a pair's SQL is made of, read from the SQL itself (sqlglot, PostgreSQL dialect): its
complexity level, the tables and columns it touches, the literals it compares, its template.

Complexity follows the four levels OmniSQL uses:
- simple: one table, no aggregate;
- moderate: a join, or aggregates / grouping;
- complex: two or more joins, grouping with HAVING, a subquery or a CTE;
- highly_complex: window functions, nested CTEs (a CTE reading another, or a WITH inside a CTE)
  or set operations (UNION / INTERSECT / EXCEPT).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sqlglot
from sqlglot import exp

LEVELS = ("simple", "moderate", "complex", "highly_complex")


@dataclass(frozen=True)
class Compared:
    """A literal the SQL compares a column (or a column cast) with, as the text the question quotes."""
    column: str
    value: str
    kind: str       # "string", "number", "boolean", "date", "timestamp", "null"


@dataclass
class SQLShape:
    level: str
    tables: list[tuple[str, str]] = field(default_factory=list)   # (schema or "", name), as written
    columns: list[tuple[str | None, str]] = field(default_factory=list)  # (table alias/name or None, column)
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)     # alias -> (schema, name)
    compared: list[Compared] = field(default_factory=list)
    template: str = ""
    parsed: bool = True


@lru_cache(maxsize=4096)
def shape(sql: str) -> SQLShape:
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return SQLShape(level="simple", parsed=False, template=" ".join(sql.split()))
    if tree is None:
        return SQLShape(level="simple", parsed=False, template="")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables, aliases = [], {}
    for table in tree.find_all(exp.Table):
        if not table.db and table.name.lower() in cte_names:
            continue
        key = (table.db or "", table.name)
        if key not in tables:
            tables.append(key)
        aliases[table.alias_or_name] = key
    columns = []
    for column in tree.find_all(exp.Column):
        item = (column.table or None, column.name)
        if item not in columns:
            columns.append(item)
    return SQLShape(level=complexity(tree), tables=tables, columns=columns, aliases=aliases,
                    compared=_compared(tree), template=_template(tree))


def complexity(tree: exp.Expression) -> str:
    if tree.find(exp.Window) is not None or tree.find(exp.SetOperation) is not None or _nested_ctes(tree):
        return "highly_complex"
    joins = len(list(tree.find_all(exp.Join)))
    selects = len(list(tree.find_all(exp.Select)))
    if joins >= 2 or tree.find(exp.Having) is not None or tree.find(exp.CTE) is not None or selects > 1:
        return "complex"
    if joins == 1 or tree.find(exp.AggFunc) is not None or tree.find(exp.Group) is not None:
        return "moderate"
    return "simple"


def _nested_ctes(tree: exp.Expression) -> bool:
    ctes = list(tree.find_all(exp.CTE))
    names = {cte.alias_or_name.lower() for cte in ctes}
    for cte in ctes:
        body = cte.this
        if body.find(exp.With) is not None:
            return True
        if any(not t.db and t.name.lower() in names - {cte.alias_or_name.lower()} for t in body.find_all(exp.Table)):
            return True
    return False


def _literal_value(node: exp.Expression) -> tuple[str, str] | None:
    if isinstance(node, exp.Literal):
        return node.this, "string" if node.is_string else "number"
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return "-" + node.this.this, "number"
    if isinstance(node, exp.Boolean):
        return ("true" if node.this else "false"), "boolean"
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        target = node.to.sql("postgres").lower()
        kind = "date" if target == "date" else "timestamp" if target.startswith("timestamp") else "string"
        return node.this.this, kind
    return None


def _column_of(node: exp.Expression) -> str | None:
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    return node.name if isinstance(node, exp.Column) else None


def _compared(tree: exp.Expression) -> list[Compared]:
    found = []
    for node in tree.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is):
        for side, other in ((node.left, node.right), (node.right, node.left)):
            column = _column_of(side)
            value = _literal_value(other)
            if column is not None and value is not None:
                found.append(Compared(column, value[0], value[1]))
    return found


def _template(tree: exp.Expression) -> str:
    """The SQL with its literals replaced: two pairs with one template differ only in values."""
    def strip(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) or isinstance(node, exp.Boolean):
            return exp.Placeholder()
        return node
    return tree.copy().transform(strip).sql("postgres")


def sql_template(sql: str) -> str:
    return shape(sql).template
