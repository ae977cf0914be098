"""The gradebook's schema under Alembic, on SQLite and PostgreSQL: the migrations make exactly the
models' tables, concurrent upgrades are safe, and servers and workers refuse an outdated schema."""
import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Integer, create_engine, inspect, text

from runner.records import schema
from runner.records.gradebook import Base, Gradebook
from tests.support.helpers import ROOT


def cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_the_migrations_make_exactly_the_models_tables(db_url):
    engine = create_engine(db_url)
    assert schema.upgrade(engine) == (None, schema.head())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"the models and the migrations disagree: {diff}"
    assert schema.upgrade(engine) == (schema.head(), schema.head())  # a second upgrade changes nothing
    engine.dispose()


def test_concurrent_upgrades_of_an_empty_database_all_succeed(db_url, tmp_path):
    env = {**os.environ, "GRADER_DATA_DIR": str(tmp_path / "data")}
    procs = [cli("db", "upgrade", "--db", db_url, env=env) for _ in range(4)]
    outs = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in outs), outs
    said = sorted(out.split(": ", 1)[1].strip() for _, out, _ in outs)
    assert said == [f"already at revision {schema.head()}"] * 3 + [f"empty -> revision {schema.head()}"]
    book = Gradebook(db_url)
    assert book.add("413-forward-process", "s.py", b"x", "0" * 64, "local") == 1


def test_servers_and_workers_refuse_a_database_without_the_schema(postgres, tmp_path):
    url = postgres.new_database()
    env = {**os.environ, "GRADER_DATA_DIR": str(tmp_path / "data"), "GRADER_DB_URL": url}
    for command in (("worker", "--queues", "cpu"), ("serve", "--port", "9")):
        proc = cli(*command, env=env)
        code, (out, err) = proc.wait(timeout=120), proc.communicate()
        assert code == 2 and "has no tables yet: run `grader db upgrade`" in err, (command, out, err)
    with pytest.raises(schema.SchemaError, match="grader db upgrade"):
        Gradebook(url)


def test_an_outdated_revision_is_named_with_what_to_run(postgres, tmp_path):
    url = postgres.new_database()
    engine = create_engine(url)
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old0'"))
    status = subprocess.run([sys.executable, "-m", "runner.cli", "db", "status", "--db", url], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 2
    assert f"has schema revision old0, this grader needs {schema.head()}: run `grader db upgrade`" in status.stderr
    assert "grader@" in status.stderr and url.split("@")[1] in status.stderr
    engine.dispose()


def test_a_sqlite_gradebook_from_before_migrations_is_taken_over(tmp_path):
    """Tables made without Alembic (no version row) are the first revision: stamped, then upgraded."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO submissions (id, problem, user, filename, content, size, sha256, backend, "
                          "status, attempts, created_at) VALUES (7, '413', 'a', 'f.py', x'00', 1, 's', 'local', "
                          "'graded', 1, '2026-01-01 00:00:00')"))
    assert schema.revision(engine) is None
    book = Gradebook(url)  # a laptop's SQLite gradebook is brought up to date on first use
    assert schema.revision(book.engine) == schema.head()
    assert book.get(7).problem == "413", "the old submissions are kept"
    assert isinstance(inspect(book.engine).get_columns("submissions")[0]["type"], Integer)
    engine.dispose()
