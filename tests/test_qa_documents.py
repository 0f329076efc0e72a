"""Reading table documents back: our DDL/MD format (docs/schema.md) and the reference's."""
from __future__ import annotations

import psycopg
import pytest

from data_pipeline.qa.documents import (discover_tables, load_table_documents, parse_ddl, parse_detail_md,
                                        render_create_table)
from data_pipeline.schema.names import TableName, parse_table_name

OUR_DDL = """-- 中文名: 服务区管理公司信息表
-- 描述: 服务区管理公司信息表，存储服务区所属公司的基本信息。
create table public.bss_company (
  id varchar(32) not null, -- 主键ID
  version integer not null default 1, -- 数据版本号
  company_name varchar(255) not null, -- 公司名称
  company_no varchar(255), -- 公司编码
  "Remark -- odd" text default '--x', -- 备注，含'引号'
  created timestamp without time zone,
  primary key (id)
);
comment on table public.bss_company is '服务区管理公司信息表';
comment on column public.bss_company.id is '主键ID';
comment on column public.bss_company."Remark -- odd" is '备注，含''引号''';
"""

OUR_MD = """## bss_company（服务区管理公司信息表）
bss_company 表服务区管理公司信息表，存储服务区所属公司的基本信息。
字段列表：
- id (varchar(32)) - 主键ID [主键, 非空] [示例: 30675d85ba5044c31acfa243b9d16334, 47ed0bb37f5a85f3d9245e4854959b81]
- version (integer) - 数据版本号 [非空] [示例: 1]
- company_name (varchar(255)) - 公司名称 [非空] [示例: 上饶分公司, 宜春分公司]
- company_no (varchar(255)) - 公司编码 [示例: H03, H02]
- "Remark -- odd" (text) - 备注，含'引号'
- created (timestamp)
字段补充说明：
- id 为主键
- company_no 为枚举字段，包含取值：H01、H02、H03
"""

CHILD_DDL = """-- 中文名: 服务区表
-- 描述: 服务区基础信息
create table ops.service_area (
  area_id integer not null, -- 服务区ID
  company_id varchar(32), -- 所属公司ID
  region_code char(4) not null, -- 区域
  area_name varchar(100), -- 服务区名称
  primary key (area_id, region_code)
  -- foreign key (company_id) references public.bss_company(id)
);
"""

CHILD_MD = """## ops.service_area（服务区表）
ops.service_area 表服务区基础信息
字段列表：
- area_id (integer) - 服务区ID [主键, 非空] [示例: 1, 2]
- company_id (varchar(32)) - 所属公司ID [外键] [示例: 30675d85ba5044c31acfa243b9d16334]
- region_code (char(4)) - 区域 [主键, 非空] [示例: JX01]
- area_name (varchar(100)) - 服务区名称 [示例: 庐山服务区, 114.57,26.82 区]
字段补充说明：
- 复合主键: (area_id, region_code)
- company_id 关联 public.bss_company.id
"""


def test_our_ddl_format():
    doc = parse_ddl(OUR_DDL)
    assert doc.table == TableName("public", "bss_company")
    assert doc.chinese_name == "服务区管理公司信息表"
    assert doc.description == "服务区管理公司信息表，存储服务区所属公司的基本信息。"
    assert [c.name for c in doc.columns] == ["id", "version", "company_name", "company_no", "Remark -- odd", "created"]
    by_name = {c.name: c for c in doc.columns}
    assert by_name["id"].type == "varchar(32)" and by_name["id"].not_null and by_name["id"].primary_key
    assert by_name["version"].default == "1" and by_name["version"].type == "integer"
    assert by_name["company_no"].not_null is False
    assert by_name["Remark -- odd"].type == "text" and by_name["Remark -- odd"].comment == "备注，含'引号'"
    assert by_name["created"].type == "timestamp without time zone" and by_name["created"].comment == ""
    assert doc.primary_key == ("id",)


def test_our_md_format_and_merge(tmp_path):
    md = parse_detail_md(OUR_MD)
    assert md.chinese_name == "服务区管理公司信息表"
    assert md.description == "服务区管理公司信息表，存储服务区所属公司的基本信息。"
    assert md.column("company_no").enum_values == ["H01", "H02", "H03"]
    assert md.column("company_name").samples == ["上饶分公司", "宜春分公司"]
    assert md.column("Remark -- odd").comment == "备注，含'引号'"
    assert md.column("created").type == "timestamp" and md.column("created").comment == ""

    (tmp_path / "bss_company.ddl").write_text(OUR_DDL, encoding="utf-8")
    (tmp_path / "bss_company_detail.md").write_text(OUR_MD, encoding="utf-8")
    (tmp_path / "ops__service_area.ddl").write_text(CHILD_DDL, encoding="utf-8")
    (tmp_path / "ops__service_area_detail.md").write_text(CHILD_MD, encoding="utf-8")
    (tmp_path / "metadata_detail.md").write_text("## metadata（存储分析主题元数据）\n", encoding="utf-8")
    tables = discover_tables(tmp_path)
    assert tables == [TableName(None, "bss_company"), TableName("ops", "service_area")]

    docs, missing = load_table_documents(tmp_path, tables + [TableName(None, "nowhere")])
    assert missing == ["nowhere"]
    company, area = docs
    assert company.column("id").samples[0] == "30675d85ba5044c31acfa243b9d16334"
    assert company.column("company_no").enum_values == ["H01", "H02", "H03"]
    assert company.column("created").type == "timestamp without time zone"  # the DDL wins on types
    assert area.primary_key == ("area_id", "region_code")
    assert area.column("area_name").samples == ["庐山服务区", "114.57,26.82 区"]
    [fk] = area.foreign_keys
    assert fk.columns == ("company_id",) and fk.target == TableName("public", "bss_company")
    assert fk.target_columns == ("id",)
    assert area.column("company_id").foreign_key and not area.column("area_name").foreign_key


def test_md_only_table_is_usable(tmp_path):
    (tmp_path / "ops__service_area_detail.md").write_text(CHILD_MD, encoding="utf-8")
    [doc], missing = load_table_documents(tmp_path, [parse_table_name("ops.service_area")])
    assert not missing
    assert doc.primary_key == ("area_id", "region_code")
    assert [fk.target.name for fk in doc.foreign_keys] == ["bss_company"]
    assert "create table ops.service_area" in render_create_table(doc)


def test_unparsable_file_names_the_file(tmp_path):
    (tmp_path / "broken.ddl").write_text("-- nothing here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.ddl"):
        load_table_documents(tmp_path, [parse_table_name("broken")])


REFERENCE_TABLES = ["bss_business_day_data", "bss_car_day_count", "bss_company", "bss_section_route",
                    "bss_section_route_area_link", "bss_service_area", "bss_service_area_mapper"]


def test_reference_files_parse(reference_dir):
    source = reference_dir / "reference_task_output"
    docs, missing = load_table_documents(source, [parse_table_name(t) for t in REFERENCE_TABLES])
    assert not missing
    by_name = {doc.name: doc for doc in docs}
    day = by_name["bss_business_day_data"]
    assert len(day.columns) == 26
    assert day.chinese_name == "高速公路服务区每日经营数据统计表"
    # The reference writes "-- 主键ID，主键," in the DDL; the MD's clean comment wins.
    assert day.column("id").comment == "主键ID" and day.column("id").type == "varchar(32)"
    assert day.column("wx").type == "numeric(19,4)" and day.column("wx").comment == "微信支付金额"
    assert day.column("source_type").enum_values == ["0", "4", "1", "2", "3"]
    assert by_name["bss_section_route_area_link"].primary_key == ("section_route_id", "service_area_id")
    assert by_name["bss_service_area"].column("service_position").samples == ["114.574721,26.825584",
                                                                              "115.910549,28.396355"]
    assert by_name["bss_car_day_count"].column("car_type").enum_values == ["其他", "危化品", "城际", "过境"]


def test_rendered_tables_create_on_an_empty_database(reference_dir, make_local_db):
    source = reference_dir / "reference_task_output"
    docs, _ = load_table_documents(source, [parse_table_name(t) for t in REFERENCE_TABLES])
    db_url = make_local_db(";\n".join(render_create_table(doc) for doc in docs) + ";")
    with psycopg.connect(db_url) as conn:
        count = conn.execute("select count(*) from information_schema.columns where table_schema = 'public'").fetchone()
    assert count[0] == sum(len(doc.columns) for doc in docs) == 26 + 12 + 10 + 11 + 2 + 14 + 13
