"""A table as the task's documentation describes it, read back from `<stem>.ddl` / `<stem>_detail.md`.

Two dialects of those files exist and users may upload either:
- ours (docs/schema.md): valid SQL, `col type[ not null], -- comment`, foreign keys as comment
  lines, `comment on ...` statements;
- the reference implementation's: the comma comes after the comment (`col type -- comment,`),
  which is part of the comment text for a SQL parser, and no `comment on` statements.
Both are read line by line, so neither needs to be valid SQL. The `.ddl` is authoritative for
columns and types; the `_detail.md` adds sample values, enum values and cleaner comments.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from data_pipeline.schema.names import TableName, parse_table_name, quote_if_needed
from data_pipeline.qa.identifier_text import identifier_list, read_identifier, split_identifier_path
from data_pipeline.schema.secret_columns import BUILTIN_MASK, ColumnMask

_CREATE_TABLE = re.compile(r"^\s*create\s+table\s+(?:if\s+not\s+exists\s+)?(.+?)\s*\(\s*$", re.IGNORECASE)
_FOREIGN_KEY = re.compile(r"^foreign\s+key\s*\((.+?)\)\s*references\s+(.+?)\s*\((.+?)\)\s*[,;]?\s*$",
                          re.IGNORECASE)
_COMMENT_ON = re.compile(r"comment\s+on\s+(table|column)\s+(.+?)\s+is\s+'((?:[^']|'')*)'\s*;", re.IGNORECASE | re.DOTALL)
# Words that end a column's type in a column definition.
_CONSTRAINT_WORDS = re.compile(r"\s+(not\s+null|null|default|primary\s+key|references|unique|check|collate|"
                               r"generated|constraint)\b", re.IGNORECASE)
_MD_TITLE = re.compile(r"^##\s+(.+?)[（(](.*)[）)]\s*$")
_MD_FLAGS = {"主键", "外键", "非空"}
_SAMPLE_PREFIX = "[示例:"
_ENUM_MARKER = "为枚举字段"
# qa_generation's own `metadata_detail.md` is not a table document.
METADATA_STEM = "metadata"


@dataclass
class Column:
    name: str
    type: str = ""
    comment: str = ""
    not_null: bool = False
    primary_key: bool = False
    foreign_key: bool = False
    default: str | None = None
    samples: list[str] = field(default_factory=list)
    enum_values: list[str] = field(default_factory=list)
    # For a column of a domain type: the domain's base type (from the task's schema_types.sql).
    base: str = ""
    secret: bool = False   # hidden by the task's ColumnMask: its values withheld, never grouped by

    @property
    def label(self) -> str:
        """What a question calls this column: its comment's first phrase, or its name."""
        if not self.comment:
            return self.name
        return re.split(r"[，,。；;（(]", self.comment, maxsplit=1)[0].strip() or self.name


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    target: TableName
    target_columns: tuple[str, ...]


@dataclass
class TableDoc:
    table: TableName
    chinese_name: str = ""
    description: str = ""
    columns: list[Column] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    ddl_text: str = ""
    md_text: str = ""

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def schema(self) -> str:
        return self.table.qualified_schema

    @property
    def key(self) -> tuple[str, str]:
        return (self.table.qualified_schema, self.table.name)

    @property
    def label(self) -> str:
        return self.chinese_name or self.description or self.table.name

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def schema_text(self) -> str:
        """What a prompt shows of this table: its DDL as written, else a rendering of the model."""
        return self.ddl_text.strip() or render_create_table(self, with_comments=True)


def render_create_table(doc: TableDoc, *, with_comments: bool = False) -> str:
    """A `create table` statement for the documented columns (valid SQL; foreign keys left out)."""
    lines = []
    for column in doc.columns:
        line = f"  {quote_if_needed(column.name)} {column.type or 'text'}"
        if column.not_null:
            line += " not null"
        lines.append(line)
    if doc.primary_key:
        lines.append(f"  primary key ({', '.join(quote_if_needed(c) for c in doc.primary_key)})")
    body = []
    for index, line in enumerate(lines):
        comma = "," if index < len(lines) - 1 else ""
        comment = ""
        if with_comments and index < len(doc.columns) and doc.columns[index].comment:
            comment = f" -- {_one_line(doc.columns[index].comment)}"
        body.append(line + comma + comment)
    header = f"-- {doc.chinese_name}\n" if with_comments and doc.chinese_name else ""
    return f"{header}create table {_qualified(doc.table)} (\n" + "\n".join(body) + "\n);"


def parse_ddl(text: str) -> TableDoc:
    """The table described by a `.ddl` file (ours or the reference's). ValueError if none is found."""
    lines = text.splitlines()
    chinese_name = description = ""
    table: TableName | None = None
    body: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if line.startswith("-- 中文名:") or line.startswith("-- 中文名："):
            chinese_name = line[len("-- 中文名:"):].strip()
        elif line.startswith("-- 描述:") or line.startswith("-- 描述："):
            description = line[len("-- 描述:"):].strip()
        match = _CREATE_TABLE.match(lines[index - 1])
        if match:
            table = parse_table_name(match.group(1))
            while index < len(lines) and not lines[index].strip().startswith(")"):
                body.append(lines[index])
                index += 1
            break
    if table is None:
        raise ValueError("DDL文件中没有 create table 语句")

    doc = TableDoc(table=table, chinese_name=chinese_name, description=description, ddl_text=text.strip())
    for raw in body:
        _read_body_line(doc, raw)
    _apply_comment_statements(doc, text)
    for column in doc.columns:
        column.primary_key = column.name in doc.primary_key
        column.foreign_key = any(column.name in fk.columns for fk in doc.foreign_keys)
    return doc


def _read_body_line(doc: TableDoc, raw: str) -> None:
    code, comment = _split_comment(raw.strip())
    code = code.strip().rstrip(",").strip()
    if not code:
        fk = _FOREIGN_KEY.match(comment)
        if fk:
            doc.foreign_keys.append(_foreign_key(*fk.groups()))
        return
    # The reference writes `col type -- comment,`: that trailing comma belongs to the SQL.
    comment = comment.rstrip(",").strip()
    lowered = code.lower()
    if lowered.startswith("primary key"):
        doc.primary_key = tuple(identifier_list(code[code.index("(") + 1:code.rindex(")")]))
        return
    fk = _FOREIGN_KEY.match(code)
    if fk:
        doc.foreign_keys.append(_foreign_key(*fk.groups()))
        return
    if lowered.startswith(("unique", "constraint", "check", "exclude")):
        return
    name, rest = read_identifier(code)
    column = Column(name=name, comment=comment)
    constraint = _CONSTRAINT_WORDS.search(" " + rest)
    column.type = (rest[:constraint.start()] if constraint else rest).strip()
    tail = (" " + rest)[constraint.start():] if constraint else ""
    column.not_null = bool(re.search(r"\bnot\s+null\b", tail, re.IGNORECASE))
    default = re.search(r"\bdefault\s+(.+?)(?:\s+not\s+null|\s+null|\s+primary\s+key|$)", tail, re.IGNORECASE)
    column.default = default.group(1).strip() if default else None
    if re.search(r"\bprimary\s+key\b", tail, re.IGNORECASE):
        doc.primary_key = (name,)
    doc.columns.append(column)


def _apply_comment_statements(doc: TableDoc, text: str) -> None:
    for kind, target, literal in _COMMENT_ON.findall(text):
        value = literal.replace("''", "'")
        path = split_identifier_path(target)
        if kind.lower() == "table":
            doc.description = doc.description or value
            doc.chinese_name = doc.chinese_name or value
        elif path:
            column = doc.column(path[-1])
            if column is not None:
                column.comment = value


def parse_detail_md(text: str) -> TableDoc:
    """The table described by a `_detail.md` file. ValueError if it has no `## name（中文名）` title."""
    lines = [line.rstrip() for line in text.splitlines()]
    doc: TableDoc | None = None
    section = None
    for line in lines:
        stripped = line.strip()
        title = _MD_TITLE.match(stripped)
        if doc is None:
            if title:
                doc = TableDoc(table=parse_table_name(title.group(1)), chinese_name=title.group(2).strip(),
                               md_text=text.strip())
            continue
        if stripped.startswith("字段列表"):
            section = "fields"
        elif stripped.startswith("字段补充说明"):
            section = "notes"
        elif section is None and stripped and not doc.description:
            prefix = f"{title_name(doc)} 表"
            # `t 表：English words` sets an English description apart from the title.
            doc.description = stripped[len(prefix):].lstrip("：") if stripped.startswith(prefix) else stripped
        elif section == "fields" and stripped.startswith("- "):
            doc.columns.append(_md_field(stripped[2:]))
        elif section == "notes" and stripped.startswith("- "):
            _md_note(doc, stripped[2:])
    if doc is None:
        raise ValueError("MD文件中没有 `## 表名（中文名）` 标题")
    for column in doc.columns:
        if column.primary_key and column.name not in doc.primary_key:
            doc.primary_key = doc.primary_key + (column.name,)
    return doc


def title_name(doc: TableDoc) -> str:
    """How an MD title names the table: schema-qualified unless the schema is public."""
    return doc.table.name if doc.schema == "public" else doc.table.full_name


def _md_field(text: str) -> Column:
    name, rest = read_identifier(text)
    rest = rest.strip()
    column_type = ""
    if rest.startswith("("):
        depth = 0
        for position, char in enumerate(rest):
            depth += char == "("
            depth -= char == ")"
            if depth == 0:
                column_type, rest = rest[1:position], rest[position + 1:].strip()
                break
    column = Column(name=name, type=column_type)
    sample_at = rest.rfind(_SAMPLE_PREFIX)
    if sample_at >= 0 and rest.endswith("]"):
        inside = rest[sample_at + len(_SAMPLE_PREFIX):-1].strip()
        column.samples = [value.strip() for value in inside.split(", ") if value.strip()]
        rest = rest[:sample_at].rstrip()
    flag_at = rest.rfind("[")
    if flag_at >= 0 and rest.endswith("]"):
        flags = {flag.strip() for flag in rest[flag_at + 1:-1].split(",")}
        if flags <= _MD_FLAGS:
            column.primary_key = "主键" in flags
            column.foreign_key = "外键" in flags
            column.not_null = "非空" in flags
            rest = rest[:flag_at].rstrip()
    if rest.startswith("-"):
        column.comment = rest[1:].strip()
    return column


def _md_note(doc: TableDoc, text: str) -> None:
    if text.startswith("复合主键"):
        inside = re.sub(r"^复合主键\s*[:：]\s*", "", text).strip().strip("()（）")
        doc.primary_key = tuple(identifier_list(inside))
        return
    name, rest = read_identifier(text)
    rest = rest.strip()
    column = doc.column(name)
    if rest == "为主键":
        if name not in doc.primary_key:
            doc.primary_key = doc.primary_key + (name,)
    elif rest.startswith("关联 ") and column is not None:
        path = split_identifier_path(rest[len("关联 "):].strip())
        if len(path) >= 2:
            schema = path[-3] if len(path) >= 3 else None
            doc.foreign_keys.append(ForeignKey((name,), TableName(schema, path[-2]), (path[-1],)))
            column.foreign_key = True
    elif rest.startswith(_ENUM_MARKER) and column is not None:
        values = re.split(r"[:：]", rest, maxsplit=1)[-1]
        column.enum_values = [value.strip() for value in values.split("、") if value.strip()]


def merge(ddl: TableDoc | None, md: TableDoc | None) -> TableDoc:
    """One table from its two files: columns and types from the DDL, samples and enums from the MD."""
    if ddl is None or md is None:
        doc = ddl or md
        if doc is None:
            raise ValueError("no document to merge")
        return doc
    ddl.md_text = md.md_text
    ddl.chinese_name = ddl.chinese_name or md.chinese_name
    ddl.description = ddl.description or md.description
    for column in ddl.columns:
        described = md.column(column.name)
        if described is None:
            continue
        column.samples = described.samples
        column.enum_values = described.enum_values
        # The MD's comment is the clean one (the reference's DDL appends "，主键" and the like).
        column.comment = described.comment or column.comment
        column.not_null = column.not_null or described.not_null
    known = {fk.columns for fk in ddl.foreign_keys}
    ddl.foreign_keys.extend(fk for fk in md.foreign_keys if fk.columns not in known)
    if not ddl.primary_key:
        ddl.primary_key = md.primary_key
    for column in ddl.columns:
        column.primary_key = column.name in ddl.primary_key
        column.foreign_key = any(column.name in fk.columns for fk in ddl.foreign_keys)
    return ddl


def withhold_secret_values(md_text: str, mask: ColumnMask) -> str:
    """A `_detail.md` text without the sample and enum values of the columns `mask` hides."""
    lines = md_text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        body = line.strip()
        if not body.startswith("- "):
            continue
        path = split_identifier_path(body[2:])
        rest = body[2:].split(")", 1)[0] if "(" in body else ""
        data_type = rest.split("(", 1)[1] if "(" in rest else None
        if not path or not mask.hides(path[0], data_type):
            continue
        ending = line[len(line.rstrip("\r\n")):]
        indent = line[:len(line) - len(line.lstrip())]
        if _SAMPLE_PREFIX in body and body.endswith("]"):
            body = body[:body.rfind(_SAMPLE_PREFIX)].rstrip()
        if _ENUM_MARKER in body:
            body = body[:body.index(_ENUM_MARKER) + len(_ENUM_MARKER)]
        lines[index] = indent + body + ending
    return "".join(lines)


def load_table_documents(task_dir: Path, tables: list[TableName],
                         mask: ColumnMask = BUILTIN_MASK) -> tuple[list[TableDoc], list[str]]:
    """The documented tables among `tables` (in order), and the names of those with neither file.
    Values of secret columns (`mask`) in an uploaded MD are dropped: no prompt or SQL filter uses them."""
    docs, missing = [], []
    for table in tables:
        ddl_path = task_dir / f"{table.file_stem}.ddl"
        md_path = task_dir / f"{table.file_stem}_detail.md"
        ddl = _parse_file(ddl_path, parse_ddl) if ddl_path.is_file() else None
        md = _parse_file(md_path, parse_detail_md) if md_path.is_file() else None
        if ddl is None and md is None:
            missing.append(table.full_name)
            continue
        doc = merge(ddl, md)
        for column in doc.columns:
            if mask.hides(column.name, column.type):
                column.samples, column.enum_values, column.secret = [], [], True
        if doc.md_text:  # the text the LLM's pair prompt quotes: the same values withheld
            doc.md_text = withhold_secret_values(doc.md_text, mask)
        # The list is the authority on which table this is (a file may omit the schema).
        doc.table = table
        docs.append(doc)
    return docs, missing


def as_table_name(entry: TableName | str) -> TableName:
    """A table of the task's list: the runner passes TableName objects, tests may pass strings."""
    return entry if isinstance(entry, TableName) else parse_table_name(entry)


def discover_tables(task_dir: Path) -> list[TableName]:
    """The tables documented in a task directory, from its file names (for when no list is given)."""
    stems = {path.name[:-len(".ddl")] for path in task_dir.glob("*.ddl")}
    stems |= {path.name[:-len("_detail.md")] for path in task_dir.glob("*_detail.md")}
    stems.discard(METADATA_STEM)
    tables = []
    for stem in sorted(stems):
        schema, _, name = stem.rpartition("__")
        tables.append(TableName(schema or None, name))
    return tables


def _parse_file(path: Path, parser) -> TableDoc:
    try:
        return parser(_read_text(path))
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gbk"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path.name}: 无法识别的文件编码（需要 UTF-8）")


def _split_comment(line: str) -> tuple[str, str]:
    """`code -- comment` split at the first `--` outside quotes."""
    quote = None
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif line.startswith("--", position):
            return line[:position], line[position + 2:].strip()
    return line, ""


def _foreign_key(columns: str, target: str, target_columns: str) -> ForeignKey:
    path = split_identifier_path(target)
    table = TableName(path[-2] if len(path) > 1 else None, path[-1])
    return ForeignKey(tuple(identifier_list(columns)), table, tuple(identifier_list(target_columns)))


def _qualified(table: TableName) -> str:
    return f"{quote_if_needed(table.qualified_schema)}.{quote_if_needed(table.name)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
