"""Does a task's DDL recreate the business tables? Rebuild them on an empty database, compare catalogs.

    order = rebuild(task_dir, empty_url, seed)      # schema_types.sql, then every .ddl, shuffled
    differences(snapshot(original_url, names), snapshot(empty_url, names))   # [] when they agree

A snapshot holds, per table (partitions are their parent's business): its kind and partition
key; each column's name, type, type category, nullability, default (a `nextval` default by its
shape, since `serial` names its own sequence), identity, generated kind and expression and
collation; its primary key and unique constraints, check constraints and unique indexes (as the
catalog prints them, so names and spelling do not matter); and the enum labels and domain checks
of the types its columns use. Comments are compared by the callers (they are expected to differ
where the original has none).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

TYPES_FILE = "schema_types.sql"
_NEXTVAL = re.compile(r"nextval\('[^']*'::regclass\)")

_COLUMNS_SQL = """
select n.nspname, c.relname, c.relkind, pg_get_partkeydef(c.oid), a.attname, format_type(a.atttypid, a.atttypmod),
       t.typcategory, a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       case when a.attcollation <> t.typcollation then co.collname end, col_description(c.oid, a.attnum),
       coalesce(bt.typcategory, t.typcategory)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
join pg_type t on t.oid = a.atttypid
left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
left join pg_collation co on co.oid = a.attcollation
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where (n.nspname, c.relname) in (select * from unnest(%s::text[], %s::text[])) and c.relkind in ('r', 'p')
order by 1, 2, a.attnum
"""

_CONSTRAINTS_SQL = """
select n.nspname, c.relname, con.contype, pg_get_constraintdef(con.oid)
from pg_constraint con join pg_class c on c.oid = con.conrelid join pg_namespace n on n.oid = c.relnamespace
where (n.nspname, c.relname) in (select * from unnest(%s::text[], %s::text[])) and con.contype in ('p', 'u', 'c')
"""

_UNIQUE_INDEXES_SQL = """
select n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
where (n.nspname, c.relname) in (select * from unnest(%s::text[], %s::text[]))
  and i.indisunique and not i.indisprimary
  and not exists (select from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid)
"""

_TYPES_SQL = """
select n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod),
       array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder),
       array(select pg_get_constraintdef(k.oid) from pg_constraint k where k.contypid = t.oid order by 1)
from pg_type t join pg_namespace n on n.oid = t.typnamespace
where t.typtype in ('e', 'd', 'c', 'r') and n.nspname not in ('pg_catalog', 'information_schema')
  and not exists (select from pg_depend x where x.objid = t.oid and x.deptype = 'e')
  and (t.typtype <> 'c' or exists (select from pg_class r where r.oid = t.typrelid and r.relkind = 'c'))
"""


@dataclass
class TableFacts:
    kind: str = ""
    partition_key: str | None = None
    columns: list[tuple] = field(default_factory=list)
    comments: dict[str, str | None] = field(default_factory=dict)
    numeric: set[str] = field(default_factory=set)     # columns of numbers (domains over numbers too)
    keys: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    unique_indexes: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    tables: dict[tuple[str, str], TableFacts]
    types: dict[tuple[str, str], tuple]


def rebuild(task_dir: Path, url: str, seed: int = 0) -> list[str]:
    """Run the task's types file, then its `.ddl` files in a shuffled order; the order used."""
    files = sorted(p.name for p in Path(task_dir).glob("*.ddl"))
    random.Random(seed).shuffle(files)
    if (Path(task_dir) / TYPES_FILE).is_file():
        files.insert(0, TYPES_FILE)
    with psycopg.connect(url, autocommit=True) as conn:
        for name in files:
            try:
                conn.execute((Path(task_dir) / name).read_text(encoding="utf-8"))
            except psycopg.Error as exc:
                raise AssertionError(f"{name} does not run on an empty database: {exc}") from None
    return files


def snapshot(url: str, tables: list[tuple[str, str]]) -> Snapshot:
    schemas, names = [s for s, _ in tables], [n for _, n in tables]
    facts: dict[tuple[str, str], TableFacts] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for (schema, table, relkind, partkey, column, type_text, category, not_null, default, identity,
             generated, collation, comment, base_category) in conn.execute(_COLUMNS_SQL, (schemas, names)):
            table_facts = facts.setdefault((schema, table), TableFacts(relkind, partkey))
            if default and _NEXTVAL.fullmatch(default):
                default = "nextval(<sequence>)"
            table_facts.columns.append((column, type_text, category, not_null, default, identity, generated,
                                        collation))
            table_facts.comments[column] = comment
            if base_category == "N":
                table_facts.numeric.add(column)
        for schema, table, contype, definition in conn.execute(_CONSTRAINTS_SQL, (schemas, names)):
            target = facts[(schema, table)].checks if contype == "c" else facts[(schema, table)].keys
            target.append(definition.removesuffix(" NOT VALID"))
        for schema, table, definition in conn.execute(_UNIQUE_INDEXES_SQL, (schemas, names)):
            facts[(schema, table)].unique_indexes.append(definition.replace(" ON ONLY ", " ON ", 1))
        types = {(row[0], row[1]): tuple(row[2:]) for row in conn.execute(_TYPES_SQL)}
    for table_facts in facts.values():
        for values in (table_facts.keys, table_facts.checks, table_facts.unique_indexes):
            values.sort()
    return Snapshot(facts, types)


def differences(original: Snapshot, rebuilt: Snapshot, *, omitted_defaults: set[tuple[str, str, str]] = frozenset()
                ) -> list[str]:
    """What the rebuilt tables lack or have otherwise (empty when they agree).

    `omitted_defaults`: (schema, table, column) whose default calls a function of the database's
    own and is therefore expected to be missing from the rebuilt table.
    """
    found = []
    for key, before in sorted(original.tables.items()):
        after = rebuilt.tables.get(key)
        if after is None:
            found.append(f"{key}: not rebuilt")
            continue
        for aspect in ("kind", "partition_key", "keys", "checks", "unique_indexes"):
            if getattr(before, aspect) != getattr(after, aspect):
                found.append(f"{key} {aspect}: {getattr(before, aspect)} != {getattr(after, aspect)}")
        expected = [column if (*key, column[0]) not in omitted_defaults else (*column[:4], None, *column[5:])
                    for column in before.columns]
        for was, now in zip(expected, after.columns):
            if was != now:
                found.append(f"{key} column: {was} != {now}")
        if len(expected) != len(after.columns):
            found.append(f"{key}: {len(expected)} columns, rebuilt {len(after.columns)}")
    for key, now in sorted(rebuilt.types.items()):
        if original.types.get(key) != now:
            found.append(f"type {key}: {original.types.get(key)} != {now}")
    return found
