"""Table names as lists and requests write them, and how they are quoted and turned into file names.

A name part is either a plain identifier (letters, digits, `_`, `$`; folded to lower case as
PostgreSQL does) or a double-quoted identifier ("My Table", with "" for a quote) for anything unusual.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_IDENTIFIER_BYTES = 63
_PLAIN = re.compile(r"[^\W\d][\w$]*\Z")


@dataclass(frozen=True)
class TableName:
    schema: str | None
    name: str

    @property
    def qualified_schema(self) -> str:
        return self.schema or "public"

    @property
    def full_name(self) -> str:
        """`schema.table` as written in lists and responses (quoted where needed)."""
        parts = [self.schema, self.name] if self.schema else [self.name]
        return ".".join(quote_if_needed(p) for p in parts)

    @property
    def file_stem(self) -> str:
        """File name stem of the table's DDL/MD: `public.t` -> `t`, `s.t` -> `s__t`."""
        stem = self.name if self.qualified_schema == "public" else f"{self.schema}__{self.name}"
        return safe_file_stem(stem)

    def __str__(self) -> str:
        return self.full_name


def safe_file_stem(text: str) -> str:
    """A file-system-safe version of an identifier (no separators, no leading dots)."""
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", text).strip(" .")
    return cleaned or "_"


def quote_if_needed(identifier: str) -> str:
    if _PLAIN.match(identifier) and identifier == identifier.lower() and identifier.isascii():
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def parse_table_name(text: str) -> TableName:
    """One name (`t`, `s.t`, `"S"."My T"`); ValueError with a reason if it is not a valid name."""
    parts, position, text = [], 0, text.strip()
    if not text:
        raise ValueError("空表名")
    while True:
        if position < len(text) and text[position] == '"':
            end, chars = position + 1, []
            while True:
                closing = text.find('"', end)
                if closing < 0:
                    raise ValueError("引号未闭合")
                chars.append(text[end:closing])
                if text[closing + 1:closing + 2] == '"':
                    chars.append('"')
                    end = closing + 2
                    continue
                position = closing + 1
                break
            part = "".join(chars)
            if not part:
                raise ValueError("空的引号标识符")
            if "\x00" in part:
                raise ValueError("标识符包含空字符")
        else:
            dot = text.find(".", position)
            raw = text[position:] if dot < 0 else text[position:dot]
            if not _PLAIN.match(raw):
                raise ValueError("包含非法字符（特殊字符需用双引号括起）")
            part = raw.lower()
            position += len(raw)
        if len(part.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            raise ValueError(f"标识符超过{MAX_IDENTIFIER_BYTES}字节")
        parts.append(part)
        if position == len(text):
            break
        if text[position] != "." or len(parts) == 2:
            raise ValueError("格式应为 table 或 schema.table")
        position += 1
    if len(parts) == 1:
        return TableName(None, parts[0])
    if is_system_schema(parts[0]):
        raise ValueError("不允许系统schema（pg_catalog、information_schema、pg_toast 等）")
    return TableName(parts[0], parts[1])


def is_system_schema(schema: str) -> bool:
    """PostgreSQL's own schemas: no tool, table list or SQL of ours reads them."""
    return schema == "information_schema" or schema.startswith("pg_")
