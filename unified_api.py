"""Entry point: `python unified_api.py` serves the Data Pipeline API with waitress.

Settings come from the environment (and an optional .env); with none set, the service runs on its
embedded default (embedded PostgreSQL with pgvector, demo database, offline generator, hash
embeddings) at http://127.0.0.1:8084.
"""
from __future__ import annotations

import signal
import sys

from config import ConfigError, Settings


def create_app(settings: Settings | None = None):
    from data_pipeline.api import create_app as factory

    return factory(settings)


def main() -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"配置错误 (configuration error): {exc}", file=sys.stderr)
        return 2
    import waitress

    app = create_app(settings)
    app.extensions["data_pipeline"].tasks.watch()
    # Exit through sys.exit so the embedded PostgreSQL handle is released (atexit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"Data Pipeline API listening on http://{settings.host}:{settings.port}", flush=True)
    waitress.serve(app, host=settings.host, port=settings.port, threads=16, ident="data-pipeline",
                   clear_untrusted_proxy_headers=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
