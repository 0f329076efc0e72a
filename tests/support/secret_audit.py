"""Watching for secrets: every response a test session receives and every file a test server wrote.

Tests register the secrets they hand to the service (database passwords, the API key, LLM and
embedding keys) and the directories of the servers they start; sessions they use are watched
(each response is checked as it arrives, so nothing large is kept). `leaks()` lists every place a
secret was seen: a response, a log file, a task file.
"""
from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

import requests

MAX_SCANNED_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class SecretAudit:
    secrets: set[str] = field(default_factory=set)
    directories: set[Path] = field(default_factory=set)
    responses_checked: int = 0
    files_checked: int = 0
    _response_leaks: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def secret(self, value: str) -> str:
        """Register a secret (at least 8 characters, so it cannot match by chance) and return it."""
        assert len(value) >= 8, "a secret this short could appear by chance"
        self.secrets.add(value)
        return value

    def directory(self, path: Path) -> Path:
        self.directories.add(Path(path))
        return path

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
        with self._lock:
            found = list(self._response_leaks)
        return found + self.scan_files()


def _shown(secret: str) -> str:
    return f"secret {secret[:3]}…({len(secret)} chars)"


audit = SecretAudit()
