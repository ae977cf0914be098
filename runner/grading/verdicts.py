"""From pytest outcomes to verdicts: one `TestResult` per test, scored by its `points` marker.

The `submission` proxy files every failure other than the solver's own exception in the current
test's stash (`OBSERVED`), so a test that catches exceptions (to check that bad input raises)
cannot turn a timeout, crash or invalid submission into a pass.
"""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runner.records.results import TestResult
from runner.sandbox.backends import SandboxUnavailable
from runner.sandbox.failures import SolverFailure

if TYPE_CHECKING:
    from runner.grading.plugin import GradingContext

# Failures that crossed the submission proxy during one test, in the order they happened.
OBSERVED = pytest.StashKey[list]()

# What a hidden test may say of a failure: a fixed text per verdict. Anything the solver's code
# can shape (exception messages and class names, function names, exit statuses, import names,
# anything in a reply) could carry the hidden inputs out, so only one line number is added: the
# innermost of its own file, and only one that exists there. (The sandboxed process reports the
# frames, and code objects can claim any line: a chain of them spelled 130 bytes of inputs. One
# line bounds that to log2(lines in the file) bits per failing test.) Timeouts are the exception:
# their texts are the grader's own.
HIDDEN_TEXT = {
    "error": "your code raised an exception",
    "timeout": "your code ran past its time limit (the per-call limit, or the submission's total budget)",
    "memory": "your code ran past its memory limit",
    "crashed": "the process running your code died (a crash, an exit, or a return value that cannot be read)",
    "invalid": "your submission could not be loaded or used what it may not; the public tests say why",
}


def author_message(exc: AssertionError) -> str:
    """The test author's own message, without pytest's explanation of the assertion (which shows
    the values compared, and so the solver's)."""
    text = str(exc)
    cut = text.find("\nassert ")
    return text[:cut] if cut >= 0 else ("" if text.startswith("assert ") else text)


def hidden_failure_text(exc: SolverFailure, file_lines: int) -> str:
    """The verdict message of a hidden test: the verdict's fixed text and the line of the solver's
    file (of `file_lines`) where it happened. A timeout keeps its message: only the grader raises
    one, naming which of its limits ran out."""
    if exc.verdict == "timeout":
        return exc.message
    text = HIDDEN_TEXT.get(exc.verdict, HIDDEN_TEXT["error"])
    if exc.lines and 1 <= exc.lines[-1] <= file_lines:
        text += f" (at line {exc.lines[-1]} of your file)"
    return text


class VerdictCollector:
    """pytest plugin that turns each test's outcome into a verdict."""

    def __init__(self, hidden_root: Path, context: GradingContext | None = None):
        self.hidden_root = hidden_root.resolve()
        self.context = context  # the run's: how many lines the graded module has, once it is read
        self.tests: list[TestResult] = []
        self.problems: list[str] = []  # the tests' own faults: grading cannot go on

    def pytest_configure(self, config):
        """Tracebacks in Python's own format: pytest's default re-parses the test's source for every
        failure (about 0.2 s each), and the verdicts never show those tracebacks to a solver."""
        config.option.tbstyle = "native"

    def pytest_collectreport(self, report):
        """A test file that cannot be collected is the grader's problem, never the solver's."""
        if report.failed:
            self.problems.append(f"collecting {report.nodeid}: {report.longreprtext[-1500:]}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        """Give the test its list of observed failures before its fixtures run."""
        item.stash.setdefault(OBSERVED, [])

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Record the verdict of the setup and call phases."""
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None:
            # The failed test's frames hold what the solver returned; the report keeps text only,
            # so let those values go now rather than pile up over the tests.
            traceback.clear_frames(call.excinfo.tb)
        observed = item.stash.get(OBSERVED, [])
        if call.when == "call" and observed and not isinstance(
                call.excinfo.value if call.excinfo else None, (SolverFailure, SandboxUnavailable)):
            # The test swallowed a timeout, crash or invalid submission: that is the verdict.
            self.record(item, observed[0])
            return
        if call.when == "setup" and report.failed:
            exc = call.excinfo.value if call.excinfo else None
            if isinstance(exc, (SolverFailure, SandboxUnavailable)):
                self.record(item, exc)
            else:
                self.problems.append(f"setting up {item.nodeid}: {report.longreprtext[-1500:]}")
        elif call.when == "setup" and report.skipped:
            # a skip mark's reason: the grader's own text (e.g. which model the test needs)
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            self.add(item, "skipped", str(reason).removeprefix("Skipped: "), points=0)
        elif call.when == "call":
            self.record(item, call.excinfo.value if call.excinfo else None, skipped=report.skipped)

    def hidden(self, item) -> bool:
        """Whether the test is one of the hidden ones (under graders/)."""
        return Path(item.path).resolve().is_relative_to(self.hidden_root)

    def record(self, item, exc: BaseException | None, skipped: bool = False) -> None:
        """The verdict for how a test ended; hidden tests never show text the solver can shape."""
        hidden = self.hidden(item)
        if skipped:
            self.add(item, "skipped", "", points=0)
        elif exc is None:
            self.add(item, "passed", "")
        elif isinstance(exc, SandboxUnavailable):
            self.problems.append(str(exc))  # the grader's failure: no verdict against the solver
        elif isinstance(exc, SolverFailure):
            full = "\n".join(p for p in (exc.message, exc.detail) if p)
            lines = self.context.file_lines if self.context else 0
            self.add(item, exc.verdict, hidden_failure_text(exc, lines) if hidden and not exc.at_load else full)
        elif isinstance(exc, AssertionError):
            # runner.testing's checks carry a second text without the solver's values for hidden tests
            text = (getattr(exc, "hidden_message", None) or author_message(exc)) if hidden else str(exc)
            self.add(item, "failed", text.strip() or "the result is wrong")
        else:
            # The test raised while checking the result: the result had an unexpected form.
            text = f"{type(exc).__name__}" if hidden else f"{type(exc).__name__}: {exc}"
            self.add(item, "failed", f"the result has an unexpected form ({text})")

    def add(self, item, status: str, message: str, points: float | None = None) -> None:
        """Append the test's result, weighted by its `points` marker (default 1)."""
        marker = item.get_closest_marker("points")
        weight = float(marker.args[0]) if marker and marker.args else 1.0
        weight = weight if points is None else points
        self.tests.append(TestResult(
            name=item.name, status=status, message=message[:2000],
            score=weight if status == "passed" else 0.0, max_score=weight,
            visibility="hidden" if self.hidden(item) else "visible"))
