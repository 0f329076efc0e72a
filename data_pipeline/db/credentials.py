"""Stored connection strings, encrypted at rest (Fernet from the `cryptography` package).

The task table keeps a task's `db_connection` as `fernet:<token>`. The key is
DATA_PIPELINE_SECRET_KEY, else a key file created (mode 0600) in the data directory the first time
the service starts. Rows written before encryption (clear text) are sealed when the service starts
(`TaskService.seal_stored_connections`) and read as they are meanwhile. With another key — the file
lost, the variable changed — a stored connection cannot be read: the task's run says so, and the
caller creates the task again with its db_connection.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from config import ConfigError, Settings
from data_pipeline.errors import ConflictError

PREFIX = "fernet:"
logger = logging.getLogger("Credentials")


class CredentialsUnreadable(ConflictError):
    error_code = "DB_CONNECTION_UNREADABLE"
    message = "保存的数据库连接无法解密"

    def __init__(self, task_id: str | None = None):
        super().__init__(
            f"任务{' ' + task_id if task_id else ''}保存的 db_connection 无法解密：加密密钥已更换或丢失"
            "（DATA_PIPELINE_SECRET_KEY 或数据目录中的 secret.key）。请重新输入 db_connection：用它重新创建任务。",
            invalid_params=["db_connection"])


def load_key(settings: Settings) -> bytes:
    """DATA_PIPELINE_SECRET_KEY, else the key file (created now, mode 0600, if there is none)."""
    if settings.secret_key:
        return settings.secret_key.encode("ascii")
    path = Path(settings.secret_key_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once create one key; the other reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    logger.warning("created the key that encrypts stored db_connection passwords: %s (keep it, back it up)", path)
    return key


def _read_key_file(path: Path) -> bytes:
    for _ in range(50):  # another process may have created it a moment ago and still be writing
        key = path.read_bytes().strip()
        if key:
            return key
        time.sleep(0.02)
    raise ConfigError(f"the key file {path} is empty: remove it to create a new key (stored passwords are then lost)")


class CredentialCipher:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> "CredentialCipher":
        return cls(load_key(settings))

    def seal(self, url: str | None) -> str | None:
        if not url or url.startswith(PREFIX):
            return url
        return PREFIX + self._fernet.encrypt(url.encode("utf-8")).decode("ascii")

    def open(self, stored: str | None, task_id: str | None = None) -> str | None:
        """The connection string; clear text from before encryption is returned as it is."""
        if not stored or not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise CredentialsUnreadable(task_id) from None
