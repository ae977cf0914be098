import os

import pytest

from tests.support.helpers import ROOT

# A PostgreSQL server to run the gradebook's tests on, when given; read before the fixture below hides it.
GIVEN_DB_URL = os.environ.get("GRADER_DB_URL", "")


@pytest.fixture(autouse=True)
def private_gradebook(tmp_path, monkeypatch):
    """Each test gets its own data folder, so nothing touches the user's gradebook."""
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GRADER_DB_URL", raising=False)
    return tmp_path / "data"


@pytest.fixture
def catalogue():
    """The checkout's problems."""
    from runner.problems.catalogue import Catalogue

    return Catalogue(ROOT)


@pytest.fixture(scope="session")
def postgres():
    """The PostgreSQL server named by $GRADER_DB_URL, or one these tests start from Debian's binaries."""
    from tests.support.postgres import Postgres, binaries

    if GIVEN_DB_URL.startswith("postgresql"):
        yield Postgres(GIVEN_DB_URL)
        return
    if binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql")
        pytest.skip("needs Debian's postgresql (apt-get install postgresql) or GRADER_DB_URL=postgresql://...")
    server = Postgres.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty gradebook database: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gradebook.sqlite'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def book(db_url):
    """A gradebook on a fresh database of each kind, its schema made as an operator would."""
    from sqlalchemy import create_engine

    from runner.records import schema
    from runner.records.gradebook import Gradebook

    engine = create_engine(db_url)
    schema.upgrade(engine)
    engine.dispose()
    return Gradebook(db_url)


_DOCKER: dict = {}  # the session's DockerEngine, once prepared


def _uses_docker(item) -> bool:
    """The test asks for the engine: by fixture, or through a backend parameter set to docker."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return "docker_engine" in getattr(item, "fixturenames", ()) or params.get("backend") == "docker"


def pytest_collection_finish(session):
    """When docker tests were collected, start the engine and build the worker image in a thread
    right away (a cold build takes minutes), while the tests before them run."""
    if any(_uses_docker(item) for item in session.items):
        import threading

        import docker  # noqa: F401 - imported here first: a test importing it beside the thread deadlocks the import

        from tests.support.docker_engine import DockerEngine

        def prepare():
            _DOCKER["engine"] = DockerEngine.ensure()

        _DOCKER["thread"] = threading.Thread(target=prepare, name="docker-engine", daemon=True)
        _DOCKER["thread"].start()


@pytest.fixture(scope="session")
def docker_engine():
    """A reachable Docker engine (started here when none runs) with the worker image built; the
    tests that use it skip, with the reason, where no engine can run."""
    from tests.support.docker_engine import DockerEngine

    if "thread" in _DOCKER:
        _DOCKER["thread"].join()
    else:
        _DOCKER["engine"] = DockerEngine.ensure()
    engine = _DOCKER["engine"]
    if engine.reason is not None:
        engine.stop()
        pytest.skip(f"docker backend: {engine.reason}")
    engine.activate()
    yield engine
    engine.stop()


def pytest_sessionfinish(session):
    """Stop an engine started for docker tests that never ran (deselected, or the session stopped early)."""
    if "thread" in _DOCKER:
        _DOCKER["thread"].join(timeout=600)
    if "engine" in _DOCKER:
        _DOCKER["engine"].stop()


def pytest_terminal_summary(terminalreporter):
    """Say why the docker backend's tests were skipped, even under -q (a skip must not pass unseen)."""
    engine = _DOCKER.get("engine")
    if engine is not None and engine.reason is not None:
        terminalreporter.write_line(f"docker backend tests SKIPPED: {engine.reason}", yellow=True)
