"""Grading: run a problem's public and hidden tests against one submission and score the verdicts.

The tests run here, in the trusted process; only the solver's functions run in the sandbox.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from runner.grading.plugin import GradingContext
from runner.grading.submission import read_submission
from runner.grading.verdicts import VerdictCollector
from runner.problems.catalogue import ProblemDir
from runner.records.results import Result, TestResult
from runner.sandbox.backends import SandboxUnavailable, get_backend
from runner.sandbox.failures import SubmissionInvalid
from runner.sandbox.pool import SandboxPool

log = logging.getLogger(__name__)


class GradingError(RuntimeError):
    """The grader itself could not grade (broken tests, no sandbox); never the solver's fault."""


def run_tests(pdir: ProblemDir, submission: Path, backend: str, paths: list[Path],
              limits: dict | None = None, pool: SandboxPool | None = None) -> list[TestResult]:
    """Run the test files in `paths` through pytest with the grader's plugin; one result per test."""
    collector = VerdictCollector(pdir.grader_dir)
    overrides = [f"--limit={k}={v}" for k, v in (limits or {}).items()]
    args = [str(p) for p in paths if p.exists()] + overrides + [
        "-p", "runner.grading.plugin", "--submission", str(submission), "--backend", backend,
        "--problem", pdir.key, "--problem-root", str(pdir.root), "--assert=plain", "--import-mode=importlib",
        "-p", "no:cacheprovider",
        "-p", "no:terminal", "-o", "addopts=", "--rootdir", str(pdir.root), "-o", "python_files=test_*.py",
    ]
    if backend != "inprocess":
        try:  # never fall back to unsandboxed grading: say what is missing instead
            get_backend(backend).check()
        except SandboxUnavailable as exc:
            raise GradingError(str(exc)) from None
    code = pytest.main(args, plugins=[collector, GradingContext(pool)])
    if collector.problems:
        raise GradingError("the tests could not run:\n" + "\n".join(collector.problems))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not collector.tests:
        raise GradingError(f"pytest ended with {code!r} and {len(collector.tests)} results")
    return collector.tests


def grade(pdir: ProblemDir, submission: Path, backend: str = "local", *, unsafe_inprocess: bool = False,
          hidden: bool = True, limits: dict | None = None, pool: SandboxPool | None = None) -> Result:
    """Grade one file. `backend` is local or docker; in-process only when asked for by name.

    `limits` overrides values of the problem's [limits] table (tests use short time limits);
    `pool` lends an already started sandboxed process (long-lived graders keep one)."""
    if backend == "inprocess" and not unsafe_inprocess:
        raise GradingError("in-process grading runs the code unsandboxed: ask for it with unsafe_inprocess=True")
    start = time.perf_counter()
    log.info("grading %s on %s (%s backend)", submission, pdir.key, backend)
    paths = [pdir.public_tests] + ([pdir.grader_dir] if hidden else [])
    tests = run_tests(pdir, submission, backend, paths, limits, pool)
    try:
        sha = read_submission(submission).sha256
    except SubmissionInvalid:
        sha = ""
    result = Result(problem=pdir.key, score=sum(t.score for t in tests), max_score=sum(t.max_score for t in tests),
                    tests=tests, backend=backend, duration_s=time.perf_counter() - start, sha256=sha)
    log.info("graded %s on %s: %g / %g in %.1f s", submission, pdir.key, result.score, result.max_score,
             result.duration_s)
    return result
