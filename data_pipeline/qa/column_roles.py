"""What each documented column is for, as the offline generator sees it: a measure to sum, a date
to group by, a category (enum) to group by, a name to show, a soft-delete marker to respect, or
bookkeeping to leave alone. Decided from types, names, keys and the documented enum values.

Bookkeeping columns (`last_update`, `updated_at`, `modified_*`, `created_by`, `version`, ETL and
sync stamps, and the names or `fnmatch` patterns of DATA_PIPELINE_BOOKKEEPING_COLUMNS) are neither
measures nor dimensions. A date inside a composite primary key, a partition key or a foreign key
is still a date.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from data_pipeline.qa.documents import Column, TableDoc
from data_pipeline.schema.secret_columns import BUILTIN_MASK
from data_pipeline.schema.identifiers import sql_ident
from data_pipeline.schema.types_file import domain_base_types

_NUMERIC = re.compile(r"^(numeric|decimal|integer|int|int2|int4|int8|bigint|smallint|real|double precision|"
                      r"float4|float8|money)\b")
_TEMPORAL = re.compile(r"^(date|timestamp|timestamptz)\b")
_TEXT = re.compile(r"^(varchar|character varying|char|character|text|bpchar|citext)\b")
_AUDIT = re.compile(r"^(version|row_?version|lock_?version|revision|"
                    r"(create|update|delete|modify|modified|last_update)[ds]?_(ts|time|at|by|date|user|on)|"
                    r"(created|updated|deleted|modified|changed|inserted)_(ts|time|at|by|date|user|on)|"
                    r"last_(update|updated|modified|modification|change|changed)(_(ts|time|at|date|by))?|"
                    r"modified_\w+|modified|creator|modifier|gmt_(create|modified)|"
                    r"(etl|dw|sync|load|ingest)_\w*(ts|time|at|date|batch|id|stamp|status|flag)|"
                    r"\w+_(etl|sync)_(ts|time|at|date)|(synced|loaded|ingested)_(at|ts|time|on)|last_sync\w*)$")
_SOFT_DELETE_TIMES = {"delete_ts", "deleted_at", "delete_time", "deleted_time", "delete_date", "deleted_date",
                      "gmt_delete", "deleted_ts"}
_SOFT_DELETE_FLAGS = {"is_deleted", "deleted", "is_delete", "del_flag", "delete_flag", "is_del"}
_IDENTIFIER_NAME = re.compile(r"(^id$|_id$|_uuid$|_key$)")
_CODE_NAME = re.compile(r"(_no|_code|_num|^code)$")
# Integers that are parts of a time, positions or codes: summing them means nothing (integer codes
# are no enums: the schema step states enum values only for enum types, booleans and text).
_NOT_A_MEASURE = re.compile(r"(^|_)(usec|msec|nsec|ns|sec|clock|sortorder|sort_order|seq|sequence|position|pos|port|"
                            r"flags?|status|state|type|level|priority|severity|mode|kind|code|action|method|"
                            r"protocol|enabled|disabled|active|year|month|day|hour|week)$|(type|source|status|mode|flags?)$")
# Integer codes that are no measures but are worth grouping and filtering by (status, type, ...),
# and text that is too free to group by: the fallbacks of a table with no enum or no name.
_GROUPING_CODE = re.compile(r"(^|_)(status|state|type|level|priority|severity|mode|kind|action|method|protocol|"
                            r"operator|source|flags?|category|class|grade|rank|year)$|(type|source|status|mode)$")
_FREE_TEXT = re.compile(r"(description|comment|note|remark|message|text|url|uri|path|config|expression|query|"
                        r"body|content|payload|json|xml|script|command|params?|error|html|svg|data)")
_SHORT_TEXT = re.compile(r"^(varchar|character varying|char|character|bpchar|citext)\s*(\((\d+)\))?")
MAX_GROUPING_TEXT = 255
_LABEL_HINT = ("名称", "名字", "姓名", "标题")
_CODE_HINT = ("编码", "编号", "代码")
_CREATED = re.compile(r"^(create|created)_(ts|time|at|date)$|^gmt_create$")
# Sample values the detail file shortened (50 characters, ending in an ellipsis) match nothing.
_SHORTENED = ("…", "...")


def ident(name: str) -> str:
    """An identifier as generated SQL writes it: bare when it can be, quoted otherwise."""
    return sql_ident(name)


def table_ref(doc: TableDoc) -> str:
    if doc.schema == "public":
        return ident(doc.name)
    return f"{ident(doc.schema)}.{ident(doc.name)}"


def literal(value: str) -> str:
    return "'" + value.replace("\x00", "").replace("'", "''") + "'"


def alias(text: str) -> str:
    """An output column name from a Chinese label: bare when PostgreSQL accepts it, else quoted."""
    text = re.sub(r"\s+", "", text)[:60] or "值"
    if re.fullmatch(r"[^\W\d]\w*", text) and not text.isascii():
        return text
    return '"' + text.replace('"', '""') + '"'


def base_type(column: Column) -> str:
    return (column.base or column.type).strip().lower()


def resolve_domains(docs: Iterable[TableDoc], types_sql: str) -> None:
    """Give every column of a domain type its base type (`year` -> `integer`), from the task's
    schema_types.sql, so that a domain over a number is a number (typed literals, no SUM of text)."""
    domains = domain_base_types(types_sql)
    for doc in docs:
        for column in doc.columns:
            written = column.type.replace('"', "").strip().lower()
            if written in domains:
                column.base = domains[written]


def is_numeric(column: Column) -> bool:
    return bool(_NUMERIC.match(base_type(column)))


def is_temporal(column: Column) -> bool:
    return bool(_TEMPORAL.match(base_type(column)))


def is_boolean(column: Column) -> bool:
    return base_type(column) in ("boolean", "bool")


def is_text(column: Column) -> bool:
    return bool(_TEXT.match(base_type(column)))


def is_audit(column: Column, extra: tuple[str, ...] = ()) -> bool:
    """Bookkeeping or a soft-delete marker: never a measure or a dimension."""
    return is_bookkeeping(column, extra) or is_soft_delete(column)


def is_bookkeeping(column: Column, extra: tuple[str, ...] = ()) -> bool:
    """A column that records how a row was kept (who, when, which version), not what it says.
    `extra`: more names or fnmatch patterns (settings.bookkeeping_columns), case-insensitive."""
    name = column.name.lower()
    if is_soft_delete(column):
        return False
    return bool(_AUDIT.match(name)) or any(fnmatchcase(name, pattern.lower()) for pattern in extra)


def is_soft_delete(column: Column) -> bool:
    name = column.name.lower()
    return name in _SOFT_DELETE_TIMES or name in _SOFT_DELETE_FLAGS


def is_key(column: Column) -> bool:
    return column.primary_key or column.foreign_key or bool(_IDENTIFIER_NAME.search(column.name.lower()))


def soft_delete_condition(doc: TableDoc, qualifier: str | None = None) -> str | None:
    """The condition that keeps only live rows, or None when the table has no soft-delete column."""
    prefix = f"{qualifier}." if qualifier else ""
    for column in doc.columns:
        name = column.name.lower()
        if name in _SOFT_DELETE_TIMES and is_temporal(column):
            return f"{prefix}{ident(column.name)} IS NULL"
        if name in _SOFT_DELETE_FLAGS:
            if base_type(column) in ("boolean", "bool"):
                return f"{prefix}{ident(column.name)} IS NOT TRUE"
            if is_numeric(column):
                return f"COALESCE({prefix}{ident(column.name)}, 0) = 0"
    return None


@dataclass
class TableRoles:
    measures: list[Column]
    dates: list[Column]
    categories: list[Column]
    labels: list[Column]
    codes: list[Column]
    created: Column | None

    @property
    def name_column(self) -> Column | None:
        """The column that names a row for a reader: a name, else a code."""
        return (self.labels or self.codes or [None])[0]


# A table's roles, by TableDoc.key: worked out once per run (`roles_by_table`) and passed to the
# templates, the themes and the scope, which all read the same tables.
RolesByTable = dict[tuple[str, str], TableRoles]


def roles_by_table(docs: Iterable[TableDoc], extra: tuple[str, ...] = ()) -> RolesByTable:
    """`extra`: the configured bookkeeping column patterns (settings.bookkeeping_columns)."""
    return {doc.key: table_roles(doc, extra) for doc in docs}


def table_roles(doc: TableDoc, extra: tuple[str, ...] = ()) -> TableRoles:
    measures, dates, categories, labels, codes, created = [], [], [], [], [], None
    coded, texts = [], []          # fallbacks: integer codes and short text to group by
    for column in doc.columns:
        if _CREATED.match(column.name.lower()) and is_temporal(column):
            created = column
        if is_audit(column, extra):
            continue
        if is_temporal(column):       # also inside a composite key, a partition key or a foreign key
            dates.append(column)
        elif column.primary_key:
            continue
        elif column.enum_values or is_boolean(column):
            categories.append(column)
        elif is_key(column):
            continue
        elif is_numeric(column) and not (_CODE_NAME.search(column.name.lower())
                                         or _NOT_A_MEASURE.search(column.name.lower())):
            measures.append(column)
        elif is_text(column) and (column.name.lower().endswith("_name") or _has(column, _LABEL_HINT)):
            labels.append(column)
        elif is_text(column) and (_CODE_NAME.search(column.name.lower()) or _has(column, _CODE_HINT)):
            codes.append(column)
        elif column.secret or BUILTIN_MASK.hides(column.name, column.type):
            continue    # the task's mask (DATA_PIPELINE_MASK_COLUMNS), or the built-in one
        elif is_numeric(column) and _GROUPING_CODE.search(column.name.lower()):
            coded.append(column)
        elif _groupable_text(column):
            texts.append(column)
    if len(categories) < 2:
        categories += coded[:2 - len(categories)]
    if not labels and not codes:
        codes = texts[:2]
    measures.sort(key=_measure_rank)
    if measures and not dates and created is not None and not any(fnmatchcase(created.name.lower(), p.lower())
                                                                   for p in extra):
        dates.append(created)    # a fact table timed only by its creation stamp: still a fact
    return TableRoles(measures, dates, categories, labels, codes, created)


def _groupable_text(column: Column) -> bool:
    match = _SHORT_TEXT.match(base_type(column))
    if match is None or _FREE_TEXT.search(column.name.lower()):
        return False
    return match.group(3) is None or int(match.group(3)) <= MAX_GROUPING_TEXT


def _measure_rank(column: Column) -> tuple[bool, bool]:
    """Totals first and amounts before counts (stable): the measures a question asks about first."""
    name, comment = column.name.lower(), column.comment
    total = any(w in comment for w in ("总", "合计")) or any(w in name for w in ("total", "sum"))
    amount = any(w in comment for w in ("金额", "收入", "营收")) or "amount" in name
    return (not total, not amount)


def usable_samples(column: Column, limit: int = 2) -> list[str]:
    values = [v for v in (column.samples or column.enum_values)
              if v and len(v) < 50 and not v.endswith(_SHORTENED) and "\n" not in v]
    return values[:limit]


_TRUE = {"t", "true", "1", "yes", "y", "on", "是"}
_FALSE = {"f", "false", "0", "no", "n", "off", "否"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def typed_value(column: Column, value: str) -> tuple[str, str] | None:
    """(the SQL literal, the text a question quotes) for comparing `column` with a sample value,
    typed for the column: TRUE/FALSE, a bare number, DATE '...' (a timestamp is compared by its
    day, which the question says); None when the value does not fit the type."""
    value = value.strip()
    if is_boolean(column):
        word = value.lower()
        if word in _TRUE:
            return "TRUE", "true"
        return ("FALSE", "false") if word in _FALSE else None
    if is_numeric(column):
        return (value, value) if _NUMBER.match(value) else None
    if is_temporal(column):
        day = _DAY.match(value)
        return (f"DATE '{day.group(0)}'", day.group(0)) if day else None
    return literal(value), value


def sample_literal(column: Column, value: str) -> str:
    typed = typed_value(column, value)
    return typed[0] if typed else literal(value)


def subject(doc: TableDoc) -> str:
    """How a question names the table's rows: its Chinese name without the trailing 表 and notes."""
    name = re.sub(r"[（(].*?[）)]", "", doc.chinese_name or "").strip()
    name = re.sub(r"(信息|数据)?表$", lambda m: m.group(1) or "", name).strip()
    return name or doc.name


def _has(column: Column, hints: tuple[str, ...]) -> bool:
    return any(hint in column.comment for hint in hints)
