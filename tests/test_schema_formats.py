"""Line-by-line checkers of the DDL and MD formats of docs/schema.md, and their own tests.

`check_ddl` and `check_md` parse a file strictly (every line must be one the format allows) and
return what they read, so other tests can compare it with the database.
"""
from __future__ import annotations

import re

import pytest

IDENT = r'(?:[^\W\d][\w$]*|"(?:[^"]|"")+")'
QNAME = rf"{IDENT}\.{IDENT}"
LITERAL = r"'((?:[^']|'')*)'"
_LIST = rf"{IDENT}(?:, {IDENT})*"


def unquote(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


def split_idents(text: str) -> list[str]:
    return [unquote(part) for part in re.findall(IDENT, text)]


def check_ddl(text: str) -> dict:
    lines = text.rstrip("\n").split("\n")
    assert re.fullmatch(r"-- 中文名: \S.*", lines[0]), lines[0]
    assert re.fullmatch(r"-- 描述: \S.*", lines[1]), lines[1]
    schema_line = re.fullmatch(rf"create schema if not exists ({IDENT});", lines[2])
    start = 3 if schema_line else 2
    header = re.fullmatch(rf"create table ({QNAME}) \(", lines[start])
    assert header, lines[start]
    table = header.group(1)
    if schema_line:
        assert split_idents(table)[0] == unquote(schema_line.group(1)) != "public", "schema line for another schema"
    else:
        assert len(split_idents(table)) == 1 or split_idents(table)[0] == "public", "other schemas need their line"
    end = next(i for i, line in enumerate(lines) if re.fullmatch(r"\)(?: partition by (?:range|list|hash) \(.+\))?;", line))
    partition_by = re.fullmatch(r"\)(?: partition by (.+))?;", lines[end]).group(1)
    elements, foreign_keys, columns, checks = [], [], {}, []
    primary_key, unique = None, []
    for line in lines[start + 1:end]:
        fk = re.fullmatch(rf"  -- foreign key \(({_LIST})\) references ({QNAME})\(({_LIST})\)", line)
        if fk:
            foreign_keys.append((split_idents(fk.group(1)), fk.group(2), split_idents(fk.group(3))))
            continue
        if re.fullmatch(r"  -- check \(.+\) \(调用原库自定义函数，未写入\)", line):
            continue
        assert not foreign_keys, f"element after the foreign key comments: {line}"
        check = re.fullmatch(r"  (check \(.+\)(?: NO INHERIT)?)(,?)", line)
        if check:
            assert primary_key is None, "primary key must be the last element"
            checks.append(check.group(1))
            elements.append(bool(check.group(2)))
            continue
        key = re.fullmatch(rf"  (primary key|unique(?: nulls not distinct)?) \(({_LIST})\)(?: DEFERRABLE[A-Z ]*)?(,?)", line)
        if key:
            elements.append(bool(key.group(3)))
            if key.group(1) == "primary key":
                primary_key = split_idents(key.group(2))
            else:
                unique.append(split_idents(key.group(2)))
            continue
        assert primary_key is None, "primary key must be the last element"
        column = re.fullmatch(rf"  ({IDENT}) (\S.*?)(,?)(?: -- (\S.*))?", line)
        assert column, line
        definition = column.group(2)
        assert not definition.endswith(","), f"comma after the comment: {line}"
        type_text = re.split(r" not null| default | generated ", definition)[0]
        columns[unquote(column.group(1))] = {"type": type_text, "not_null": " not null" in definition,
                                            "comment": column.group(4)}
        elements.append(bool(column.group(3)))
    assert elements[:-1] == [True] * (len(elements) - 1) if elements else True, "every element but the last has a comma"
    assert not elements or elements[-1] is False, "the last element has no comma"
    table_comment, column_comments, unique_indexes = None, {}, []
    for line in lines[end + 1:]:
        index = re.fullmatch(r"(?:-- )?CREATE UNIQUE INDEX (\S+) ON (\S+) USING .+;(?: \(调用原库自定义函数，未写入\))?", line)
        if index:
            assert not column_comments and table_comment is None, "unique indexes come before the comments"
            assert index.group(2) == table, line
            unique_indexes.append(line)
            continue
        on_table = re.fullmatch(rf"comment on table ({QNAME}) is {LITERAL};", line)
        on_column = re.fullmatch(rf"comment on column ({QNAME})\.({IDENT}) is {LITERAL};", line)
        assert on_table or on_column, line
        if on_table:
            assert on_table.group(1) == table
            table_comment = on_table.group(2).replace("''", "'")
        else:
            assert on_column.group(1) == table
            column_comments[unquote(on_column.group(2))] = on_column.group(3).replace("''", "'")
    for name, column in columns.items():
        assert column["comment"] == column_comments.get(name), f"inline and `comment on` differ for {name}"
    return {"table": table, "columns": columns, "primary_key": primary_key, "unique": unique,
            "foreign_keys": foreign_keys, "table_comment": table_comment, "checks": checks,
            "unique_indexes": unique_indexes, "partition_by": partition_by}


_FIELD = re.compile(rf"- ({IDENT}) \((.+?)\)(?: - (.*?))?(?: \[((?:主键|外键|非空)(?:, (?:主键|外键|非空))*)\])?"
                    rf"(?: \[示例: (.+)\])?")
_NOTE = re.compile(rf"- (?:({IDENT}) 为主键|复合主键: \(({_LIST})\)|({IDENT}) 关联 ({QNAME})\.({IDENT})"
                   rf"|({IDENT}) 为枚举字段，包含取值：(.+)|分区表，分区键: (?:RANGE|LIST|HASH) \(.+\)"
                   rf"|唯一约束: \({_LIST}\)|唯一索引: CREATE UNIQUE INDEX .+|检查约束: CHECK \(.+\)"
                   rf"|{IDENT} 的取值约束（域类型 .+）: CHECK \(.+\)|{IDENT} 为生成列（(?:stored|virtual)）: .+"
                   rf"|{IDENT} 为自增标识列（generated (?:always|by default) as identity）"
                   rf"|{IDENT} 的默认值 .+ 调用原库自定义函数，未写入DDL)")


def check_md(text: str, table=None) -> dict:
    lines = text.rstrip("\n").split("\n")
    title = re.fullmatch(r"## (.+?)（(.+)）", lines[0])
    assert title, lines[0]
    name = title.group(1)
    assert title.group(2) not in (name, unquote(name)), f"the name is no Chinese name: {lines[0]}"
    assert lines[1].startswith(f"{name} 表") and len(lines[1]) > len(name) + 2, lines[1]
    assert re.match(r"[\u4e00-\u9fff]|：\S", lines[1][len(name) + 2:]), f"English glued to the title: {lines[1]}"
    assert lines[2] == "字段列表："
    fields, notes, index = {}, [], 3
    while index < len(lines) and lines[index] != "字段补充说明：":
        field = _FIELD.fullmatch(lines[index])
        assert field, lines[index]
        flags = field.group(4).split(", ") if field.group(4) else []
        assert flags == sorted(flags, key=["主键", "外键", "非空"].index), lines[index]
        samples = field.group(5).split(", ") if field.group(5) else []
        assert len(samples) <= 5 and all(len(s) <= 50 for s in samples), lines[index]
        fields[unquote(field.group(1))] = {"type": field.group(2), "comment": field.group(3), "flags": flags}
        index += 1
    for line in lines[index + 1:]:
        assert _NOTE.fullmatch(line), line
        notes.append(line)
    if table is not None:
        assert list(fields) == [c.name for c in table.columns]
        for column in table.columns:
            assert fields[column.name]["type"] == column.type
            assert ("非空" in fields[column.name]["flags"]) == (not column.nullable)
            assert ("主键" in fields[column.name]["flags"]) == (column.name in table.primary_key)
            assert fields[column.name]["comment"], f"column {column.name} is not described"
    return {"name": name, "chinese_name": title.group(2), "fields": fields, "notes": notes}


FORMATS_EXAMPLE_DDL = """-- 中文名: 服务区管理公司信息表
-- 描述: 服务区管理公司信息表，存储服务区所属公司的基本信息。
create table public.bss_company (
  id varchar(32) not null, -- 主键ID
  version integer not null, -- 数据版本号
  company_name varchar(255) not null, -- 公司名称
  company_no varchar(255), -- 公司编码
  primary key (id)
  -- foreign key (company_id) references public.bss_company(id)
);
comment on table public.bss_company is '服务区管理公司信息表';
comment on column public.bss_company.id is '主键ID';
comment on column public.bss_company.version is '数据版本号';
comment on column public.bss_company.company_name is '公司名称';
comment on column public.bss_company.company_no is '公司编码';
"""

FORMATS_EXAMPLE_MD = """## bss_company（服务区管理公司信息表）
bss_company 表服务区管理公司信息表，存储服务区所属公司的基本信息。
字段列表：
- id (varchar(32)) - 主键ID [主键, 非空] [示例: 30675d85ba5044c31acfa243b9d16334, 47ed0bb37f5a85f3d9245e4854959b81]
- company_id (varchar(32)) - 所属公司ID [外键] [示例: 1d5b0f4c8e8a4d4b9a6f5c2d7e8f9a0b]
- delete_ts (timestamp) - 删除时间
字段补充说明：
- id 为主键
- company_id 关联 public.bss_company.id
- company_no 为枚举字段，包含取值：H01、H02、H03
"""


def test_the_examples_of_the_formats_note_pass():
    ddl = check_ddl(FORMATS_EXAMPLE_DDL)
    assert ddl["primary_key"] == ["id"] and ddl["columns"]["company_no"]["comment"] == "公司编码"
    md = check_md(FORMATS_EXAMPLE_MD)
    assert md["fields"]["id"]["flags"] == ["主键", "非空"]


def test_the_checkers_reject_what_the_format_forbids():
    comma_after_comment = FORMATS_EXAMPLE_DDL.replace("not null, -- 主键ID", "not null -- 主键ID,")
    with pytest.raises(AssertionError):
        check_ddl(comma_after_comment)
    with pytest.raises(AssertionError):
        check_ddl(FORMATS_EXAMPLE_DDL.replace("  primary key (id)", "  primary key (id),"))
    with pytest.raises(AssertionError):
        check_md(FORMATS_EXAMPLE_MD.replace("[主键, 非空]", "[非空, 主键]"))


def test_reference_md_layout_passes_and_reference_ddl_is_rejected(reference_dir):
    output = reference_dir / "reference_task_output"
    for path in sorted(p for p in output.glob("*_detail.md") if p.name != "metadata_detail.md"):
        # The reference writes `复合主键：a, b`; ours writes `复合主键: (a, b)`.
        text = re.sub(r"- 复合主键：(.+)", r"- 复合主键: (\1)", path.read_text(encoding="utf-8"))
        check_md(text)
    for path in sorted(output.glob("*.ddl")):
        with pytest.raises(AssertionError):   # the reference puts the comma after the comment
            check_ddl(path.read_text(encoding="utf-8"))
