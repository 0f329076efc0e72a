"""Table lists: parsing and validating the names a task works on.

The format: UTF-8 text (GBK is accepted and converted), names separated by newlines or commas,
`#` and `--` start comments, `schema.table` allowed. A name part is either a plain identifier
(letters, digits, `_`, `$`; folded to lower case as PostgreSQL does) or a double-quoted identifier
("My Table", with "" for a quote) for anything unusual. Duplicates are dropped in order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from data_pipeline.errors import ValidationError

MAX_TABLES = 1000
MAX_FILE_BYTES = 2 * 1024 * 1024
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


def quote_ident(identifier: str) -> str:
    """Always-quoted identifier, for SQL built against business databases."""
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
    return TableName(parts[0], parts[1])


def decode_table_list(data: bytes) -> str:
    """Text of an uploaded list: UTF-8 (with or without BOM) or GBK; binary data is refused."""
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(f"表清单文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB", invalid_params=["file"],
                              error_code="INVALID_FILE")
    if b"\x00" in data:
        raise ValidationError("表清单文件不是文本文件", invalid_params=["file"], error_code="INVALID_FILE")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError("表清单文件编码无法识别（需要 UTF-8 或 GBK）", invalid_params=["file"],
                          error_code="INVALID_FILE")


def split_entries(text: str) -> list[str]:
    """Raw entries of a list: split on newlines and commas outside quotes, comments removed."""
    entries: list[str] = []
    for line in text.splitlines():
        current, in_quotes, i = [], False, 0
        while i < len(line):
            char = line[i]
            if char == '"':
                in_quotes = not in_quotes
            elif not in_quotes and (char == "#" or line.startswith("--", i)):
                break
            elif not in_quotes and char == ",":
                entries.append("".join(current))
                current = []
                i += 1
                continue
            current.append(char)
            i += 1
        entries.append("".join(current))
    return [e.strip() for e in entries if e.strip()]


def parse_table_names(entries: list[str], param: str = "file") -> list[TableName]:
    """Validated, de-duplicated names in order; ValidationError listing every offending entry."""
    if not entries:
        raise ValidationError("表清单为空，至少需要一个表名", invalid_params=[param])
    invalid, names, seen = [], [], set()
    for entry in entries:
        if not isinstance(entry, str):
            invalid.append(f"{entry!r}: 表名必须是字符串")
            continue
        try:
            name = parse_table_name(entry)
        except ValueError as reason:
            invalid.append(f"{entry[:100]}: {reason}")
            continue
        key = (name.qualified_schema, name.name)
        if key not in seen:
            seen.add(key)
            names.append(name)
    if invalid:
        shown = "; ".join(invalid[:20]) + (f"; ... 共{len(invalid)}个" if len(invalid) > 20 else "")
        raise ValidationError(f"无效的表名: {shown}", invalid_params=[param], error_code="INVALID_TABLE_NAME")
    if len(names) > MAX_TABLES:
        raise ValidationError(f"表清单最多 {MAX_TABLES} 个表，实际 {len(names)} 个", invalid_params=[param])
    return names


def parse_table_list_text(text: str, param: str = "file") -> list[TableName]:
    return parse_table_names(split_entries(text), param)


def render_table_list(names: list[TableName]) -> str:
    return "".join(f"{name.full_name}\n" for name in names)
