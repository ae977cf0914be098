"""Every submission that reaches the grader is stored before grading, its result after; a grader
failure leaves it marked, never lost."""
import pytest

from tests.support.helpers import write
from runner.records.gradebook import Gradebook
from runner.grading.lifecycle import submit
from runner.grading.pipeline import GradingError
from runner.sandbox.backends import SandboxUnavailable


def test_stored_before_and_after(book, catalogue):
    pdir = catalogue.get("413")
    result = submit(pdir, pdir.solution_file, book)
    row = book.get(result.submission_id)
    assert row.status == "graded" and row.score == result.score
    assert row.content == pdir.solution_file.read_bytes()
    assert row.result().tests == result.tests


def test_grader_failure_is_recorded(book, catalogue, monkeypatch):
    pdir = catalogue.get("413")
    monkeypatch.setattr("runner.sandbox.backends.LocalBackend.check", lambda self: (_ for _ in ()).throw(
        SandboxUnavailable("bubblewrap is not installed")))
    with pytest.raises(GradingError, match="bubblewrap"):
        submit(pdir, pdir.solution_file, book)
    (row,) = book.history()
    assert row.status == "failed" and "bubblewrap" in row.error
    assert row.content == pdir.solution_file.read_bytes()


def test_invalid_submission_is_stored_with_its_result(book, catalogue, tmp_path):
    path = write(tmp_path / "bad.py", "def (:\n")
    result = submit(catalogue.get("413"), path, book)
    row = book.get(result.submission_id)
    assert row.status == "invalid" and row.score == 0 and row.content == b"def (:\n"


def test_one_engine_per_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.sqlite'}"
    assert Gradebook(url).engine is Gradebook(url).engine
    assert Gradebook(url).engine is not Gradebook(f"sqlite:///{tmp_path / 'other.sqlite'}").engine
