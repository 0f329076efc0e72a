"""The files qa_generation leaves in the task directory, in the layout of the reference output:
`qs_<db>_<ts>_pair.json`, `metadata.txt` (valid PostgreSQL), `metadata_detail.md` and
`db_query_decision_prompt.txt`. Every file is written to a temporary name and renamed.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from data_pipeline.qa.model import BusinessScope, QAPair, Theme
from data_pipeline.schema.names import safe_file_stem
from data_pipeline.tasks.directory import write_json_atomic, write_text_atomic

METADATA_FILE = "metadata.txt"
METADATA_DETAIL_FILE = "metadata_detail.md"
DECISION_PROMPT_FILE = "db_query_decision_prompt.txt"
TOPIC_NAME_LENGTH = 100

_CREATE_METADATA = """CREATE TABLE IF NOT EXISTS metadata (
    id SERIAL PRIMARY KEY,                           -- 主键
    topic_name VARCHAR(100) NOT NULL,                -- 业务主题名称
    description TEXT,                                -- 业务主题说明
    related_tables TEXT[],                           -- 相关表名
    biz_entities TEXT[],                             -- 主要业务实体名称
    biz_metrics TEXT[],                              -- 主要业务指标名称
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP   -- 插入时间
);"""


def pair_file_name(db_name: str, when: datetime) -> str:
    return f"qs_{safe_file_stem(db_name)}_{when.strftime('%Y%m%d_%H%M%S')}_pair.json"


def write_pairs(path: Path, pairs: list[QAPair]) -> None:
    write_json_atomic(path, [pair.as_output() for pair in pairs])


def render_metadata_sql(themes: list[Theme], *, db_name: str, business_context: str, when: datetime) -> str:
    lines = ["-- qa_generation 生成的主题元数据",
             f"-- 业务背景: {_one_line(business_context)}",
             f"-- 生成时间: {when.strftime('%Y-%m-%d %H:%M:%S')}",
             f"-- 数据库: {_one_line(db_name)}", "",
             "-- 创建表（如果不存在）", _CREATE_METADATA, "", "-- 插入主题数据"]
    for theme in themes:
        lines += ["INSERT INTO metadata (topic_name, description, related_tables, biz_entities, biz_metrics) VALUES",
                  "(",
                  f"  {sql_string(theme.topic_name[:TOPIC_NAME_LENGTH])},",
                  f"  {sql_string(theme.description)},",
                  f"  {sql_array(theme.related_tables)},",
                  f"  {sql_array(theme.biz_entities)},",
                  f"  {sql_array(theme.biz_metrics)}",
                  ");", ""]
    return "\n".join(lines) + "\n"


def render_metadata_detail(themes: list[Theme]) -> str:
    def examples(values: list[str]) -> str:
        shown = list(dict.fromkeys(values))[:3]
        return f" [示例: {', '.join(shown)}]" if shown else ""

    tables = [t for theme in themes for t in theme.related_tables]
    entities = [e for theme in themes for e in theme.biz_entities]
    metrics = [m for theme in themes for m in theme.biz_metrics]
    return "\n".join([
        "## metadata（存储分析主题元数据）", "",
        "`metadata` 主要描述了当前数据库包含了哪些数据内容，哪些分析主题，哪些指标等等。", "",
        "字段列表：", "",
        "- `id` (serial) - 主键ID [主键, 非空]",
        "- `topic_name` (varchar(100)) - 业务主题名称 [非空]",
        "- `description` (text) - 业务主题说明",
        f"- `related_tables` (text[]) - 涉及的数据表{examples(tables)}",
        f"- `biz_entities` (text[]) - 主要业务实体名称{examples(entities)}",
        f"- `biz_metrics` (text[]) - 主要业务指标名称{examples(metrics)}",
        "- `created_at` (timestamp) - 插入时间 [默认值: `CURRENT_TIMESTAMP`]", "",
        "字段补充说明：", "",
        "- `id` 为主键，自增；",
        "- `related_tables` 用于建立主题与具体明细表的依赖关系；",
        "- `biz_entities` 表示主题关注的核心对象，例如服务区、车辆、公司；",
        "- `biz_metrics` 表示该主题关注的业务分析指标，例如营收对比、趋势变化、占比结构等。",
    ]) + "\n"


def render_decision_prompt(scope: BusinessScope) -> str:
    lines = ["=== 数据库业务范围 ===", _one_line(scope.summary), "核心业务实体："]
    for item in scope.entities:
        fields = f"，主要字段：{'、'.join(item.fields)}" if item.fields else ""
        lines.append(f"- {_one_line(item.name)}：{_one_line(item.description)}{fields}")
    lines.append("关键业务指标：")
    for item in scope.metrics:
        lines.append(f"- {_one_line(item.name)}：{_one_line(item.description)}")
    return "\n".join(lines) + "\n"


def write_outputs(task_dir: Path, *, pair_file: str, pairs: list[QAPair], themes: list[Theme],
                  scope: BusinessScope, db_name: str, business_context: str, when: datetime) -> None:
    """The three companion files first, the pair file last: its presence means the step finished."""
    write_text_atomic(task_dir / METADATA_FILE,
                      render_metadata_sql(themes, db_name=db_name, business_context=business_context, when=when))
    write_text_atomic(task_dir / METADATA_DETAIL_FILE, render_metadata_detail(themes))
    write_text_atomic(task_dir / DECISION_PROMPT_FILE, render_decision_prompt(scope))
    write_pairs(task_dir / pair_file, pairs)


def sql_string(text: str) -> str:
    return "'" + str(text).replace("\x00", "").replace("'", "''") + "'"


def sql_array(values: list[str]) -> str:
    if not values:
        return "ARRAY[]::text[]"
    return "ARRAY[" + ", ".join(sql_string(v) for v in values) + "]::text[]"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
