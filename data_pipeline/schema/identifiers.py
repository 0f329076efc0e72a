"""How identifiers and types are written in generated DDL and documentation.

`sql_ident` is `names.quote_if_needed` plus PostgreSQL's keywords: a column called `order`
or `user` is a syntax error unquoted, so every keyword that is not "unreserved" is quoted, exactly
as the server's own quote_ident() does. The list is pg_get_keywords() of PostgreSQL 18 (a superset
of 15's); a test compares it with the servers the tests run on.

`short_type` turns format_type() output into the common short spellings of the reference files
(`character varying(32)` -> `varchar(32)`, `timestamp with time zone` -> `timestamptz`). Each
short form is valid PostgreSQL and format_type() prints the original again, so DDL round-trips.
"""
from __future__ import annotations

import re

from data_pipeline.schema.names import quote_if_needed

NON_UNRESERVED_KEYWORDS = frozenset("""
all analyse analyze and any array as asc asymmetric authorization between bigint binary bit
boolean both case cast char character check coalesce collate collation column concurrently
constraint create cross current_catalog current_date current_role current_schema current_time
current_timestamp current_user dec decimal default deferrable desc distinct do else end except
exists extract false fetch float for foreign freeze from full grant greatest group grouping
having ilike in initially inner inout int integer intersect interval into is isnull join json
json_array json_arrayagg json_exists json_object json_objectagg json_query json_scalar
json_serialize json_table json_value lateral leading least left like limit localtime
localtimestamp merge_action national natural nchar none normalize not notnull null nullif
numeric offset on only or order out outer overlaps overlay placing position precision primary
real references returning right row select session_user setof similar smallint some substring
symmetric system_user table tablesample then time timestamp to trailing treat trim true union
unique user using values varchar variadic verbose when where window with xmlattributes
xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize
xmltable
""".split())


def sql_ident(identifier: str) -> str:
    if identifier in NON_UNRESERVED_KEYWORDS:
        return '"' + identifier + '"'
    return quote_if_needed(identifier)


def qualified(schema: str, name: str) -> str:
    return f"{sql_ident(schema)}.{sql_ident(name)}"


_SHORT_TYPES = [
    (re.compile(r"character varying(\(\d+\))?((?:\[\])*)"), r"varchar\1\2"),
    (re.compile(r"character(\(\d+\))?((?:\[\])*)"), r"char\1\2"),
    (re.compile(r"timestamp(\(\d+\))? without time zone((?:\[\])*)"), r"timestamp\1\2"),
    (re.compile(r"timestamp(\(\d+\))? with time zone((?:\[\])*)"), r"timestamptz\1\2"),
    (re.compile(r"time(\(\d+\))? without time zone((?:\[\])*)"), r"time\1\2"),
    (re.compile(r"time(\(\d+\))? with time zone((?:\[\])*)"), r"timetz\1\2"),
    (re.compile(r"bit varying(\(\d+\))?((?:\[\])*)"), r"varbit\1\2"),
]


def short_type(formatted: str) -> str:
    """The short spelling of a format_type() result (array suffixes kept); others unchanged."""
    for pattern, replacement in _SHORT_TYPES:
        match = pattern.fullmatch(formatted)
        if match:
            return match.expand(replacement)
    return formatted


def base_type(short: str) -> str:
    """The type without modifiers, for the API's `data_type` (`varchar(32)` -> `varchar`)."""
    return re.sub(r"\([^)]*\)", "", short)
