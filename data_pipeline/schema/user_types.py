"""The types, extensions and sequences that the documented tables need, from the catalogs.

A table's DDL names its column types; on an empty database an enum, a domain, a composite or a
range type of the business database does not exist, nor does an extension's type (`citext`,
`hstore`, `vector(20)`), nor a sequence that a `nextval()` default uses without owning it.
`load_types` finds them all (through arrays, domains over domains, composite attributes and
range subtypes) in a fixed number of queries, annotates the columns (enum labels, domain checks)
and returns them in an order in which they can be created. types_file.py writes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from data_pipeline.schema.introspection import needs_sql
from data_pipeline.schema.model import TableInfo

FIRST_NORMAL_OBJECT_ID = 16384

# Every type reachable from the columns' types, then the facts of those outside the system schemas.
# An array is followed to its element, a domain to its base type, a composite to its attributes'
# types, a range to its subtype.
_TYPES_SQL = f"""
with recursive used(oid) as (
  select unnest(%s::oid[])
  union
  select dep.oid
  from used u
  join pg_type t on t.oid = u.oid
  cross join lateral (
    select t.typelem where t.typlen = -1 and t.typelem <> 0
    union all select t.typbasetype where t.typtype = 'd'
    union all select a.atttypid from pg_attribute a
              where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped
    union all select r.rngsubtype from pg_range r where t.typtype = 'r' and r.rngtypid = t.oid
  ) dep(oid)
)
select t.oid, n.nspname, t.typname, t.typtype, x.extname,
       case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end,
       t.typnotnull, t.typdefault,
       array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid order by e.enumsortorder),
       array(select array[c.conname::text, pg_get_constraintdef(c.oid),
                          case when '' = any({needs_sql('pg_constraint', 'c.oid')}) then 'f' else 't' end]
             from pg_constraint c where c.contypid = t.oid and c.contype = 'c' order by c.conname),
       array(select quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
             from pg_attribute a where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0
               and not a.attisdropped order by a.attnum),
       (select format_type(r.rngsubtype, null) from pg_range r where r.rngtypid = t.oid),
       obj_description(t.oid, 'pg_type'),
       array(select case when dt.typlen = -1 and dt.typelem <> 0 then dt.typelem else dt.oid end
             from pg_type dt
             where dt.oid = t.typbasetype
                or dt.oid = (select r.rngsubtype from pg_range r where r.rngtypid = t.oid)
                or dt.oid in (select a.atttypid from pg_attribute a where t.typtype = 'c'
                              and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped)),
       t.typtype <> 'c' or (select rc.relkind = 'c' from pg_class rc where rc.oid = t.typrelid)
from used u
join pg_type t on t.oid = u.oid
join pg_namespace n on n.oid = t.typnamespace
left join pg_depend xd on xd.classid = 'pg_type'::regclass and xd.objid = t.oid
                      and xd.refclassid = 'pg_extension'::regclass and xd.deptype = 'e'
left join pg_extension x on x.oid = xd.refobjid
where n.nspname not in ('pg_catalog', 'information_schema') and not (t.typlen = -1 and t.typelem <> 0)
"""

_EXTENSIONS_SQL = """
select x.extname, n.nspname from pg_extension x join pg_namespace n on n.oid = x.extnamespace
where x.extname = any(%s)
"""

_SEQUENCES_SQL = """
select n.nspname, c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
       s.seqcache, s.seqcycle
from unnest(%s::text[], %s::text[]) wanted(schema_name, sequence_name)
join pg_namespace n on n.nspname = wanted.schema_name
join pg_class c on c.relnamespace = n.oid and c.relname = wanted.sequence_name and c.relkind = 'S'
join pg_sequence s on s.seqrelid = c.oid
order by 1, 2
"""


@dataclass
class UserType:
    oid: int
    schema: str
    name: str
    kind: str                       # "enum" | "domain" | "composite" | "range" | "base"
    extension: str | None = None    # the extension that creates it
    labels: list[str] = field(default_factory=list)           # enum
    base_type: str | None = None                              # domain
    not_null: bool = False
    default: str | None = None
    checks: list[tuple[str, str, bool]] = field(default_factory=list)   # (name, CHECK (...), portable)
    attributes: list[str] = field(default_factory=list)       # composite: `name type`
    subtype: str | None = None                                # range
    comment: str | None = None
    depends_on: list[int] = field(default_factory=list)
    creatable: bool = True          # False: a table's row type or a base type written in C


@dataclass
class SequenceDef:
    schema: str
    name: str
    data_type: str
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int
    cycle: bool


@dataclass
class SchemaTypes:
    extensions: list[tuple[str, str]] = field(default_factory=list)   # (extension, its schema)
    types: list[UserType] = field(default_factory=list)               # creation order
    sequences: list[SequenceDef] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.extensions or self.types or self.sequences)


_KINDS = {"e": "enum", "d": "domain", "c": "composite", "r": "range", "b": "base"}


def load_types(conn: psycopg.Connection, tables: list[TableInfo]) -> SchemaTypes:
    """What the tables need beyond built-in types, in creation order; columns get their enum labels
    and domain checks. At most three queries, whatever the number of tables."""
    found: dict[int, UserType] = {}
    # Built-in types (and arrays of them) have the oids below 16384 that initdb assigns.
    roots = sorted({column.type_oid for table in tables for column in table.columns
                    if column.type_oid >= FIRST_NORMAL_OBJECT_ID})
    if roots:
        for row in conn.execute(_TYPES_SQL, (roots,)).fetchall():
            user_type = _user_type(row)
            found[user_type.oid] = user_type
    _annotate_columns(tables, found)
    needed_extensions = {t.extension for t in found.values() if t.extension}
    for table in tables:
        needed_extensions |= table.extensions
    extensions = []
    if needed_extensions:
        extensions = sorted(conn.execute(_EXTENSIONS_SQL, (sorted(needed_extensions),)).fetchall())
    wanted = sorted({c.default_sequence for t in tables for c in t.columns if c.default_sequence})
    sequences = []
    if wanted:
        rows = conn.execute(_SEQUENCES_SQL, ([s for s, _ in wanted], [n for _, n in wanted])).fetchall()
        sequences = [SequenceDef(*row) for row in rows]
    own = [t for t in found.values() if t.extension is None]
    return SchemaTypes(extensions=[(name, schema) for name, schema in extensions],
                       types=_creation_order(own, found), sequences=sequences)


def _user_type(row) -> UserType:
    (oid, schema, name, typtype, extension, base_type, not_null, default, labels, checks, attributes,
     subtype, comment, depends_on, creatable) = row
    return UserType(oid=oid, schema=schema, name=name, kind=_KINDS.get(typtype, "base"), extension=extension,
                    labels=list(labels or []), base_type=base_type, not_null=bool(not_null), default=default,
                    checks=[(c[0], c[1], c[2] == "t") for c in checks or []], attributes=list(attributes or []),
                    subtype=subtype, comment=comment, depends_on=[d for d in depends_on or [] if d != oid],
                    creatable=bool(creatable) and (typtype != "b" or extension is not None))


def _annotate_columns(tables: list[TableInfo], found: dict[int, UserType]) -> None:
    """Enum labels and domain checks, through domains over domains (arrays keep neither)."""
    for table in tables:
        for column in table.columns:
            user_type, checks = found.get(column.type_oid), []
            while user_type is not None and user_type.kind == "domain":
                checks += [definition for _, definition, _ in user_type.checks]
                user_type = found.get(user_type.depends_on[0]) if user_type.depends_on else None
            column.domain_checks = checks
            if user_type is not None and user_type.kind == "enum":
                column.enum_labels = list(user_type.labels)


def _creation_order(types: list[UserType], found: dict[int, UserType]) -> list[UserType]:
    """Each type after the types it is built on; otherwise by schema and name."""
    ordered: list[UserType] = []
    placed: set[int] = set()

    def place(user_type: UserType, path: frozenset) -> None:
        if user_type.oid in placed or user_type.oid in path:
            return
        for oid in user_type.depends_on:
            dependency = found.get(oid)
            if dependency is not None and dependency.extension is None:
                place(dependency, path | {user_type.oid})
        placed.add(user_type.oid)
        ordered.append(user_type)

    for user_type in sorted(types, key=lambda t: (t.schema, t.name)):
        place(user_type, frozenset())
    return ordered
