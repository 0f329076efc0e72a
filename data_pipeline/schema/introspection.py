"""Tables, columns, keys and comments from the PostgreSQL catalogs, in a fixed number of queries.

However many tables are asked for, `load_tables` runs four catalog queries (relations, columns,
constraints, enum labels), each over all the tables at once; nothing here is per column or per
table. Every name travels as a bound value, never as SQL text. Row counts and sample values are
`sampling.py`'s business.
"""
from __future__ import annotations

import logging

import psycopg

from data_pipeline.schema.identifiers import base_type, short_type
from data_pipeline.schema.model import Column, ForeignKey, TableInfo
from data_pipeline.schema.names import TableName

logger = logging.getLogger("SchemaIntrospector")

RELATION_KINDS = {"r": "table", "p": "partitioned table", "f": "foreign table",
                  "v": "view", "m": "materialized view"}
TABLE_RELKINDS = ("r", "p", "f")
VIEW_RELKINDS = ("v", "m")
_USER_SCHEMAS = r"n.nspname <> 'information_schema' and n.nspname not like 'pg\_%%'"
_CHARACTER_TYPES = {"varchar", "bpchar"}
_INTEGER_TYPES = {"int2", "int4", "int8"}

_RELATIONS_SQL = f"""
select c.oid, n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class'), c.reltuples
from unnest(%(schemas)s::text[], %(names)s::text[]) as wanted(schema_name, table_name)
join pg_namespace n on n.nspname = wanted.schema_name
join pg_class c on c.relnamespace = n.oid and c.relname = wanted.table_name
where c.relkind in ('r', 'p', 'f', 'v', 'm') and {_USER_SCHEMAS}
"""

_COLUMNS_SQL = """
select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       col_description(a.attrelid, a.attnum), t.typcategory, t.typtype, a.atttypid,
       coalesce(bt.typname, t.typname), case when t.typtype = 'd' then t.typtypmod else a.atttypmod end,
       s.n_distinct
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
left join pg_stats s on s.schemaname = n.nspname and s.tablename = c.relname
                    and s.attname = a.attname and not s.inherited
where a.attrelid = any(%s) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""

_CONSTRAINTS_SQL = """
select con.conrelid, con.contype,
       array(select a.attname from unnest(con.conkey) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.ord),
       rn.nspname, rc.relname,
       array(select a.attname from unnest(con.confkey) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum order by k.ord)
from pg_constraint con
left join pg_class rc on rc.oid = con.confrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where con.conrelid = any(%s) and con.contype in ('p', 'u', 'f')
order by con.conrelid, con.contype, con.conname
"""

_ENUM_LABELS_SQL = """
select enumtypid, array_agg(enumlabel::text order by enumsortorder)
from pg_enum where enumtypid = any(%s) group by enumtypid
"""


def prepare_session(conn: psycopg.Connection, statement_timeout_ms: int = 30_000) -> None:
    """Read-only, with statement and lock timeouts: documenting never writes and never hangs."""
    conn.execute("select set_config('default_transaction_read_only', 'on', false),"
                 " set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
                 (str(int(statement_timeout_ms)), str(int(min(statement_timeout_ms, 5_000)))))


def like_pattern(pattern: str) -> str:
    """A LIKE pattern for a `*`/`?` wildcard pattern; LIKE's own specials match literally."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def user_schemas(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(f"select n.nspname from pg_namespace n where {_USER_SCHEMAS} order by 1").fetchall()
    return [row[0] for row in rows]


def list_relations(conn: psycopg.Connection, schemas: list[str] | None = None, pattern: str | None = None,
                   include_views: bool = False) -> list[tuple[str, str]]:
    """(schema, name) of the tables (and views if asked) outside the system schemas, sorted.

    `pattern` matches table names case-insensitively with `*` and `?` wildcards. Partitions are
    left out: their parent stands for them.
    """
    kinds = list(TABLE_RELKINDS + (VIEW_RELKINDS if include_views else ()))
    rows = conn.execute(
        f"""select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind = any(%(kinds)s::"char"[]) and not c.relispartition and {_USER_SCHEMAS}
              and (%(schemas)s::text[] is null or n.nspname = any(%(schemas)s::text[]))
              and (%(pattern)s::text is null or c.relname ilike %(pattern)s::text escape '\\')
            order by n.nspname, c.relname""",
        {"kinds": kinds, "schemas": schemas, "pattern": like_pattern(pattern) if pattern else None},
    ).fetchall()
    return [(schema, name) for schema, name in rows]


def load_tables(conn: psycopg.Connection, names: list[TableName]) -> dict[tuple[str, str], TableInfo]:
    """Catalog facts of the named relations, keyed by (schema, name); unknown names are absent."""
    if not names:
        return {}
    relations = conn.execute(_RELATIONS_SQL, {"schemas": [n.qualified_schema for n in names],
                                              "names": [n.name for n in names]}).fetchall()
    tables: dict[int, TableInfo] = {}
    for oid, schema, name, relkind, comment, reltuples in relations:
        tables[oid] = TableInfo(oid=oid, schema=schema, name=name, kind=RELATION_KINDS[relkind],
                                comment=comment, columns=[], estimated_rows=float(reltuples))
    if not tables:
        return {}
    oids = list(tables)
    enum_columns: list[tuple[Column, int]] = []
    for row in conn.execute(_COLUMNS_SQL, (oids,)).fetchall():
        column, type_oid = _column(row)
        tables[row[0]].columns.append(column)
        if row[10] == "e":
            enum_columns.append((column, type_oid))
    for oid, contype, columns, ref_schema, ref_table, ref_columns in conn.execute(_CONSTRAINTS_SQL, (oids,)):
        table = tables[oid]
        if contype == "p":
            table.primary_key = tuple(columns)
        elif contype == "u":
            table.unique_keys.append(tuple(columns))
        else:
            table.foreign_keys.append(ForeignKey(tuple(columns), ref_schema, ref_table, tuple(ref_columns)))
    if enum_columns:
        labels = dict(conn.execute(_ENUM_LABELS_SQL, ([t for _, t in enum_columns],)).fetchall())
        for column, type_oid in enum_columns:
            column.enum_labels = list(labels.get(type_oid) or [])
    logger.debug("catalog: %d of %d relations found", len(tables), len(names))
    return {(t.schema, t.name): t for t in tables.values()}


def _column(row) -> tuple[Column, int]:
    (_, attnum, name, formatted, not_null, default, identity, generated, comment, category, _typtype,
     type_oid, typname, typmod, n_distinct) = row
    short = short_type(formatted)
    column = Column(name=name, position=attnum, type=short, data_type=base_type(short), nullable=not not_null,
                    comment=comment, type_category=category,
                    stats_distinct=float(n_distinct) if n_distinct is not None else None)
    if category != "A" and typmod is not None and typmod >= 4:
        if typname in _CHARACTER_TYPES:
            column.max_length = typmod - 4
        elif typname == "numeric":
            column.numeric_precision = ((typmod - 4) >> 16) & 0xFFFF
            column.numeric_scale = (typmod - 4) & 0xFFFF
    if typname in _INTEGER_TYPES:
        column.type_category = "integer"   # told apart from other numbers for enum detection
    if identity:
        column.identity = "always" if identity == "a" else "by default"
    elif generated:
        column.generated = default
    else:
        column.default = default
    return column, type_oid

