"""Database tools endpoints (guide §6): list a database's tables, document one table."""
from __future__ import annotations

from flask import Blueprint

from data_pipeline.api.context import services
from data_pipeline.api.endpoints import endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.schemas import ListTablesRequest, TableDocumentRequest

bp = Blueprint("database", __name__, url_prefix="/api/v0/database")


@endpoint(bp, "/tables", methods=["POST"], body=ListTablesRequest, summary="获取数据库表列表", tag="database")
def list_database_tables(body: ListTablesRequest):
    data = services().schema_tools.list_tables(db_connection=body.db_connection, schema=body.schema_names,
                                               table_name_pattern=body.table_name_pattern,
                                               include_views=body.include_views)
    return success(data, "获取表列表成功")


@endpoint(bp, "/table/ddl", methods=["POST"], body=TableDocumentRequest, summary="获取表DDL/MD文档",
          tag="database")
def table_ddl(body: TableDocumentRequest):
    data = services().schema_tools.table_document(db_connection=body.db_connection, table=body.table,
                                                  output_type=body.type, business_context=body.business_context)
    return success(data, "获取表DDL成功")
