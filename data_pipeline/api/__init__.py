"""The Flask application factory: `create_app(settings)` builds an app with its own store."""
from __future__ import annotations

import importlib
import logging
import time

from flask import Flask, g, request

from config import Settings
from data_pipeline.api.context import Services
from data_pipeline.api.endpoints import declared_endpoints
from data_pipeline.api.envelope import register_error_handlers, success
from data_pipeline.api.guards import install_request_guards
from data_pipeline.db.connection import isolate_environment
from data_pipeline.db.databases import default_business_url, store_url
from data_pipeline.store import TaskStore

# One module per resource, each exposing `bp`.
BLUEPRINT_MODULES = ("health", "tasks", "database", "files", "logs", "vectors", "console")

access_log = logging.getLogger("unified_api")


class PipelineFlask(Flask):
    def make_default_options_response(self):
        """OPTIONS answers in the envelope like every other request (no CORS: nothing is granted)."""
        methods = sorted(super().make_default_options_response().allow)
        response, _ = success({"allowed_methods": methods}, "支持的请求方法")
        response.allow.update(methods)
        return response


def create_app(settings: Settings | None = None, *, configure_logging: bool = True) -> Flask:
    settings = settings or Settings.from_env()
    if configure_logging:
        from data_pipeline.logs.app_logging import configure_logging as configure

        configure(settings)
    settings.training_data_dir.mkdir(parents=True, exist_ok=True)
    isolate_environment()
    store = TaskStore(store_url(settings))
    store.migrate()
    if not settings.default_db_connection:
        default_business_url(settings)  # create the demo database now, not during a request
    app = PipelineFlask(__name__, static_folder=None)
    # "//" in a URL is answered 404 in the envelope, not with an HTML 308 redirect that merges it.
    app.url_map.merge_slashes = False
    app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length, JSON_SORT_KEYS=False)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.extensions["data_pipeline"] = context = Services.build(settings, store)
    for name in BLUEPRINT_MODULES:
        app.register_blueprint(importlib.import_module(f"data_pipeline.api.{name}").bp)
    register_error_handlers(app)
    _install_access_log(app)
    install_request_guards(app, settings, _public_endpoints(app))
    sealed = context.tasks.seal_stored_connections()
    if sealed:
        access_log.info("encrypted the stored db_connection of %d task(s) saved before encryption", sealed)
    settled = context.tasks.settle_orphans()
    if settled:
        access_log.warning("settled %d task(s) whose executor was gone", settled)
    context.tasks.start_queued_runs()  # the queue survives a restart: its first runs start now
    return app


def _public_endpoints(app: Flask) -> set[str]:
    public = set()
    for blueprint in app.blueprints.values():
        for spec in declared_endpoints(blueprint):
            if spec.public:
                public.add(f"{blueprint.name}.{spec.endpoint}")
    return public


def _install_access_log(app: Flask) -> None:
    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def log_access(response):
        elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
        access_log.info("%s %s %d %.1fms", request.method, request.path, response.status_code, elapsed)
        return response
