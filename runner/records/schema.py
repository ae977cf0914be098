"""The gradebook's schema, managed by Alembic: create it, migrate it, and check it before use.

`grader db upgrade` brings a database to the newest revision; it may run from several processes at
once (each waits for a lock: an advisory lock on PostgreSQL, a lock file next to a SQLite file).
A laptop's SQLite gradebook is upgraded on first use, so that `pip install` and `grader submit` are
all a solver needs; any other database is only checked, and a grader refuses to use one whose schema
is not the newest, with a message that says what to run.
"""
from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_KEY = 4_130_418  # the advisory lock that serialises concurrent upgrades on PostgreSQL
FIRST = "0001"  # the revision of the tables made before migrations existed


class SchemaError(RuntimeError):
    """The database's schema is not the one this grader needs; the message says what to run."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def revision(engine: Engine) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def shown(engine: Engine) -> str:
    """The database's URL with its password hidden."""
    return make_url(str(engine.url)).render_as_string(hide_password=True)


@contextlib.contextmanager
def _upgrade_lock(engine: Engine):
    """Serialise upgrades of one database across processes."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with open(f"{engine.url.database}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
    else:
        yield


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; (revision before, revision after)."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    with _upgrade_lock(engine):
        before = revision(engine)
        config = _config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            if before is None and inspect(conn).has_table("submissions"):
                command.stamp(config, FIRST)  # tables made before migrations existed: the first revision
            command.upgrade(config, "head")
        return before, revision(engine)


def check(engine: Engine) -> None:
    """Raise SchemaError unless the database is at the newest revision."""
    found, newest = revision(engine), head()
    if found == newest:
        return
    where = shown(engine)
    if found is None:
        raise SchemaError(f"the gradebook at {where} has no tables yet: run `grader db upgrade` "
                          f"(with GRADER_DB_URL set to it) before starting a server or worker")
    raise SchemaError(f"the gradebook at {where} has schema revision {found}, this grader needs {newest}: "
                      f"run `grader db upgrade` (with GRADER_DB_URL set to it)")


def prepare(engine: Engine) -> None:
    """Before first use: a SQLite file is upgraded in place; any other database must be up to date."""
    if engine.dialect.name == "sqlite":
        if revision(engine) != head():
            upgrade(engine)
    else:
        check(engine)
