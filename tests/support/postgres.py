"""PostgreSQL for the gradebook's tests: a throwaway server from Debian's binaries, started by the
tests on a free loopback port (as the queue tests start their own Redis), or the server that
$GRADER_DB_URL names when it is a PostgreSQL URL. Each test gets a fresh database on it."""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.cluster import free_port


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian's layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class Postgres:
    """A PostgreSQL server on which tests make databases; `admin_url` points at its `postgres` database."""

    def __init__(self, admin_url: str, process_folder: Path | None = None):
        self.admin_url = admin_url
        self.folder = process_folder

    @classmethod
    def start(cls) -> "Postgres":
        """initdb and pg_ctl start in a new temporary folder; as root the server runs as the `postgres`
        user, which it requires (so the folder is not under pytest's root-only one)."""
        bindir = binaries()
        user = "postgres" if os.geteuid() == 0 else None
        folder = Path(tempfile.mkdtemp(prefix="grader-postgres-"))
        data, sockets = folder / "data", folder / "sockets"
        for path in (folder, sockets):
            path.mkdir(parents=True, exist_ok=True)
            if user:
                shutil.chown(path, user)
        port = free_port()

        def run(*cmd: str) -> None:
            home = pwd.getpwnam(user).pw_dir if user else os.environ.get("HOME", "/")
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, user=user, cwd=folder,
                                  env={**os.environ, "HOME": home})
            if done.returncode:
                raise RuntimeError(f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stdout}{done.stderr}")

        run(str(bindir / "initdb"), "-D", str(data), "-U", "grader", "-A", "trust", "--no-sync", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start")
        server = cls(f"postgresql+psycopg://grader@127.0.0.1:{port}/postgres", folder)
        server.user = user
        return server

    def new_database(self) -> str:
        """A fresh, empty database on the server; its URL."""
        name = f"gradebook_{secrets.token_hex(6)}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        """Stop a server these tests started (never one they were given)."""
        if self.folder is None:
            return
        subprocess.run([str(binaries() / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w",
                        "stop"], capture_output=True, timeout=60, user=self.user, cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
