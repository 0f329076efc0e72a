"""Comment choice: ranking, LLM answers matched by name, enum meanings checked, the dictionary.

Pure functions over TableInfo values built here; the LLM round trips are in test_ddl_generation.
"""
from __future__ import annotations

import pytest

from data_pipeline.schema import naming
from data_pipeline.schema.comments import (build_prompt, merge, offline_comments, quality, validate_answer)
from data_pipeline.schema.model import Column, ForeignKey, TableInfo


def make_table(comment=None) -> TableInfo:
    def column(name, position, comment=None, enum_values=None, type_="varchar(20)"):
        return Column(name=name, position=position, type=type_, data_type="varchar", nullable=True,
                      comment=comment, enum_values=enum_values, samples=list(enum_values or [])[:2])
    return TableInfo(oid=1, schema="public", name="t_order", kind="table", comment=comment, columns=[
        column("id", 1, "订单ID"),
        column("status", 2, "Order status", enum_values=["0", "1", "2"]),
        column("Pay Type", 3, None, enum_values=["wx", "zfb"]),
        column("remark", 4, "remark"),
        column("customer_id", 5, None),
    ], primary_key=("id",), foreign_keys=[ForeignKey(("customer_id",), "crm", "customer", ("id",))])


def answer(**overrides):
    value = {"table_name_cn": "订单表", "table_description": "记录每一笔订单。", "columns": [
        {"name": "customer_id", "comment": "下单客户"},
        {"name": "REMARK", "comment": "备注信息"},
        {"name": "status", "comment": "订单状态", "enum_meanings": {"0": "待支付", "1": "已支付", "9": "编造的值"}},
        {"name": "id", "comment": "LLM写的主键"},
        {"name": '"Pay Type"', "comment": "支付方式", "enum_meanings": {"wx": "微信", "cash": "现金"}},
        {"name": "no_such_column", "comment": "不存在的列"},
    ]}
    value.update(overrides)
    return value


def test_quality_ranks_missing_below_foreign_below_chinese():
    assert quality(None, "status") == quality("  ", "status") == quality("status", "status") == 0
    assert quality("TODO", "x") == 0
    assert quality("Order status", "status") == 1
    assert quality("订单状态", "status") == 2


def test_answers_are_matched_by_name_not_position():
    table = make_table()
    comments = merge(table, validate_answer(answer(), table))
    assert comments.column_comments == {
        "id": "订单ID",                                     # a Chinese database comment stays
        "status": "订单状态（0=待支付；1=已支付）",            # English replaced; invented value 9 dropped
        "Pay Type": "支付方式（wx=微信）",                    # quoted name in the answer still matches
        "remark": "备注信息",                                # the name itself is no comment
        "customer_id": "下单客户",
    }
    assert comments.llm_used and comments.table_comment == "订单表" and comments.chinese_name == "订单表"
    assert comments.description == "记录每一笔订单。"


def test_a_chinese_table_comment_is_kept_and_the_llm_description_added():
    table = make_table(comment="订单主表（含退款）")
    comments = merge(table, validate_answer(answer(), table))
    assert comments.table_comment == "订单主表（含退款）"
    assert comments.chinese_name == "订单主表"
    assert comments.description == "记录每一笔订单。"


def test_enum_meanings_already_in_a_database_comment_are_not_repeated():
    table = make_table()
    table.columns[1].comment = "订单状态：0待支付 1已支付"
    comments = merge(table, validate_answer(answer(), table))
    assert comments.column_comments["status"] == "订单状态：0待支付 1已支付"


@pytest.mark.parametrize("bad, reason", [
    (["a list"], "JSON对象"),
    ({"table_name_cn": "", "columns": []}, "table_name_cn"),
    ({"table_name_cn": "抱歉，我无法确定这个表", "columns": []}, "table_name_cn"),
    ({"table_name_cn": "订单表", "columns": "id: 主键"}, "columns"),
    ({"table_name_cn": "订单表", "columns": [{"name": "id", "comment": "主键"}]}, "缺少"),
])
def test_unusable_answers_are_refused_with_a_reason(bad, reason):
    with pytest.raises(ValueError, match=reason):
        validate_answer(bad, make_table())


def test_apologies_and_english_comments_from_the_llm_are_ignored():
    table = make_table()
    value = answer()
    value["columns"][0]["comment"] = "抱歉，无法确定该字段含义"
    value["columns"][1]["comment"] = "remark text"
    comments = merge(table, validate_answer(value, table))
    assert comments.column_comments["customer_id"] == "客户ID"     # the dictionary, not the apology
    assert "remark" not in comments.column_comments or comments.column_comments["remark"] != "remark text"


def test_offline_comments_keep_the_database_and_fill_from_the_dictionary():
    comments = offline_comments(make_table())
    assert comments.column_comments == {"id": "订单ID", "status": "Order status", "remark": "备注", "Pay Type": "支付类型",
                                        "customer_id": "客户ID"}
    assert comments.table_comment == "订单表" and not comments.llm_used


def test_prompt_carries_names_comments_keys_and_values():
    prompt = build_prompt(make_table(), "电商平台")
    for text in ('"Pay Type"', "Order status", '"primary_key": true', "crm.customer", '"enum_values"', "电商平台"):
        assert text in prompt


@pytest.mark.parametrize("name, label", [
    ("create_ts", "创建时间"), ("created_by", "创建人"), ("service_area_id", "服务区ID"),
    ("orderDate", "订单日期"), ("wx_order", None), ("happened_at", None), ("foo", None),
    ("delete_ts", "删除时间"), ("unit_price", "单价"), ("hostid", "主机ID"), ("lastlogsize", "最近日志大小"),
    ("address2", "地址2"), ("isactive", "是否有效"), ("nodata", None),
])
def test_naming_dictionary(name, label):
    assert naming.translate(name) == label


@pytest.mark.parametrize("name, words", [
    ("release_year", "release year"), ("film_id", "film ID"), ("filmid", "film ID"), ("rental_date", "rental date"),
    ("postal_code", "postal code"), ("snmp_oid", "SNMP OID"), ("wx_order", "wx order"), ("hostid", "主机ID"),
    ("lastUpdate", "最近更新"), ("happened_at", "happened at"),
])
def test_every_name_gets_a_readable_description(name, words):
    """Unknown words stay English words, never upper-cased garbles (FILMID) or half translations."""
    assert naming.describe(name) == words


def test_tables_without_a_known_name_are_called_by_their_words():
    assert naming.table_label("film_category") is None
    assert naming.table_english_label("film_category") == "film category table"
    assert naming.table_english_label("t_film") == "film table"


def test_table_labels_drop_common_prefixes():
    assert naming.table_label("bss_company") == "公司表"
    assert naming.table_label("t_order_detail") == "订单明细表"
    assert naming.table_label("audit_trail") is None
