"""Grading: run a problem's public and hidden tests against one submission and score the verdicts.

The tests run here, in the trusted process; only the solver's functions run in the sandbox.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from runner.handles import GPUUnavailable, HandleUnavailable, check_handles, handle_device
from runner.grading.plugin import GradingContext
from runner.grading.submission import digest
from runner.grading.verdicts import VerdictCollector
from runner.problems.catalogue import ProblemDir
from runner.records.results import Result, TestResult
from runner.sandbox.backends import SandboxUnavailable, get_backend
from runner.sandbox.pool import SandboxPool

log = logging.getLogger(__name__)


class GradingError(RuntimeError):
    """The grader itself could not grade (broken tests, no sandbox); never the solver's fault."""


def run_tests(pdir: ProblemDir, submission: Path, backend: str, paths: list[Path],
              limits: dict | None = None, pool: SandboxPool | None = None,
              first_failure: bool = False) -> tuple[list[TestResult], GradingContext]:
    """Run the test files in `paths` through pytest with the grader's plugin: one result per test,
    and the run's context: the time the solver's code took in the sandbox (its slowest call, all
    calls) and the device the problem's handles ran on.
    `first_failure` stops at the first test that fails (the tests after it get no result)."""
    context = GradingContext(pool)
    collector = VerdictCollector(pdir.grader_dir, context)
    overrides = [f"--limit={k}={v}" for k, v in (limits or {}).items()]
    args = [str(p) for p in paths if p.exists()] + overrides + [
        "-p", "runner.grading.plugin", "--submission", str(submission), "--backend", backend,
        "--problem", pdir.key, "--problem-root", str(pdir.root), "--assert=plain", "--import-mode=importlib",
        "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:threadexception",
        "-p", "no:terminal", "-o", "addopts=", "--rootdir", str(pdir.root), "-o", "python_files=test_*.py",
    ] + (["-x"] if first_failure else [])
    if backend != "inprocess":
        try:  # never fall back to unsandboxed grading: say what is missing instead
            get_backend(backend).check()
        except SandboxUnavailable as exc:
            raise GradingError(str(exc)) from None
    try:  # never move a problem meant for the GPU to the CPU unasked; a model where the settings say
        handle_device(pdir.meta)
        check_handles(pdir.meta)
    except (GPUUnavailable, HandleUnavailable) as exc:
        raise GradingError(str(exc)) from None
    code = pytest.main(args, plugins=[collector, context])
    if collector.problems:
        raise GradingError("the tests could not run:\n" + "\n".join(collector.problems))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not collector.tests:
        raise GradingError(context.error or f"pytest ended with {code!r} and {len(collector.tests)} results")
    return collector.tests, context


def grade(pdir: ProblemDir, submission: Path, backend: str = "local", *, unsafe_inprocess: bool = False,
          hidden: bool = True, public: bool = True, limits: dict | None = None,
          pool: SandboxPool | None = None, first_failure: bool = False) -> Result:
    """Grade one file. `backend` is local or docker; in-process only when asked for by name.

    `hidden` / `public` choose the test files (the hidden tests alone: whether a mistake is caught
    where the solver cannot see it);
    `limits` overrides values of the problem's [limits] table (tests use short time limits);
    `pool` lends an already started sandboxed process (long-lived graders keep one);
    `first_failure` stops at the first failing test (mutation analysis only asks whether one fails;
    the score of such a result is not the submission's)."""
    if backend == "inprocess" and not unsafe_inprocess:
        raise GradingError("in-process grading runs the code unsandboxed: ask for it with unsafe_inprocess=True")
    start = time.perf_counter()
    log.info("grading %s on %s (%s backend)", submission, pdir.key, backend)
    paths = ([pdir.public_tests] if public else []) + ([pdir.grader_dir] if hidden else [])
    tests, context = run_tests(pdir, submission, backend, paths, limits, pool, first_failure)
    sha = digest(Path(submission).read_bytes()) if Path(submission).is_file() else ""  # also of an invalid file
    max_score = sum(t.max_score for t in tests)
    invalid = one_invalid_verdict(tests)
    result = Result(problem=pdir.key, score=0.0 if invalid else sum(t.score for t in tests), max_score=max_score,
                    tests=[invalid] if invalid else tests, status="invalid" if invalid else "graded",
                    backend=backend, duration_s=time.perf_counter() - start, sha256=sha, timing=context.timing,
                    device=context.device)
    log.info("graded %s on %s: %g / %g in %.1f s", submission, pdir.key, result.score, result.max_score,
             result.duration_s)
    return result


def one_invalid_verdict(tests: list[TestResult]) -> TestResult | None:
    """One entry for a file that could not be loaded at all (every test `invalid` for the same
    reason: its type, encoding, syntax, a missing function, its import), instead of one per test."""
    if not tests or any(t.status != "invalid" for t in tests) or len({t.message for t in tests}) != 1:
        return None
    return TestResult(name="loading the submission", status="invalid", message=tests[0].message, score=0.0,
                      max_score=sum(t.max_score for t in tests), visibility="visible")
