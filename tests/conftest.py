import pytest

from tests.support.helpers import ROOT


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
