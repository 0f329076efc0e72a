"""A PostgreSQL server that a test starts and stops itself (the Debian PostgreSQL binaries).

    cluster = PostgresCluster.create(tmp_path)      # initdb into a temporary directory, free port
    url = cluster.add_database("biz", user="reluser", password="...")
    cluster.stop()                                  # the business database goes away mid-step
    cluster.start()

It listens on 127.0.0.1 only, with password (scram) authentication over TCP, so connection strings
carry a real password. As root, initdb and the server run as the `postgres` system user.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.api_server import free_port

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"), Path("/usr/lib/postgresql/16/bin"), Path("/usr/lib/postgresql/17/bin"))
SYSTEM_USER = "postgres"


def find_bin_dir() -> Path | None:
    explicit = os.environ.get("DATA_PIPELINE_TEST_PG_BIN")
    candidates = [Path(explicit)] if explicit else list(BIN_DIRS)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


class PostgresCluster:
    def __init__(self, root: Path, bin_dir: Path, port: int):
        self.root = root
        self.bin_dir = bin_dir
        self.port = port
        self.data_dir = root / "data"
        self.log_file = root / "server.log"

    @classmethod
    def create(cls, root: Path) -> "PostgresCluster":
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found (set DATA_PIPELINE_TEST_PG_BIN)")
        root.mkdir(parents=True, exist_ok=True)
        cluster = cls(root, bin_dir, free_port())
        if os.geteuid() == 0:
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(root, user.pw_uid, user.pw_gid)
            os.chmod(root, 0o700)
        cluster._run("initdb", "-D", str(cluster.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                     "--locale=C.UTF-8")
        # Only the superuser may come in without a password (the test sets up databases with it).
        (cluster.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8")
        cluster.start()
        return cluster

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        finished = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        if finished.returncode:
            raise RuntimeError(f"{program} failed ({finished.returncode}): {finished.stderr.decode(errors='replace')}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(self.log_file), "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", mode, "stop")

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def add_database(self, name: str, *, user: str, password: str) -> str:
        """A database owned by a password-protected role; its URL (with the password)."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            if not conn.execute("select 1 from pg_roles where rolname = %s", (user,)).fetchone():
                conn.execute(sql.SQL("create role {} login password {}").format(sql.Identifier(user),
                                                                                 sql.Literal(password)))
            conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(user)))
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        if self.is_running():
            try:
                self.stop("immediate")
            except RuntimeError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
