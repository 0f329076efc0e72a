"""Table lists: parsing and validating the names a task works on.

The format: UTF-8 text (GBK is accepted and converted), names separated by newlines or commas,
`#` and `--` start comments, `schema.table` allowed; each name is parsed by
`data_pipeline.schema.names.parse_table_name`. Duplicates are dropped in order.
"""
from __future__ import annotations

import os
from pathlib import Path

from data_pipeline.errors import ValidationError
from data_pipeline.schema.names import TableName, parse_table_name

MAX_TABLES = 1000
MAX_FILE_BYTES = 2 * 1024 * 1024
SHOWN_NAME_CHARS = 64
TABLE_LIST_SUFFIX = ".txt"


def resolve_table_list_file(value: str, project_root: Path, training_data_dir: Path) -> Path:
    """The server file a task's `table_list_file` names: a `.txt` file directly in the project root
    (where the guide's examples put tables.txt) or anywhere in the training data directory, never
    a dotfile or anything under a dot-directory. A relative name is looked up in the project root,
    then in the training data directory. INVALID_FILE_PATH or FILE_NOT_FOUND (400) otherwise."""
    def refuse(reason: str) -> ValidationError:
        return ValidationError(f"表清单文件路径无效: {reason}", invalid_params=["table_list_file"],
                               error_code="INVALID_FILE_PATH")

    given = Path(value)
    if "\x00" in value or not value.strip():
        raise refuse("路径为空或包含空字符")
    if any(len(part.encode("utf-8", "surrogatepass")) > 255 for part in given.parts):
        raise refuse("文件名过长")
    if not given.name.lower().endswith(TABLE_LIST_SUFFIX):
        raise refuse(f"只读取 {TABLE_LIST_SUFFIX} 文件")
    if any(part.startswith(".") for part in given.parts):
        raise refuse("不允许隐藏文件、隐藏目录或 ..")
    project, training = Path(os.path.realpath(project_root)), Path(os.path.realpath(training_data_dir))
    candidates = [given] if given.is_absolute() else [project / given, training / given]
    try:
        found = next((c for c in candidates if c.is_file()), candidates[0])
        resolved = Path(os.path.realpath(found))
    except (OSError, ValueError):
        raise refuse("路径无法解析") from None
    if training in resolved.parents:
        inside = resolved.relative_to(training).parts
    elif resolved.parent == project:
        inside = (resolved.name,)
    else:
        raise refuse("表清单文件必须直接位于项目目录中，或位于训练数据目录内")
    if any(part.startswith(".") for part in inside) or not resolved.name.lower().endswith(TABLE_LIST_SUFFIX):
        raise refuse("不允许隐藏文件或隐藏目录（链接指向的目标也不行）")
    if not resolved.is_file():
        raise ValidationError(f"表清单文件不存在: {value[:200]}", invalid_params=["table_list_file"],
                              error_code="FILE_NOT_FOUND", status=400)
    return resolved


def decode_table_list(data: bytes, param: str = "file") -> str:
    """Text of an uploaded list: UTF-8 (with or without BOM) or GBK; binary data is refused."""
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(f"表清单文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB", invalid_params=[param],
                              error_code="INVALID_FILE")
    if b"\x00" in data:
        raise ValidationError("表清单文件不是文本文件", invalid_params=[param], error_code="INVALID_FILE")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError("表清单文件编码无法识别（需要 UTF-8 或 GBK）", invalid_params=[param],
                          error_code="INVALID_FILE")


def split_entries(text: str) -> list[str]:
    """Raw entries of a list: split on newlines and commas outside quotes, comments removed."""
    return [entry for _, entry in numbered_entries(text)]


def numbered_entries(text: str) -> list[tuple[int, str]]:
    """The entries of a list with the number of the line each stands on (from 1)."""
    entries: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        current, in_quotes, i = [], False, 0
        while i < len(line):
            char = line[i]
            if char == '"':
                in_quotes = not in_quotes
            elif not in_quotes and (char == "#" or line.startswith("--", i)):
                break
            elif not in_quotes and char == ",":
                entries.append((number, "".join(current)))
                current = []
                i += 1
                continue
            current.append(char)
            i += 1
        entries.append((number, "".join(current)))
    return [(number, entry.strip()) for number, entry in entries if entry.strip()]


def parse_table_names(entries: list[str], param: str = "file", *, lines: list[int] | None = None,
                      names_shown: int = 20) -> list[TableName]:
    """Validated, de-duplicated names in order; ValidationError naming the offending entries.

    `lines` gives each entry's line number; `names_shown` how many offending names the error may
    quote (the others by position only), each cut to SHOWN_NAME_CHARS characters."""
    if not entries:
        raise ValidationError("表清单为空，至少需要一个表名", invalid_params=[param])
    invalid, names, seen = [], [], set()
    for index, entry in enumerate(entries):
        where = f"第{lines[index]}行" if lines else f"第{index + 1}项"
        if not isinstance(entry, str):
            invalid.append((where, f"{where}: 表名必须是字符串"))
            continue
        try:
            name = parse_table_name(entry)
        except ValueError as reason:
            invalid.append((where, f"{where} {entry[:SHOWN_NAME_CHARS]}: {reason}"))
            continue
        key = (name.qualified_schema, name.name)
        if key not in seen:
            seen.add(key)
            names.append(name)
    if invalid:
        shown = "; ".join(text for _, text in invalid[:names_shown])
        others = [where for where, _ in invalid[names_shown:]]
        if others:
            listed = "、".join(others[:20]) + ("等" if len(others) > 20 else "")
            shown += f"; 另有{len(others)}个无效表名（{listed}）"
        raise ValidationError(f"无效的表名: {shown}", invalid_params=[param], error_code="INVALID_TABLE_NAME")
    if len(names) > MAX_TABLES:
        raise ValidationError(f"表清单最多 {MAX_TABLES} 个表，实际 {len(names)} 个", invalid_params=[param])
    return names


def parse_table_list_text(text: str, param: str = "file", *, names_shown: int = 20) -> list[TableName]:
    numbered = numbered_entries(text)
    return parse_table_names([entry for _, entry in numbered], param, lines=[number for number, _ in numbered],
                             names_shown=names_shown)


def render_table_list(names: list[TableName]) -> str:
    return "".join(f"{name.full_name}\n" for name in names)
