"""Watching for secrets: every response a test session receives, every file a test server wrote,
and every row of every store it used.

Tests register the secrets they hand to the service (database passwords, the API key, LLM and
embedding keys), the directories of the servers they start and the store databases those servers
use; sessions they use are watched (each response is checked as it arrives, so nothing large is
kept). `leaks()` lists every place a secret was seen: a response, a log file, a task file, a row of
a store table (every column of every table outside the system schemas, read as text).
"""
from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
from psycopg import sql

MAX_SCANNED_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class SecretAudit:
    secrets: set[str] = field(default_factory=set)
    directories: set[Path] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    responses_checked: int = 0
    files_checked: int = 0
    tables_checked: int = 0
    _response_leaks: list[str] = field(default_factory=list)
    _store_leaks: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def secret(self, value: str) -> str:
        """Register a secret (at least 8 characters, so it cannot match by chance) and return it."""
        assert len(value) >= 8, "a secret this short could appear by chance"
        self.secrets.add(value)
        return value

    def directory(self, path: Path) -> Path:
        self.directories.add(Path(path))
        return path

    def store(self, url: str) -> str:
        """Register a store database: its tables are read by `leaks()`, or by `scan_store` before it is dropped."""
        self.stores.add(url)
        return url

    def scan_store(self, url: str) -> list[str]:
        """Every row of the store's tables that holds a secret (done once per store; remembered)."""
        self.stores.discard(url)
        found, tables = store_leaks(url, self.secrets)
        with self._lock:
            self.tables_checked += tables
            self._store_leaks.extend(found)
        return found

    def watch(self, session: requests.Session) -> requests.Session:
        session.hooks["response"].append(self._on_response)
        return session

    def _on_response(self, response: requests.Response, *args, **kwargs) -> None:
        self.check_response(response)

    def check_response(self, response: requests.Response) -> None:
        where = f"{response.request.method} {response.request.url} -> {response.status_code}"
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.check_bytes(where, headers.encode("utf-8", "replace") + b"\n" + (response.content or b""))

    def check_bytes(self, where: str, data: bytes) -> None:
        found = [s for s in self.secrets if s.encode("utf-8") in data]
        with self._lock:
            self.responses_checked += 1
            self._response_leaks.extend(f"{where}: contains {_shown(s)}" for s in found)

    def scan_files(self) -> list[str]:
        """Every file under the registered directories that holds a secret.

        PostgreSQL data directories are skipped: the store keeps a task's connection string (it
        needs the password to run the task); what is checked is what the service writes itself.
        """
        leaks = []
        needles = [s.encode("utf-8") for s in self.secrets]
        for path in sorted(self._files()):
            self.files_checked += 1
            with open(path, "rb") as handle:
                data = handle.read(MAX_SCANNED_FILE_BYTES)
            leaks.extend(f"{path}: contains {_shown(n.decode())}" for n in needles if n in data)
        return leaks

    def _files(self) -> set[Path]:
        files = set()
        for directory in self.directories:
            for root, dirs, names in os.walk(directory):
                if "PG_VERSION" in names:
                    dirs.clear()
                    continue
                # regular files only: no symlink (it points elsewhere), no socket, no pipe
                files.update(Path(root) / name for name in names
                             if stat.S_ISREG(os.lstat(os.path.join(root, name)).st_mode))
        return files

    def leaks(self) -> list[str]:
        for url in list(self.stores):
            self.scan_store(url)
        with self._lock:
            found = self._response_leaks + self._store_leaks
        return found + self.scan_files()


def store_leaks(url: str, secrets: set[str]) -> tuple[list[str], int]:
    """Rows of any table (outside the system schemas) of the database at `url` whose text holds a
    secret — every column, as PostgreSQL prints the row — and the number of tables read."""
    leaks = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute("""
            select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
               and n.nspname not like 'pg_toast%'""").fetchall()
        for schema, table in tables:
            name = sql.Identifier(schema, table)
            for secret in secrets:
                count = conn.execute(sql.SQL("select count(*) from {} t where strpos(t::text, %s) > 0").format(name),
                                     (secret,)).fetchone()[0]
                if count:
                    leaks.append(f"store table {schema}.{table}: {count} row(s) contain {_shown(secret)}")
    return leaks, len(tables)


def _shown(secret: str) -> str:
    return f"secret {secret[:3]}…({len(secret)} chars)"


audit = SecretAudit()
