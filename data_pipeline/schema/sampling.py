"""Row counts, sample values and enum-like columns, at a bounded cost whatever the table's size.

- Row count: `count(*)` over at most EXACT_COUNT_LIMIT + 1 rows; below the limit that is the exact
  count. Above it the count is an estimate (`row_count_exact` False, `row_count_method` says
  which): the planner's (EXPLAIN of a plain select) when the table has statistics, else rows
  counted in a few hundred random blocks and scaled to the table's size.
- Samples: the whole table when it is small, else a block sample (`TABLESAMPLE SYSTEM`, sized for
  about SAMPLE_ROWS rows, fixed seed so documents are stable) with a LIMIT. Values are cast to
  text and cut short on the server, so wide values never travel.
- Enum values: the labels of an enum type; for booleans and text-like columns (strings, domains
  over them), few distinct short non-blank values (2 to ENUM_MAX_VALUES) that each repeat in the
  sample on average ENUM_MIN_REPEATS times; unless the sample was the whole table, confirmed by
  pg_stats when the table is analysed, else by a second block sample. Numbers (domains over
  numbers included) are never enums: a year or a price with few values is still a quantity.
- Secret columns (`secret_columns.ColumnMask`: names like password/token/hash, bytea, the
  operator's DATA_PIPELINE_MASK_COLUMNS) are never read: no sample or enum value of theirs exists.
Cost on a 10-million-row table: a capped count, an EXPLAIN (or a count over a few hundred random
blocks), and one or two samples of a few blocks.
"""
from __future__ import annotations

import json
import logging
import re
from collections import Counter
from itertools import islice

import psycopg
from psycopg import sql

from data_pipeline.schema.model import Column, TableInfo
from data_pipeline.schema.secret_columns import BUILTIN_MASK, ColumnMask

logger = logging.getLogger("SchemaSampler")

EXACT_COUNT_LIMIT = 100_000
ESTIMATE_BLOCKS = 200
SAMPLE_ROWS = 1000
SAMPLE_VALUE_CHARS = 100
SAMPLES_KEPT = 5
ENUM_MAX_VALUES = 20
ENUM_MAX_VALUE_CHARS = 50
ENUM_MIN_REPEATS = 3
_ENUM_CATEGORIES = {"S", "B"}   # strings (text-like domains too), booleans; enum types have labels
_IDENTIFIER_NAME = re.compile(r"(?i:(?:^|_)(?:id|uuid|guid))$|[a-z0-9](?:Id|ID)$")
_BLOCK_SAMPLED_KINDS = {"table", "partitioned table", "materialized view"}
_SEEDS = (7, 11)
_SKIPPABLE = (psycopg.errors.InsufficientPrivilege, psycopg.errors.QueryCanceled,
              psycopg.errors.LockNotAvailable)


def measure(conn: psycopg.Connection, table: TableInfo, mask: ColumnMask = BUILTIN_MASK) -> None:
    """Fill the table's row count, its columns' sample values and enum values (none for the
    columns `mask` hides).

    Without SELECT privilege, or when a query times out or waits for a lock, the table is still
    documented from the catalogs, without counts and samples (`table.sampling_error` says why).
    """
    try:
        _measure(conn, table, mask)
    except _SKIPPABLE as exc:
        table.sampling_error = str(exc).strip().splitlines()[0]
        logger.warning("表 %s 无法统计行数与采样，仅使用目录信息: %s", table.full_name, table.sampling_error)
    _set_enum_types(table)


def _measure(conn: psycopg.Connection, table: TableInfo, mask: ColumnMask) -> None:
    relation = sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))
    _count_rows(conn, table, relation)
    sampled = [c for c in table.columns if not mask.hides(c.name, c.data_type)]
    if not sampled:
        return
    rows, whole_table = _sample(conn, table, relation, sampled, _SEEDS[0])
    table.sampled_rows = len(rows)
    values: dict[str, list[str]] = {}
    for column, raw in zip(sampled, zip(*rows) if rows else [()] * len(sampled)):
        if _may_be_enum(table, column):
            values[column.name] = [v for v in raw if v is not None]
            column.samples = _frequent_values(values[column.name])
        else:
            column.samples = _first_distinct(raw)
    candidates = [c for c in sampled if c.name in values and _few_repeated_values(values[c.name])]
    if candidates and not whole_table:
        candidates = _confirm(conn, table, relation, candidates, values)
    for column in candidates:
        column.enum_values = natural_sorted({v for v in values[column.name] if v.strip()})


def _first_distinct(raw) -> list[str]:
    seen: dict[str, None] = {}
    for value in raw:
        if value is not None and value not in seen:
            seen[value] = None
            if len(seen) == SAMPLES_KEPT:
                break
    return list(seen)


def _frequent_values(values: list[str]) -> list[str]:
    """The most frequent values; where nearly all differ, simply the first ones (ranking them costs)."""
    distinct = dict.fromkeys(values)
    if len(distinct) > ENUM_MAX_VALUES:
        return list(islice(distinct, SAMPLES_KEPT))
    return [v for v, _ in Counter(values).most_common(SAMPLES_KEPT)]


def _count_rows(conn: psycopg.Connection, table: TableInfo, relation: sql.Composable) -> None:
    capped = conn.execute(sql.SQL("select count(*) from (select from {} limit %s) capped").format(relation),
                          (EXACT_COUNT_LIMIT + 1,)).fetchone()[0]
    if capped <= EXACT_COUNT_LIMIT:
        table.row_count, table.row_count_exact, table.row_count_method = capped, True, "exact"
        return
    estimate = None
    if table.kind == "table" and table.estimated_rows < 0:
        estimate = _block_sample_estimate(conn, table, relation)
    if estimate is None:
        plan = conn.execute(sql.SQL("explain (format json) select * from {}").format(relation)).fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimate, table.row_count_method = int(plan[0]["Plan"]["Plan Rows"]), "planner_estimate"
    table.row_count, table.row_count_exact = max(estimate, capped), False


def _block_sample_estimate(conn: psycopg.Connection, table: TableInfo, relation: sql.Composable) -> int | None:
    """Rows in ESTIMATE_BLOCKS random blocks, scaled to the table's size.

    For a table never analysed the planner can only guess from column widths (it put a 2-million-row
    table at 1.2 million); counting a few hundred blocks is cheap and far closer.
    """
    pages = conn.execute("select pg_relation_size(%s) / current_setting('block_size')::int",
                         (table.oid,)).fetchone()[0]
    if not pages:
        return None
    percent = min(100.0, 100.0 * ESTIMATE_BLOCKS / pages)
    # Rows per sampled block (blocks told apart by the ctid's block number) times the blocks.
    rows, blocks = conn.execute(
        sql.SQL("select count(*), count(distinct (ctid::text::point)[0]) from {} tablesample system (%s)"
                " repeatable (%s)").format(relation), (percent, _SEEDS[0])).fetchone()
    if not blocks:
        return None
    table.row_count_method = "sample_estimate"
    return int(rows / blocks * pages)


def _select_list(columns: list[Column]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("left({}::text, {})").format(sql.Identifier(c.name), sql.Literal(SAMPLE_VALUE_CHARS))
        for c in columns)


def _sample(conn, table: TableInfo, relation, columns: list[Column], seed: int) -> tuple[list[tuple], bool]:
    """Sample rows, and whether they are the whole table."""
    select = _select_list(columns)
    total = table.row_count or 0
    if total <= SAMPLE_ROWS or table.kind not in _BLOCK_SAMPLED_KINDS:
        query = sql.SQL("select {} from {} limit %s").format(select, relation)
        rows = conn.execute(query, (SAMPLE_ROWS,)).fetchall()
        return rows, table.row_count_exact and len(rows) == total
    percent = min(100.0, 100.0 * 2 * SAMPLE_ROWS / total)
    query = sql.SQL("select {} from {} tablesample system (%s) repeatable (%s) limit %s").format(select, relation)
    rows = conn.execute(query, (percent, seed, SAMPLE_ROWS)).fetchall()
    if len(rows) < SAMPLE_ROWS // 4:
        # Few, unevenly filled blocks: the first rows are a better sample than almost none.
        rows = conn.execute(sql.SQL("select {} from {} limit %s").format(select, relation),
                            (SAMPLE_ROWS,)).fetchall()
    return rows, False


def _may_be_enum(table: TableInfo, column: Column) -> bool:
    """Text-like and boolean columns that are not keys or identifiers."""
    if column.enum_labels is not None or column.type_category not in _ENUM_CATEGORIES:
        return False
    return not (column.name in table.primary_key or (column.name,) in table.unique_keys
                or table.foreign_key_of(column.name) or _IDENTIFIER_NAME.search(column.name))


def _few_repeated_values(values: list[str]) -> bool:
    """Few distinct values, each seen several times: blanks say nothing about the set of values."""
    distinct = {v for v in values if v.strip()}
    return (2 <= len(distinct) <= ENUM_MAX_VALUES and len(values) >= ENUM_MIN_REPEATS * len(distinct)
            and all(len(v) <= ENUM_MAX_VALUE_CHARS for v in distinct))


def _confirm(conn, table: TableInfo, relation, candidates: list[Column],
             values: dict[str, list[str]]) -> list[Column]:
    """Candidates still enum-like beyond the sample: by pg_stats if analysed, else a second sample."""
    confirmed, unknown = [], []
    for column in candidates:
        estimate = _stats_distinct(column, table.row_count or 0)
        if estimate is None:
            unknown.append(column)
        elif estimate <= ENUM_MAX_VALUES:
            confirmed.append(column)
    if unknown:
        rows, _ = _sample(conn, table, relation, unknown, _SEEDS[1])
        for column, raw in zip(unknown, zip(*rows) if rows else [()] * len(unknown)):
            more = [v for v in raw if v is not None]
            if len(set(values[column.name]) | set(more)) <= ENUM_MAX_VALUES:
                values[column.name].extend(more)
                confirmed.append(column)
    names = {c.name for c in confirmed}
    return [c for c in candidates if c.name in names]


def _stats_distinct(column: Column, rows: int) -> float | None:
    """Distinct values according to pg_stats (negative n_distinct is a fraction of the rows)."""
    if column.stats_distinct is None:
        return None
    return column.stats_distinct if column.stats_distinct >= 0 else -column.stats_distinct * rows


def _set_enum_types(table: TableInfo) -> None:
    for column in table.columns:
        if column.enum_labels:
            column.enum_values = list(column.enum_labels)


def natural_sorted(values) -> list[str]:
    """`2` before `10`, `H2` before `H10`."""
    return sorted(values, key=lambda v: [(0, int(p), "") if p.isdigit() else (1, 0, p)
                                         for p in re.split(r"(\d+)", v) if p])
