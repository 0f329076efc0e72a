"""Tables, columns, keys and comments from the PostgreSQL catalogs, in a fixed number of queries.

However many tables are asked for, `load_tables` runs four catalog queries (relations, columns,
constraints, unique indexes), each over all the tables at once; nothing here is per column or per
table. Every name travels as a bound value, never as SQL text. Row counts and sample values are
`sampling.py`'s business.
"""
from __future__ import annotations

import logging

import psycopg

from data_pipeline.schema.identifiers import base_type, short_type
from data_pipeline.schema.model import CheckConstraint, Column, ForeignKey, TableInfo, UniqueIndex
from data_pipeline.schema.names import TableName

logger = logging.getLogger("SchemaIntrospector")

RELATION_KINDS = {"r": "table", "p": "partitioned table", "f": "foreign table",
                  "v": "view", "m": "materialized view"}
TABLE_RELKINDS = ("r", "p", "f")
VIEW_RELKINDS = ("v", "m")
_USER_SCHEMAS = r"n.nspname <> 'information_schema' and n.nspname not like 'pg\_%%'"
_CHARACTER_TYPES = {"varchar", "bpchar"}
_INTEGER_TYPES = {"int2", "int4", "int8"}
# Integer types whose owned nextval() default is written the way it was made: `serial`.
SERIAL_TYPES = {"integer": "serial", "bigint": "bigserial", "smallint": "smallserial"}

_RELATIONS_SQL = f"""
select c.oid, n.nspname, c.relname, c.relkind, obj_description(c.oid, 'pg_class'), c.reltuples,
       case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end
from unnest(%(schemas)s::text[], %(names)s::text[]) as wanted(schema_name, table_name)
join pg_namespace n on n.nspname = wanted.schema_name
join pg_class c on c.relnamespace = n.oid and c.relname = wanted.table_name
where c.relkind in ('r', 'p', 'f', 'v', 'm') and {_USER_SCHEMAS}
"""


def needs_sql(catalog: str, objid: str) -> str:
    """SQL: the extensions whose functions or operators an object's expression calls, with '' for
    a function or operator of the database's own (which an empty database lacks)."""
    return f"""array(
  select distinct coalesce(x.extname, '')
  from pg_depend dd
  left join pg_proc p on dd.refclassid = 'pg_proc'::regclass and p.oid = dd.refobjid
  left join pg_operator o on dd.refclassid = 'pg_operator'::regclass and o.oid = dd.refobjid
  join pg_namespace fn on fn.oid = coalesce(p.pronamespace, o.oprnamespace)
  left join pg_depend xd on xd.classid = dd.refclassid and xd.objid = dd.refobjid
                        and xd.refclassid = 'pg_extension'::regclass and xd.deptype = 'e'
  left join pg_extension x on x.oid = xd.refobjid
  where dd.classid = '{catalog}'::regclass and dd.objid = {objid}
    and dd.refclassid in ('pg_proc'::regclass, 'pg_operator'::regclass)
    and fn.nspname not in ('pg_catalog', 'information_schema'))"""


# The sequence of a nextval() default, and whether this column owns it (serial does).
_COLUMNS_SQL = f"""
select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       col_description(a.attrelid, a.attnum), t.typcategory, t.typtype, a.atttypid,
       coalesce(bt.typname, t.typname), case when t.typtype = 'd' then t.typtypmod else a.atttypmod end,
       s.n_distinct,
       case when a.attcollation <> 0 and a.attcollation <> t.typcollation then
         (select case when cn.nspname = 'pg_catalog' then '' else quote_ident(cn.nspname) || '.' end
                 || quote_ident(co.collname)
          from pg_collation co join pg_namespace cn on cn.oid = co.collnamespace where co.oid = a.attcollation)
       end,
       seq.nspname, seq.relname, seq.owned,
       case when d.oid is not null then {needs_sql('pg_attrdef', 'd.oid')} end
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
left join pg_stats s on s.schemaname = n.nspname and s.tablename = c.relname
                    and s.attname = a.attname and not s.inherited
left join lateral (
  select sn.nspname, sc.relname,
         exists(select from pg_depend o where o.classid = 'pg_class'::regclass and o.objid = sc.oid
                  and o.refclassid = 'pg_class'::regclass and o.refobjid = a.attrelid
                  and o.refobjsubid = a.attnum and o.deptype = 'a') as owned
  from pg_depend sd
  join pg_class sc on sc.oid = sd.refobjid and sc.relkind = 'S'
  join pg_namespace sn on sn.oid = sc.relnamespace
  where d.oid is not null and sd.classid = 'pg_attrdef'::regclass and sd.objid = d.oid
    and sd.refclassid = 'pg_class'::regclass
  limit 1) seq on true
where a.attrelid = any(%s) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""

# Constraints of the tables, and the foreign keys declared on partitions of a listed partitioned
# table (they count as the parent's). Foreign keys PostgreSQL clones onto partitions, or onto the
# referencing table once per referenced partition, have a conparentid and are left out; a
# reference to a partition is a reference to its partitioned table.
_CONSTRAINTS_SQL = f"""
select case when con.conrelid = any(%(oids)s) then con.conrelid else pg_partition_root(con.conrelid)::oid end,
       con.contype, con.conname,
       array(select a.attname from unnest(con.conkey) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.ord),
       rn.nspname, rc.relname,
       array(select a.attname from unnest(con.confkey) with ordinality k(attnum, ord)
             join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum order by k.ord),
       case when con.contype in ('c', 'u') then pg_get_constraintdef(con.oid) end,
       case when con.contype = 'c' then {needs_sql('pg_constraint', 'con.oid')} end
from pg_constraint con
join pg_class cr on cr.oid = con.conrelid
left join pg_class rc on rc.oid = coalesce(pg_partition_root(con.confrelid)::oid, con.confrelid)
left join pg_namespace rn on rn.oid = rc.relnamespace
where (con.conrelid = any(%(oids)s) and con.contype in ('p', 'u', 'f', 'c')
       and (con.contype <> 'f' or con.conparentid = 0))
   or (cr.relispartition and con.contype = 'f' and con.conparentid = 0
       and pg_partition_root(con.conrelid)::oid = any(%(oids)s))
order by 1, con.contype, con.conname
"""

# Unique indexes that no constraint stands for (those are written as constraints).
_UNIQUE_INDEXES_SQL = f"""
select i.indrelid, ic.relname, pg_get_indexdef(i.indexrelid), {needs_sql('pg_class', 'i.indexrelid')}
from pg_index i join pg_class ic on ic.oid = i.indexrelid
where i.indrelid = any(%s) and i.indisunique and not i.indisprimary
  and not exists (select from pg_constraint c where c.conindid = i.indexrelid and c.conrelid = i.indrelid
                  and c.contype in ('p', 'u', 'x'))
order by i.indrelid, ic.relname
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
    """Catalog facts of the named relations, keyed by (schema, name); unknown names are absent.

    User-defined types (enum labels, domain checks) are `user_types.load_types`' business.
    """
    if not names:
        return {}
    relations = conn.execute(_RELATIONS_SQL, {"schemas": [n.qualified_schema for n in names],
                                              "names": [n.name for n in names]}).fetchall()
    tables: dict[int, TableInfo] = {}
    for oid, schema, name, relkind, comment, reltuples, partition_key in relations:
        tables[oid] = TableInfo(oid=oid, schema=schema, name=name, kind=RELATION_KINDS[relkind],
                                comment=comment, columns=[], estimated_rows=float(reltuples),
                                partition_key=partition_key)
    if not tables:
        return {}
    oids = list(tables)
    for row in conn.execute(_COLUMNS_SQL, (oids,)).fetchall():
        tables[row[0]].columns.append(_column(row, tables[row[0]]))
    for oid, contype, name, columns, ref_schema, ref_table, ref_columns, definition, needs in conn.execute(
            _CONSTRAINTS_SQL, {"oids": oids}):
        table = tables[oid]
        if contype == "p":
            table.primary_key = tuple(columns)
        elif contype == "u":
            table.unique_keys.append(tuple(columns))
            table.unique_definitions[tuple(columns)] = definition
        elif contype == "c":
            table.check_constraints.append(CheckConstraint(name, definition, _portable(table, needs)))
        else:
            key = ForeignKey(tuple(columns), ref_schema, ref_table, tuple(ref_columns))
            if key not in table.foreign_keys:   # partitions may each declare the same key
                table.foreign_keys.append(key)
    for oid, name, definition, needs in conn.execute(_UNIQUE_INDEXES_SQL, (oids,)):
        # An index on a partitioned table reads `ON ONLY t`; on an empty table that index would
        # stay invalid until partitions are attached.
        definition = definition.replace(" ON ONLY ", " ON ", 1)
        tables[oid].unique_indexes.append(UniqueIndex(name, definition, _portable(tables[oid], needs)))
    logger.debug("catalog: %d of %d relations found", len(tables), len(names))
    return {(t.schema, t.name): t for t in tables.values()}


def _portable(table: TableInfo, needs: list[str] | None) -> bool:
    """Whether an expression runs on an empty database (after its extensions are created)."""
    needs = needs or []
    table.extensions.update(name for name in needs if name)
    return "" not in needs


def _column(row, table: TableInfo) -> Column:
    (_, attnum, name, formatted, not_null, default, identity, generated, comment, category, _typtype,
     type_oid, typname, typmod, n_distinct, collation, seq_schema, seq_name, seq_owned, needs) = row
    short = short_type(formatted)
    column = Column(name=name, position=attnum, type=short, data_type=base_type(short), nullable=not not_null,
                    comment=comment, type_category=category, type_oid=type_oid, collation=collation,
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
        column.generated_kind = "virtual" if generated == "v" else "stored"
        _portable(table, needs)
    elif default is not None and not _portable(table, needs):
        column.omitted_default = default
    else:
        column.default = default
        if seq_name is not None and not (seq_owned and short in SERIAL_TYPES):
            column.default_sequence = (seq_schema, seq_name)
    return column
