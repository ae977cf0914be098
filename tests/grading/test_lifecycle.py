"""The one life cycle (store -> grade -> result, or failed) that the CLI, notebook and queue share."""
import pytest

from runner.grading import lifecycle
from runner.grading.lifecycle import grade_stored, store_submission, submit
from runner.grading.pipeline import GradingError
from runner.sandbox.backends import SandboxUnavailable
from tests.support.helpers import write


def no_sandbox(monkeypatch):
    def refuse(self):
        raise SandboxUnavailable("bubblewrap is not installed")
    monkeypatch.setattr("runner.sandbox.backends.LocalBackend.check", refuse)


def test_a_grader_failure_is_stored_then_raised(book, catalogue, monkeypatch):
    pdir = catalogue.get("413")
    no_sandbox(monkeypatch)
    sub_id = store_submission(book, pdir, pdir.solution_file, "local")
    with pytest.raises(GradingError):
        grade_stored(book, sub_id, pdir, pdir.solution_file, "local")
    row = book.get(sub_id)
    assert row.status == "failed" and "bubblewrap" in row.error and row.attempts == 1


def test_an_unexpected_exception_fails_the_submission_too(book, catalogue, monkeypatch):
    pdir = catalogue.get("413")
    monkeypatch.setattr(lifecycle, "grade", lambda *a, **k: {}["boom"])
    sub_id = store_submission(book, pdir, pdir.solution_file, "local")
    with pytest.raises(KeyError):
        grade_stored(book, sub_id, pdir, pdir.solution_file, "local")
    row = book.get(sub_id)
    assert row.status == "failed" and "KeyError" in row.error


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_an_interrupt_fails_a_one_shot_submission(book, catalogue, monkeypatch):
    pdir = catalogue.get("413")
    monkeypatch.setattr(lifecycle, "grade", interrupt)
    sub_id = store_submission(book, pdir, pdir.solution_file, "local")
    with pytest.raises(KeyboardInterrupt):
        grade_stored(book, sub_id, pdir, pdir.solution_file, "local")
    assert book.get(sub_id).status == "failed" and "interrupted" in book.get(sub_id).error


def test_an_interrupted_queue_job_is_left_for_redelivery(book, catalogue, monkeypatch):
    pdir = catalogue.get("413")
    monkeypatch.setattr(lifecycle, "grade", interrupt)
    sub_id = store_submission(book, pdir, pdir.solution_file, "queue")
    with pytest.raises(KeyboardInterrupt):
        grade_stored(book, sub_id, pdir, pdir.solution_file, "local", redelivered_on_interrupt=True)
    assert book.get(sub_id).status == "grading"


def test_a_redone_job_keeps_the_first_result(book, catalogue, tmp_path):
    pdir = catalogue.get("413")
    bad = write(tmp_path / "solution.py", "def forward_process(:\n")
    first = submit(pdir, bad, book, limits={"time_s": 5})
    assert first.score == 0 and first.submission_id
    again = grade_stored(book, first.submission_id, pdir, bad, "local", limits={"time_s": 5})
    assert again is None
    (row,) = book.history()
    assert row.status == "invalid" and row.attempts == 1 and row.result() == first
