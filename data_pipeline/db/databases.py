"""Which databases the service uses: the store, and the default business database."""
from __future__ import annotations

from config import Settings


def _normalise(url: str) -> str:
    return "postgresql://" + url[len("postgres://"):] if url.startswith("postgres://") else url


def store_url(settings: Settings) -> str:
    """psycopg URL of the database holding the task tables and the pgvector tables."""
    if settings.db_url:
        return _normalise(settings.db_url)
    from data_pipeline.db import embedded_pg

    return embedded_pg.store_url(settings.embedded_pg_dir, keep_running=settings.embedded_pg_keep_running)


def default_business_url(settings: Settings) -> str:
    """The business database used when a request names none (the embedded demo by default)."""
    if settings.default_db_connection:
        return _normalise(settings.default_db_connection)
    from data_pipeline.db import embedded_pg

    return embedded_pg.demo_url(settings.embedded_pg_dir, keep_running=settings.embedded_pg_keep_running)


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy with the psycopg 3 driver (`postgresql+psycopg://`)."""
    url = _normalise(url)
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url
