"""Database tools endpoints (guide §6): list a database's tables, document one table."""
from __future__ import annotations

from typing import Literal, Optional

from flask import Blueprint
from pydantic import Field

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import RequestBody, endpoint
from data_pipeline.api.envelope import success
from data_pipeline.db.databases import default_business_url
from data_pipeline.db.connection import validate_url
from data_pipeline.llm.client import LLMClient
from data_pipeline.schema.secret_columns import ColumnMask
from data_pipeline.schema.tools import list_tables, table_document

bp = Blueprint("database", __name__, url_prefix="/api/v0/database")


class ListTablesRequest(RequestBody):
    db_connection: Optional[str] = Field(None, max_length=2048,
                                         description="数据库连接字符串 postgresql://...，不传则使用默认配置")
    schema_names: Optional[str] = Field(None, alias="schema", max_length=2000,
                                        description="Schema名称，支持多个用逗号分隔；不传则列出所有非系统schema")
    table_name_pattern: Optional[str] = Field(None, max_length=200,
                                              description="表名模式匹配（不区分大小写），支持通配符 * 和 ?")
    include_views: bool = Field(False, description="是否包含视图与物化视图")


class TableDocumentRequest(RequestBody):
    table: str = Field(..., min_length=1, max_length=300, description="表名（可包含schema），如 public.bss_company")
    db_connection: Optional[str] = Field(None, max_length=2048, description="数据库连接字符串")
    business_context: Optional[str] = Field(None, max_length=20000, description="业务上下文描述")
    type: Literal["ddl", "md", "both"] = Field("both", description="输出类型：ddl/md/both")


def _business_url(db_connection: str | None) -> str:
    if db_connection is not None:
        return validate_url(db_connection)
    return default_business_url(services().settings)


def _schema_list(text: str | None) -> list[str] | None:
    """`public, "My Schema", ODS` -> ["public", "My Schema", "ods"] (unquoted names fold to lower case)."""
    names = []
    for part in (text or "").split(","):
        part = part.strip()
        if len(part) > 1 and part.startswith('"') and part.endswith('"'):
            names.append(part[1:-1].replace('""', '"'))
        elif part:
            names.append(part.lower())
    return names or None


@endpoint(bp, "/tables", methods=["POST"], body=ListTablesRequest, summary="获取数据库表列表", tag="database")
def list_database_tables(body: ListTablesRequest):
    data = list_tables(_business_url(body.db_connection), _schema_list(body.schema_names),
                       body.table_name_pattern, body.include_views)
    return success(data, "获取表列表成功")


@endpoint(bp, "/table/ddl", methods=["POST"], body=TableDocumentRequest, summary="获取表DDL/MD文档",
          tag="database")
def table_ddl(body: TableDocumentRequest):
    settings = services().settings
    data = table_document(_business_url(body.db_connection), body.table, body.type, body.business_context,
                          LLMClient.from_settings(settings), ColumnMask.from_settings(settings))
    return success(data, "获取表DDL成功")
