"""The OpenAPI 3 document, built from the endpoint declarations (see endpoints.py)."""
from __future__ import annotations

import re

from flask import Flask

import data_pipeline
from data_pipeline.api.endpoints import EndpointSpec, declared_endpoints
from data_pipeline.api.responses import RESPONSE_SCHEMAS

_PATH_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")

_ERROR_STATUSES = {400: "参数错误", 401: "未授权", 403: "禁止访问（Host、Origin 或连接目标不被允许: CONNECTION_NOT_ALLOWED）",
                   404: "不存在", 409: "冲突", 413: "请求体过大", 415: "请求体不是 application/json", 500: "服务器错误",
                   503: "服务繁忙 (SERVICE_BUSY)", 504: "处理超时 (DEADLINE_EXCEEDED)",
                   507: "磁盘空间不足"}


def _envelope(data_schema: dict | None = None) -> dict:
    return {"type": "object", "required": ["success", "code", "message"], "properties": {
        "success": {"type": "boolean"}, "code": {"type": "integer"}, "message": {"type": "string"},
        "data": data_schema or {"type": "object"}}}


_ERROR_ENVELOPE = {"type": "object", "required": ["success", "code", "message", "error"], "properties": {
    "success": {"type": "boolean", "enum": [False]}, "code": {"type": "integer"}, "message": {"type": "string"},
    "error": {"type": "object", "required": ["type", "error_code", "details"], "properties": {
        "type": {"type": "string", "enum": ["ValidationError", "AuthenticationError",
                                            "NotFoundError", "ConflictError", "PayloadTooLarge", "DatabaseError",
                                            "VectorStoreError", "ServiceUnavailable", "GatewayTimeout",
                                            "InternalError"]},
        "error_code": {"type": "string"}, "details": {"type": "string"},
        "invalid_params": {"type": "array", "items": {"type": "string"}},
        "timestamp": {"type": "string"}}}}}


def _model_schema(model, components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(spec: EndpointSpec, components: dict) -> dict:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for _, name in _PATH_PARAMETER.findall(spec.rule)]
    if spec.query is not None:
        schema = spec.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "description": prop.get("description", ""),
                               "schema": {k: v for k, v in prop.items() if k not in ("title", "description")}})
    operation = {"summary": spec.summary, "tags": [spec.tag], "operationId": f"{spec.method}_{spec.rule}",
                 "parameters": parameters, "responses": {}}
    if spec.description:
        operation["description"] = spec.description
    if spec.body is not None:
        operation["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": _model_schema(spec.body, components)}}}
    if spec.multipart:
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {name: ({"type": "string", "format": "binary", "description": text} if name == "file"
                                  else {"type": "string", "description": text})
                           for name, text in spec.multipart.items()}}}}}
    if spec.raw_response:
        operation["responses"][str(spec.status)] = {"description": "成功", "content": {
            "application/json": {"schema": {"type": "object"}}}}
    elif spec.binary_response:
        operation["responses"][str(spec.status)] = {"description": "文件内容", "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    else:
        operation["responses"][str(spec.status)] = {"description": "成功", "content": {
            "application/json": {"schema": _envelope(
                {"$ref": f"#/components/schemas/{spec.response}"} if spec.response else None)}}}
    for status, text in _ERROR_STATUSES.items():
        operation["responses"][str(status)] = {"description": text, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    if not spec.public:
        operation["security"] = [{"bearerAuth": []}, {}]
    return operation


def build_document(app: Flask) -> dict:
    components: dict = {"ErrorEnvelope": _ERROR_ENVELOPE, **RESPONSE_SCHEMAS}
    paths: dict = {}
    for blueprint in app.blueprints.values():
        for spec in declared_endpoints(blueprint):
            path = _PATH_PARAMETER.sub(lambda m: "{" + m.group(2) + "}", spec.rule)
            paths.setdefault(path, {})[spec.method] = _operation(spec, components)
    for operation in (op for item in paths.values() for op in item.values()):
        operation["operationId"] = re.sub(r"[^A-Za-z0-9_]+", "_", operation["operationId"]).strip("_")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Data Pipeline API", "version": data_pipeline.__version__,
                 "description": "把业务数据库变成 text-to-SQL 训练数据的后台任务服务"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }
