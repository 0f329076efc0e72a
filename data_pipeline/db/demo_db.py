"""The demo business database `highway_db`: the project's own schema of a highway service-area
business and deterministic synthetic data (same seed, same rows, on every machine).

Companies run service areas along routes; each service area has shops (档口) whose daily revenue
is recorded by payment method, and a daily count of vehicles by type. Soft-deleted rows
(`delete_ts`) exist, as in real systems.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import random

import psycopg

DEMO_TABLES = ("bss_company", "bss_section_route", "bss_service_area", "bss_section_route_area_link",
               "bss_service_area_mapper", "bss_business_day_data", "bss_car_day_count")

_AUDIT_COLUMNS = """
  id varchar(32) not null primary key,
  version integer not null default 1,
  create_ts timestamp,
  created_by varchar(50),
  update_ts timestamp,
  updated_by varchar(50),
  delete_ts timestamp,
  deleted_by varchar(50)"""

_AUDIT_COMMENTS = {
    "id": "主键ID", "version": "数据版本号", "create_ts": "创建时间", "created_by": "创建人",
    "update_ts": "更新时间", "updated_by": "更新人", "delete_ts": "删除时间", "deleted_by": "删除人",
}

SCHEMA_SQL = f"""
create table bss_company ({_AUDIT_COLUMNS},
  company_name varchar(255) not null,
  company_no varchar(255) not null unique
);
create table bss_section_route ({_AUDIT_COLUMNS},
  section_name varchar(255),
  route_name varchar(255),
  code varchar(255)
);
create table bss_service_area ({_AUDIT_COLUMNS},
  service_area_name varchar(255) not null,
  service_area_no varchar(255) not null unique,
  company_id varchar(32) references bss_company(id),
  service_position varchar(255),
  service_area_type varchar(50),
  service_state varchar(50)
);
create table bss_section_route_area_link (
  section_route_id varchar(32) not null references bss_section_route(id),
  service_area_id varchar(32) not null references bss_service_area(id),
  primary key (section_route_id, service_area_id)
);
create table bss_service_area_mapper ({_AUDIT_COLUMNS},
  service_name varchar(255),
  service_no varchar(255),
  service_area_id varchar(32) references bss_service_area(id),
  source_system_type varchar(50),
  source_type integer
);
create table bss_business_day_data ({_AUDIT_COLUMNS},
  oper_date date not null,
  service_no varchar(255),
  service_name varchar(255),
  service_area_id varchar(32) references bss_service_area(id),
  branch_no varchar(255),
  branch_name varchar(255),
  wx numeric(19,4), wx_order integer,
  zfb numeric(19,4), zf_order integer,
  rmb numeric(19,4), rmb_order integer,
  xs numeric(19,4), xs_order integer,
  jd numeric(19,4), jd_order integer,
  order_sum integer,
  pay_sum numeric(19,4),
  source_type integer
);
create table bss_car_day_count ({_AUDIT_COLUMNS},
  customer_count bigint,
  car_type varchar(100),
  count_date date not null,
  service_area_id varchar(32) references bss_service_area(id)
);
create index on bss_business_day_data (oper_date);
create index on bss_car_day_count (count_date);
"""

TABLE_COMMENTS = {
    "bss_company": "服务区管理公司信息表",
    "bss_section_route": "高速公路路段路线信息表",
    "bss_service_area": "高速公路服务区基础信息表",
    "bss_section_route_area_link": "路段路线与服务区关联表",
    "bss_service_area_mapper": "服务区编码映射表（各来源系统的服务区编码与名称）",
    "bss_business_day_data": "服务区档口每日经营数据表（按支付方式统计营收与订单）",
    "bss_car_day_count": "服务区每日车流量统计表（按车辆类别）",
}

COLUMN_COMMENTS = {
    "bss_company": {"company_name": "公司名称", "company_no": "公司编码"},
    "bss_section_route": {"section_name": "路段名称", "route_name": "路线名称", "code": "路段编号"},
    "bss_service_area": {"service_area_name": "服务区名称", "service_area_no": "服务区编码",
                         "company_id": "所属公司ID", "service_position": "经纬度坐标",
                         "service_area_type": "服务区类型", "service_state": "运营状态"},
    "bss_section_route_area_link": {"section_route_id": "路段路线ID", "service_area_id": "服务区ID"},
    "bss_service_area_mapper": {"service_name": "服务区名称", "service_no": "服务区编码",
                                "service_area_id": "服务区ID", "source_system_type": "数据来源系统",
                                "source_type": "来源系统类型编号"},
    "bss_business_day_data": {"oper_date": "统计日期", "service_no": "服务区编码", "service_name": "服务区名称",
                              "service_area_id": "服务区ID", "branch_no": "档口编码", "branch_name": "档口名称",
                              "wx": "微信支付金额", "wx_order": "微信订单数", "zfb": "支付宝支付金额",
                              "zf_order": "支付宝订单数", "rmb": "现金支付金额", "rmb_order": "现金订单数",
                              "xs": "行吧支付金额", "xs_order": "行吧订单数", "jd": "金豆支付金额",
                              "jd_order": "金豆订单数", "order_sum": "订单总数", "pay_sum": "支付总金额",
                              "source_type": "数据来源类型"},
    "bss_car_day_count": {"customer_count": "车辆数量", "car_type": "车辆类别", "count_date": "统计日期",
                          "service_area_id": "服务区ID"},
}

_COMPANIES = [("H01", "南昌分公司"), ("H02", "宜春分公司"), ("H03", "上饶分公司"), ("H04", "九江分公司"),
              ("H05", "赣州分公司"), ("H06", "吉安分公司"), ("H07", "抚州分公司"), ("H08", "景德镇分公司")]
_PLACES = ["庐山", "宜春", "南城", "鄱阳湖", "井冈山", "瑞金", "婺源", "三清山", "龙虎山", "武功山", "明月山",
           "滕王阁", "梅岭", "樟树", "丰城", "高安", "上高", "万载", "铜鼓", "修水", "武宁", "永修", "德安",
           "瑞昌", "彭泽", "湖口", "都昌", "星子", "安义", "靖安"]
_ROUTES = [("G60", "沪昆高速"), ("G70", "福银高速"), ("G45", "大广高速"), ("G56", "杭瑞高速"),
           ("G35", "济广高速"), ("G72", "泉南高速")]
_CAR_TYPES = ["过境", "城际", "危化品", "其他"]
_AREA_TYPES = ["信息化服务区", "智能化服务区"]
_START_DAY = dt.date(2023, 1, 1)
_DAYS = 90


def _uid(*parts: object) -> str:
    return hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()


def _audit(rng: random.Random, day: dt.date, deleted: bool = False) -> tuple:
    created = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86400))
    return (1, created, "admin", created, "admin",
            created + dt.timedelta(days=30) if deleted else None, "admin" if deleted else None)


def _rows(rng: random.Random) -> dict[str, list[tuple]]:
    rows: dict[str, list[tuple]] = {name: [] for name in DEMO_TABLES}
    for no, name in _COMPANIES:
        rows["bss_company"].append((_uid("company", no), *_audit(rng, dt.date(2021, 5, 20)), name, no))
    for index, (code, route) in enumerate(_ROUTES):
        for part in range(2):
            section = f"{route}{'东西南北'[part]}段"
            rows["bss_section_route"].append(
                (_uid("route", code, part), *_audit(rng, dt.date(2021, 6, 1)), section, route, f"{code}-{part + 1}"))
    areas = []
    for index, place in enumerate(_PLACES):
        company = _COMPANIES[index % len(_COMPANIES)]
        area_id, area_no = _uid("area", place), f"{company[0]}{index + 1:02d}"
        state = "关闭" if index % 11 == 5 else ("上传数据" if index % 13 == 7 else "开放")
        areas.append((area_id, area_no, f"{place}服务区"))
        rows["bss_service_area"].append(
            (area_id, *_audit(rng, dt.date(2021, 7, 1)), f"{place}服务区", area_no, _uid("company", company[0]),
             f"{115 + rng.random() * 3:.6f},{25 + rng.random() * 4:.6f}", _AREA_TYPES[index % 2], state))
        route_code = _ROUTES[index % len(_ROUTES)][0]
        rows["bss_section_route_area_link"].append((_uid("route", route_code, index % 2), area_id))
        for source_type, system in ((1, "驿美"), (2, "驿购")):
            rows["bss_service_area_mapper"].append(
                (_uid("mapper", place, source_type), *_audit(rng, dt.date(2021, 7, 2)), f"{place}服务区",
                 f"{area_no}{source_type}", area_id, system, source_type))
    for day_index in range(_DAYS):
        day = _START_DAY + dt.timedelta(days=day_index)
        weekend = 1.4 if day.weekday() >= 5 else 1.0
        for area_id, area_no, area_name in areas:
            for branch, side in enumerate(("东区", "西区")):
                amounts, orders = [], []
                for share in (0.55, 0.25, 0.12, 0.05, 0.03):
                    count = int(rng.randint(20, 300) * share * weekend)
                    orders.append(count)
                    amounts.append(round(count * rng.uniform(12, 45), 2))
                deleted = rng.random() < 0.01
                rows["bss_business_day_data"].append(
                    (_uid("biz", area_no, branch, day), *_audit(rng, day + dt.timedelta(days=1), deleted), day,
                     area_no, area_name, area_id, f"{area_no}{branch + 1}", f"{area_name[:-3]}{side}",
                     amounts[0], orders[0], amounts[1], orders[1], amounts[2], orders[2], amounts[3], orders[3],
                     amounts[4], orders[4], sum(orders), round(sum(amounts), 2), rng.choice((0, 1, 1, 1, 2, 3, 4))))
            for car_type, scale in zip(_CAR_TYPES, (900, 500, 40, 120)):
                rows["bss_car_day_count"].append(
                    (_uid("car", area_no, car_type, day), *_audit(rng, day + dt.timedelta(days=1)),
                     int(scale * weekend * rng.uniform(0.6, 1.4)), car_type, day, area_id))
    return rows


def populate(conn: psycopg.Connection) -> dict[str, int]:
    """Create the demo schema in an empty database and fill it; returns row counts by table."""
    rows = _rows(random.Random(20230101))
    with conn.transaction():
        conn.execute(SCHEMA_SQL)
        for table, comment in TABLE_COMMENTS.items():
            conn.execute(f"comment on table {table} is {_literal(comment)}")
            for column, column_comment in {**_AUDIT_COMMENTS, **COLUMN_COMMENTS[table]}.items():
                if table == "bss_section_route_area_link" and column in _AUDIT_COMMENTS:
                    continue
                conn.execute(f"comment on column {table}.{column} is {_literal(column_comment)}")
        with conn.cursor() as cur:
            for table in DEMO_TABLES:
                with cur.copy(f"copy {table} from stdin") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
        conn.execute("analyze")
    return {table: len(rows[table]) for table in DEMO_TABLES}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
