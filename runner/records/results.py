"""The result record of a graded submission, and its exports to other platforms' formats."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Verdict = Literal["passed", "failed", "error", "timeout", "memory", "crashed", "invalid", "skipped"]


class TestResult(BaseModel):
    """One test's verdict, message and points."""

    __test__ = False  # not a pytest test class
    name: str
    status: Verdict
    message: str = ""
    score: float
    max_score: float
    visibility: Literal["visible", "hidden"]


class Result(BaseModel):
    """A graded submission: the score and every test's result."""

    problem: str
    submission_id: int | None = None
    score: float
    max_score: float
    tests: list[TestResult]
    backend: str
    duration_s: float
    sha256: str = ""
    timing: dict[str, float] = {}  # the solver's time in the sandbox: slowest_call_s, calls_s (and its process's peak_memory_mb)
    device: str = ""  # where the problem's handles ran ("cpu", "cuda"); empty for a problem without any
    # "invalid": the file could not be graded at all (one entry in `tests` says why)
    status: Literal["graded", "invalid"] = "graded"

    @property
    def counts(self) -> dict[str, int]:
        """How many tests ended with each verdict."""
        out: dict[str, int] = {}
        for t in self.tests:
            out[t.status] = out.get(t.status, 0) + 1
        return out


def to_gradescope(result: Result) -> dict:
    """Gradescope autograder `results.json`."""
    return {
        "score": result.score,
        "execution_time": round(result.duration_s, 3),
        "tests": [
            {"name": t.name, "score": t.score, "max_score": t.max_score,
             "status": "passed" if t.status == "passed" else "failed",
             "output": f"{t.status}: {t.message}".strip(": "),
             "visibility": "visible" if t.visibility == "visible" else "after_published"}
            for t in result.tests if t.status != "skipped"
        ],
    }


def to_exercism(result: Result) -> dict:
    """Exercism test-runner `results.json` (version 2)."""
    tests = [
        {"name": t.name,
         "status": "pass" if t.status == "passed" else ("fail" if t.status == "failed" else "error"),
         "message": t.message or None}
        for t in result.tests if t.status != "skipped"
    ]
    everything_invalid = tests and all(t.status == "invalid" for t in result.tests)
    status = "error" if everything_invalid else ("pass" if all(t["status"] == "pass" for t in tests) else "fail")
    out = {"version": 2, "status": status, "tests": tests}
    if everything_invalid:
        out["message"] = result.tests[0].message
    return out
