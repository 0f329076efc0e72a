"""Table lists: parsing and validating the names a task works on.

The format: UTF-8 text (GBK is accepted and converted), names separated by newlines or commas,
`#` and `--` start comments, `schema.table` allowed; each name is parsed by
`data_pipeline.schema.names.parse_table_name`. Duplicates are dropped in order.
"""
from __future__ import annotations

from data_pipeline.errors import ValidationError
from data_pipeline.schema.names import TableName, parse_table_name

MAX_TABLES = 1000
MAX_FILE_BYTES = 2 * 1024 * 1024


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
