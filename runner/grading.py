"""Grading: run a problem's public and hidden tests against one submission and score the verdicts.

The tests run here, in the trusted process; only the solver's functions run in the sandbox.
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path

import pytest

from .catalogue import ProblemDir
from .gradebook import Gradebook
from .results import Result, TestResult
from .rpc import SolverFailure
from .sandbox import SandboxUnavailable, get_backend
from .submission import MAX_BYTES, InvalidSubmission, read_submission


class GradingError(RuntimeError):
    """The grader itself could not grade (broken tests, no sandbox); never the solver's fault."""


class VerdictCollector:
    """pytest plugin that turns each test's outcome into a verdict."""

    def __init__(self, hidden_root: Path):
        self.hidden_root = hidden_root.resolve()
        self.tests: list[TestResult] = []
        self.problems: list[str] = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.problems.append(f"collecting {report.nodeid}: {report.longreprtext[-1500:]}")

    def pytest_runtest_setup(self, item):
        SolverFailure.observed.clear()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if call.when == "call" and SolverFailure.observed and not isinstance(
                call.excinfo.value if call.excinfo else None, SolverFailure):
            # The test swallowed a timeout, crash or invalid submission: that is the verdict.
            self.record(item, SolverFailure.observed[0])
            return
        if call.when == "setup" and report.failed:
            exc = call.excinfo.value if call.excinfo else None
            if isinstance(exc, SolverFailure):
                self.record(item, exc)
            else:
                self.problems.append(f"setting up {item.nodeid}: {report.longreprtext[-1500:]}")
        elif call.when == "setup" and report.skipped:
            self.add(item, "skipped", "", points=0)
        elif call.when == "call":
            self.record(item, call.excinfo.value if call.excinfo else None, skipped=report.skipped)

    def hidden(self, item) -> bool:
        return Path(item.path).resolve().is_relative_to(self.hidden_root)

    def record(self, item, exc: BaseException | None, skipped: bool = False) -> None:
        hidden = self.hidden(item)
        if skipped:
            self.add(item, "skipped", "", points=0)
        elif exc is None:
            self.add(item, "passed", "")
        elif isinstance(exc, SolverFailure):
            message = exc.message
            if exc.verdict == "error" and hidden:
                # The solver's own message could echo the hidden inputs: keep type and place only.
                message = message.split(":", 1)[0]
            self.add(item, exc.verdict, "\n".join(p for p in (message, exc.detail) if p))
        elif isinstance(exc, AssertionError):
            self.add(item, "failed", str(exc).strip() or "the result is wrong")
        else:
            # The test raised while checking the result: the result had an unexpected form.
            text = f"{type(exc).__name__}" if hidden else f"{type(exc).__name__}: {exc}"
            self.add(item, "failed", f"the result has an unexpected form ({text})")

    def add(self, item, status: str, message: str, points: float | None = None) -> None:
        marker = item.get_closest_marker("points")
        weight = float(marker.args[0]) if marker and marker.args else 1.0
        weight = weight if points is None else points
        self.tests.append(TestResult(
            name=item.name, status=status, message=message[:2000],
            score=weight if status == "passed" else 0.0, max_score=weight,
            visibility="hidden" if self.hidden(item) else "visible"))


def run_tests(pdir: ProblemDir, submission: Path, backend: str, paths: list[Path],
              limits: dict | None = None) -> list[TestResult]:
    collector = VerdictCollector(pdir.grader_dir)
    overrides = [f"--limit={k}={v}" for k, v in (limits or {}).items()]
    args = [str(p) for p in paths if p.exists()] + overrides + [
        "-p", "runner.pytest_plugin", "--submission", str(submission), "--backend", backend,
        "--problem", pdir.key, "--assert=plain", "--import-mode=importlib", "-p", "no:cacheprovider",
        "-p", "no:terminal", "-o", "addopts=", "--rootdir", str(pdir.root), "-o", "python_files=test_*.py",
    ]
    if backend != "inprocess":
        try:  # never fall back to unsandboxed grading: say what is missing instead
            get_backend(backend).check()
        except SandboxUnavailable as exc:
            raise GradingError(str(exc)) from None
    code = pytest.main(args, plugins=[collector])
    if collector.problems:
        raise GradingError("the tests could not run:\n" + "\n".join(collector.problems))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not collector.tests:
        raise GradingError(f"pytest ended with {code!r} and {len(collector.tests)} results")
    return collector.tests


def grade(pdir: ProblemDir, submission: Path, backend: str = "local", *, unsafe_inprocess: bool = False,
          hidden: bool = True, limits: dict | None = None) -> Result:
    """Grade one file. `backend` is local or docker; in-process only when asked for by name.

    `limits` overrides values of the problem's [limits] table (tests use short time limits)."""
    if backend == "inprocess" and not unsafe_inprocess:
        raise GradingError("in-process grading runs the code unsandboxed: ask for it with unsafe_inprocess=True")
    start = time.perf_counter()
    paths = [pdir.public_tests] + ([pdir.grader_dir] if hidden else [])
    tests = run_tests(pdir, submission, backend, paths, limits)
    try:
        sha = read_submission(submission).sha256
    except InvalidSubmission:
        sha = ""
    return Result(problem=pdir.key, score=sum(t.score for t in tests), max_score=sum(t.max_score for t in tests),
                  tests=tests, backend=backend, duration_s=time.perf_counter() - start, sha256=sha)


def submit(pdir: ProblemDir, submission: Path, gradebook: Gradebook, backend: str = "local",
           user: str | None = None, limits: dict | None = None) -> Result:
    """Store the submission, grade it, store the result. A grader failure is stored, then raised."""
    import hashlib

    path = Path(submission)
    raw = path.read_bytes() if path.is_file() else b""
    sub_id = gradebook.add(pdir.key, path.name, raw[:MAX_BYTES], hashlib.sha256(raw).hexdigest(), backend,
                           user=user, size=len(raw))
    gradebook.mark_grading(sub_id)
    try:
        result = grade(pdir, path, backend, limits=limits)
    except BaseException as exc:
        gradebook.mark_failed(sub_id, "".join(traceback.format_exception(exc)))
        raise
    result.submission_id = sub_id
    gradebook.store_result(sub_id, result)
    return result
