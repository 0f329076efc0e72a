"""Service health and the OpenAPI document."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

import data_pipeline
from data_pipeline.api.context import services
from data_pipeline.api.endpoints import endpoint
from data_pipeline.api.envelope import success
from data_pipeline.api.openapi import build_document

bp = Blueprint("health", __name__, url_prefix="/api/v0")


@endpoint(bp, "/health", methods=["GET"], summary="服务健康检查", tag="service", public=True)
def health():
    context = services()
    context.store.ping()
    settings = context.settings
    return success({
        "status": "healthy",
        "version": data_pipeline.__version__,
        "store": {"reachable": True, "embedded": settings.uses_embedded_pg},
        "llm": {"configured": settings.llm_configured, "model": settings.llm_model},
        "embedding_provider": settings.embedding_provider,
    }, "服务运行正常")


@endpoint(bp, "/openapi.json", methods=["GET"], summary="OpenAPI 3 文档（不带信封）", tag="service",
          raw_response=True)
def openapi_document():
    if "openapi_document" not in current_app.extensions:
        current_app.extensions["openapi_document"] = build_document(current_app)
    return jsonify(current_app.extensions["openapi_document"])
