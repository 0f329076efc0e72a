"""The offline naming dictionary: a description derived from an English snake_case name.

Used only where the database has no usable comment and no LLM answered. Names are split on `_`
(and camelCase); a run-together word is split into known words (`hostid` -> host id,
`lastlogsize` -> last log size) or, failing that, before a trailing `id` (`filmid` -> film id).
Words are translated longest phrase first (`service_area` -> 服务区). A Chinese label is made only
when every word is known, so a guess never mixes languages (no `FILM类别表`); otherwise the
description is the English words themselves, readable ("release year", "film category"), with
known abbreviations upper-cased ("film ID", "SNMP OID"). Common table prefixes (`t_`, `tb_`,
`bss_`) are dropped from table labels.
"""
from __future__ import annotations

import re

_PHRASES = {
    "service_area": "服务区", "created_by": "创建人", "updated_by": "更新人", "deleted_by": "删除人",
    "create_time": "创建时间", "update_time": "更新时间", "delete_time": "删除时间",
    "create_ts": "创建时间", "update_ts": "更新时间", "delete_ts": "删除时间",
    "created_at": "创建时间", "updated_at": "更新时间", "deleted_at": "删除时间",
    "is_deleted": "是否删除", "del_flag": "删除标志", "order_sum": "订单总数", "pay_sum": "支付总额",
    "phone_number": "电话号码", "id_card": "身份证号", "e_mail": "电子邮箱", "zip_code": "邮政编码",
    "start_date": "开始日期", "end_date": "结束日期", "start_time": "开始时间", "end_time": "结束时间",
    "first_name": "名", "last_name": "姓", "unit_price": "单价", "day_count": "日统计", "car_type": "车辆类型",
}

_WORDS = {
    "id": "ID", "uuid": "UUID", "no": "编号", "num": "数量", "number": "编号", "code": "编码",
    "name": "名称", "title": "标题", "type": "类型", "kind": "种类", "category": "类别",
    "status": "状态", "state": "状态", "flag": "标志", "level": "级别", "grade": "等级",
    "desc": "描述", "description": "描述", "remark": "备注", "remarks": "备注", "note": "备注",
    "memo": "备注", "comment": "评论", "content": "内容", "text": "文本", "version": "版本号",
    "date": "日期", "time": "时间", "ts": "时间", "timestamp": "时间戳", "day": "日", "month": "月",
    "year": "年", "week": "周", "hour": "小时", "year_month": "年月", "period": "期间",
    "create": "创建", "created": "创建", "update": "更新", "updated": "更新", "modify": "修改",
    "modified": "修改", "delete": "删除", "deleted": "删除", "by": "人",
    "user": "用户", "users": "用户", "customer": "客户", "member": "会员", "employee": "员工",
    "staff": "员工", "admin": "管理员", "operator": "操作员", "owner": "负责人", "manager": "经理",
    "company": "公司", "dept": "部门", "department": "部门", "org": "机构", "organization": "机构",
    "branch": "分支机构", "shop": "门店", "store": "门店", "supplier": "供应商", "vendor": "供应商",
    "product": "产品", "goods": "商品", "item": "项目", "items": "明细", "sku": "SKU",
    "order": "订单", "orders": "订单", "detail": "明细", "details": "明细", "line": "行",
    "pay": "支付", "payment": "支付", "refund": "退款", "invoice": "发票", "bill": "账单",
    "price": "价格", "amount": "金额", "amt": "金额", "money": "金额", "fee": "费用", "cost": "成本",
    "total": "总计", "sum": "合计", "count": "数量", "qty": "数量", "quantity": "数量",
    "balance": "余额", "discount": "折扣", "rate": "比率", "ratio": "比例", "tax": "税额",
    "revenue": "营收", "income": "收入", "profit": "利润", "currency": "币种",
    "address": "地址", "addr": "地址", "city": "城市", "province": "省份", "country": "国家",
    "region": "区域", "area": "区域", "district": "区县", "street": "街道", "location": "位置",
    "position": "位置", "lat": "纬度", "latitude": "纬度", "lng": "经度", "lon": "经度",
    "longitude": "经度", "phone": "电话", "mobile": "手机号", "tel": "电话", "email": "邮箱",
    "mail": "邮件", "fax": "传真", "url": "链接", "link": "关联", "image": "图片", "img": "图片",
    "file": "文件", "path": "路径", "size": "大小", "weight": "重量", "height": "高度",
    "width": "宽度", "length": "长度", "age": "年龄", "gender": "性别", "sex": "性别",
    "birthday": "生日", "password": "密码", "pwd": "密码", "account": "账户", "login": "登录",
    "role": "角色", "permission": "权限", "group": "分组", "tag": "标签", "source": "来源",
    "target": "目标", "parent": "父级", "child": "子级", "sort": "排序", "seq": "序号",
    "index": "索引", "key": "键", "value": "值", "config": "配置", "setting": "设置",
    "log": "日志", "record": "记录", "history": "历史", "event": "事件", "message": "消息",
    "task": "任务", "job": "作业", "project": "项目", "contract": "合同", "plan": "计划",
    "route": "路线", "section": "路段", "road": "道路", "car": "车辆", "vehicle": "车辆",
    "service": "服务", "system": "系统", "mapper": "映射", "mapping": "映射", "relation": "关系",
    "oper": "经营", "data": "数据", "info": "信息", "stat": "统计", "stats": "统计",
    "statistics": "统计", "report": "报表", "summary": "汇总", "start": "开始", "end": "结束",
    "begin": "开始", "first": "首次", "last": "最近", "min": "最小", "max": "最大", "avg": "平均",
    "is": "是否", "enabled": "启用", "enable": "启用", "active": "有效", "valid": "有效",
    "visible": "可见", "public": "公开", "default": "默认", "main": "主", "sub": "子",
    "school": "学校", "student": "学生", "teacher": "教师", "course": "课程", "class": "班级",
    "score": "分数", "exam": "考试", "hospital": "医院", "patient": "患者", "doctor": "医生",
    "bank": "银行", "card": "卡", "channel": "渠道", "platform": "平台", "app": "应用",
    "device": "设备", "unit": "单位", "ip": "IP地址", "host": "主机", "port": "端口", "url_path": "路径",
}

# Written upper-case in English descriptions; those in _WORDS also translate as written there.
ABBREVIATIONS = frozenset("""
id uuid guid url uri ip ipv4 ipv6 sku api sql dns ttl snmp oid http https ssl tls ssh json xml html csv
cpu gpu os ui pk fk mac smtp ldap saml sso totp mfa ipmi jmx utc gmt crc md5 sha tcp udp vm sla
sms pdf mime db iso gps imei vat
""".split())

_TABLE_PREFIXES = {"t", "tb", "tbl", "bss", "sys", "biz", "dim", "fact", "ods", "dwd", "dws", "ads", "dm"}
_MAX_PHRASE_WORDS = 3
_MIN_PIECE = 2


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    words = []
    for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()):
        if word:
            words += _split_compound(word)
    return words


def _known(word: str) -> bool:
    return word in _WORDS or word in ABBREVIATIONS


def _split_compound(word: str) -> list[str]:
    """`hostid` -> [host, id]; `lastlogsize` -> [last, log, size]; `filmid` -> [film, id]; else [word]."""
    if _known(word) or len(word) < 2 * _MIN_PIECE:
        return [word]
    # Fewest known pieces covering the word (digits are pieces of their own).
    best: list[list[str] | None] = [[]] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(end):
            piece = word[start:end]
            fits = piece.isdigit() or _compound_piece(piece)
            if fits and best[start] is not None and (best[end] is None or len(best[start]) + 1 < len(best[end])):
                best[end] = best[start] + [piece]
    if best[len(word)] is not None:
        return best[len(word)]
    if word.endswith("id") and len(word) > 2 + _MIN_PIECE:
        return [word[:-2], "id"]
    return [word]


def _compound_piece(piece: str) -> bool:
    """Two-letter words other than abbreviations (`no`, `by`) make too many false splits."""
    return _known(piece) and (len(piece) > _MIN_PIECE or piece in ABBREVIATIONS or piece == "is")


def translate(name: str) -> str | None:
    """A Chinese label for a column-like name, or None unless every word of it is known."""
    words = _words(name)
    if not words or any(not w.isascii() for w in words):
        return None
    parts, i = [], 0
    while i < len(words):
        for size in range(min(_MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = "_".join(words[i:i + size])
            label = _PHRASES.get(phrase) or (_WORDS.get(phrase) if size == 1 else None)
            if label:
                parts.append(label)
                i += size
                break
        else:
            if not words[i].isdigit():
                return None
            parts.append(words[i])
            i += 1
    if all(part.isdigit() for part in parts):
        return None
    return "".join(p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1])


def english_words(name: str) -> str:
    """The name as readable words: `release_year` -> release year, `film_id` -> film ID."""
    words = _words(name)
    if not words:
        return name.strip() or name
    return " ".join(w.upper() if w in ABBREVIATIONS else w for w in words)


def describe(name: str) -> str:
    """A description for a column with no comment: its Chinese label, else its English words."""
    return translate(name) or english_words(name)


def table_label(name: str) -> str | None:
    """A Chinese name for a table (`bss_company` -> 公司表), or None."""
    words = _table_words(name)
    label = translate("_".join(words))
    if not label:
        return None
    return label if label.endswith("表") else label + "表"


def table_english_label(name: str) -> str:
    """What a table without comment or Chinese label is called: `film_category` -> film category table."""
    return f"{english_words('_'.join(_table_words(name)) or name)} table"


def _table_words(name: str) -> list[str]:
    words = _words(name)
    while len(words) > 1 and words[0] in _TABLE_PREFIXES:
        words = words[1:]
    return words
