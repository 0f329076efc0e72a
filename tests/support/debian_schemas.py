"""Real-world PostgreSQL schemas that nobody here wrote, taken from Debian packages at test set-up.

    schema = SCHEMAS["zabbix"]            # also "icinga", "pdns"
    files = sql_files(schema)             # the package's SQL files, in load order (fetched once)
    load(schema, url)                     # runs them on an existing (empty) database

The packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into
`<project>/.cache/debian-schemas/<package>/` (git-ignored, never committed), once per machine.
If the download fails, `apt-get update` is run once and the download tried again; if the archive
is still unreachable, `ArchiveUnreachable` says why (the tests fail, never skip: CI reaches it).
A lock file serialises concurrent test sessions that fetch the same package.
"""
from __future__ import annotations

import fcntl
import gzip
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = PROJECT_ROOT / ".cache" / "debian-schemas"
_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class DebianSchema:
    key: str
    package: str
    files: tuple[str, ...]      # paths inside the package, in load order
    tables: int                 # tables the files create


SCHEMAS = {schema.key: schema for schema in (
    DebianSchema("zabbix", "zabbix-server-pgsql",
                 ("usr/share/zabbix-server-pgsql/schema.sql.gz", "usr/share/zabbix-server-pgsql/images.sql.gz",
                  "usr/share/zabbix-server-pgsql/data.sql.gz"), 173),
    DebianSchema("icinga", "icinga2-ido-pgsql", ("usr/share/icinga2-ido-pgsql/schema/pgsql.sql",), 61),
    DebianSchema("pdns", "pdns-backend-pgsql", ("usr/share/pdns-backend-pgsql/schema/schema.pgsql.sql",), 7),
)}


class ArchiveUnreachable(RuntimeError):
    """The Debian archive could not provide a package."""


def sql_files(schema: DebianSchema) -> list[Path]:
    root = _unpacked(schema.package)
    paths = [root / name for name in schema.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{schema.package} no longer ships {', '.join(missing)}")
    return paths


def load(schema: DebianSchema, url: str) -> None:
    """Run the schema's files on the database at `url`, each as one batch of statements."""
    with psycopg.connect(url, autocommit=True) as conn:
        for path in sql_files(schema):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                conn.execute(handle.read())


def _unpacked(package: str) -> Path:
    """The package's files unpacked under the cache (fetched on first use)."""
    home = CACHE_DIR / package
    tree, marker = home / "tree", home / "unpacked"
    if marker.is_file():
        return tree
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():    # another session fetched it while this one waited
            return tree
        deb = _download(package, home)
        staging = home / "tree.partial"
        shutil.rmtree(staging, ignore_errors=True)
        _run(["dpkg-deb", "-x", str(deb), str(staging)], home)
        shutil.rmtree(tree, ignore_errors=True)
        staging.rename(tree)
        marker.write_text(deb.name + "\n", encoding="utf-8")
    return tree


def _download(package: str, home: Path) -> Path:
    for old in home.glob("*.deb"):
        old.unlink()
    finished = _run(["apt-get", "download", package], home, check=False)
    if finished.returncode:
        # A fresh machine may have no package lists yet.
        _run(["apt-get", "update", "-qq"], home, check=False)
        finished = _run(["apt-get", "download", package], home, check=False)
    debs = sorted(home.glob("*.deb"))
    if finished.returncode or not debs:
        raise ArchiveUnreachable(f"apt-get download {package} failed ({finished.returncode}): "
                                 f"{finished.stderr.strip()[-2000:]}")
    return debs[-1]


def _run(command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    try:
        finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS,
                                  stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ArchiveUnreachable(f"{command[0]} is not installed: the Debian tools are needed") from None
    if check and finished.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}")
    return finished
