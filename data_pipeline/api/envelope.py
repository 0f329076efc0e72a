"""The JSON envelope of every API response, and the one place errors become responses."""
from __future__ import annotations

import datetime as dt
import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from data_pipeline.errors import InsufficientStorageError, PipelineError, disk_full_details, is_disk_full

logger = logging.getLogger("unified_api")

_HTTP_ERRORS = {
    400: ("ValidationError", "VALIDATION_ERROR", "请求参数错误"),
    401: ("AuthenticationError", "UNAUTHORIZED", "未授权"),
    403: ("AuthenticationError", "FORBIDDEN", "禁止访问"),
    404: ("NotFoundError", "NOT_FOUND", "资源不存在"),
    405: ("ValidationError", "METHOD_NOT_ALLOWED", "不支持的请求方法"),
    409: ("ConflictError", "CONFLICT", "请求与当前状态冲突"),
    413: ("PayloadTooLarge", "PAYLOAD_TOO_LARGE", "请求体过大"),
    415: ("ValidationError", "UNSUPPORTED_MEDIA_TYPE", "不支持的内容类型"),
}


def success(data=None, message: str = "操作成功", status: int = 200):
    return jsonify({"success": True, "code": status, "message": message, "data": data if data is not None else {}}), status


def error_body(status: int, error_type: str, error_code: str, message: str, details: str,
               invalid_params: list[str] | None = None) -> dict:
    return {
        "success": False,
        "code": status,
        "message": message,
        "error": {
            "type": error_type,
            "error_code": error_code,
            "details": details,
            "invalid_params": invalid_params or [],
            "timestamp": dt.datetime.now().replace(microsecond=0).isoformat(),
        },
    }


def error_response(exc: PipelineError):
    body = error_body(exc.status, exc.type, exc.error_code, exc.message, exc.details, exc.invalid_params)
    return jsonify(body), exc.status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(PipelineError)
    def handle_pipeline_error(exc: PipelineError):
        if exc.status >= 500:
            logger.error("%s: %s", exc.error_code, exc.details)
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        status = exc.code or 500
        error_type, error_code, message = _HTTP_ERRORS.get(status, ("InternalError", "INTERNAL_ERROR", "请求失败"))
        details = {
            404: "请求的接口不存在",
            405: "该接口不支持此请求方法",
            413: "请求体超过服务允许的大小",
        }.get(status, exc.description or message)
        response = jsonify(error_body(status, error_type, error_code, message, details))
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if is_disk_full(exc):  # any write of any endpoint: a full disk is the user's to fix, and says so
            logger.warning("request refused, disk full: %s", exc)
            return error_response(InsufficientStorageError(disk_full_details(exc)))
        logger.exception("unexpected error while handling a request")
        return jsonify(error_body(500, "InternalError", "INTERNAL_ERROR", "服务器内部错误",
                                  "服务器处理请求时发生意外错误，详情见服务日志")), 500
