"""pytest plugin: the fixtures of public and hidden tests.

    pytest -p runner.grading.plugin TESTS --submission FILE [--backend local|docker|inprocess] [--problem ID]

`submission` proxies calls to the solver's code (in the sandbox unless --backend inprocess);
`reference` is the reference solution, imported here in the trusted process; `problem` is the
parsed problem.toml.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from runner.grading.clock import RUN_MARGIN_S, RunBudget, TrustedClock
from runner.grading.submission import read_submission
from runner.grading.verdicts import OBSERVED
from runner.handles import handle_limits, handles_for
from runner.modules import import_file
from runner.problems.catalogue import Catalogue, ProblemDir, find_problem_for_path
from runner.problems.schema import parse_limit_overrides
from runner.sandbox.backends import SANDBOX_ASSETS, LaunchSpec, get_backend
from runner.sandbox.failures import SolverFailure, SubmissionInvalid
from runner.sandbox.inprocess import InProcessSubmission
from runner.sandbox.pool import SandboxPool, checkout
from runner.sandbox.proxies import InvalidSubmissionProxy, SandboxedSubmission, SubmissionProxy


class GradingContext:
    """What the caller of pytest.main hands to the fixtures that options cannot carry: the
    sandbox pool (and, back, the sandbox's timing)."""

    def __init__(self, pool: SandboxPool | None = None):
        self.pool = pool
        self.timing: dict[str, float] = {}  # filled in at the end: the sandbox's time, for sizing limits
        self.device = ""  # where the problem's handles ran, once the submission is set up
        self.error = ""  # what went wrong setting the submission up, when pytest could not even start
        self.file_lines = 0  # of the graded module, once read: a hidden verdict names no line past them


def pytest_addoption(parser):
    """The grader's command-line options."""
    group = parser.getgroup("grader")
    group.addoption("--submission", default=None, help="the solver's .py or .ipynb (default: solution.py here)")
    group.addoption("--backend", default="inprocess", choices=["local", "docker", "inprocess"],
                    help="where the solver's code runs; inprocess is unsafe and meant for your own code")
    group.addoption("--problem", default=None, help="problem id (default: found from the test's folder)")
    group.addoption("--problem-root", default=None,
                    help="the folder with problems/, solutions/, graders/ of --problem (default: GRADER_ROOT)")
    group.addoption("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="override a [limits] value of problem.toml, e.g. time_s=2")


def pytest_configure(config):
    """Register the points marker and the fixtures."""
    config.addinivalue_line("markers", "points(n): weight of a grading test (default 1)")
    config.pluginmanager.register(GraderFixtures(config), "grader-fixtures")


class GraderFixtures:
    """The fixtures, and the one submission proxy they share for the whole session."""

    def __init__(self, config):
        self.config = config
        self._submission: SubmissionProxy | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._observed: list[SolverFailure] = []  # the current test's (its stash holds the same list)
        context = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, GradingContext)),
                       GradingContext())
        self.pool = context.pool
        self.context = context
        root = config.getoption("problem_root")
        self.problem_dir = Catalogue(Path(root) if root else None).get(config.getoption("problem")) \
            if config.getoption("problem") else None
        self.clock = TrustedClock(observer=lambda failure: self._observed.append(failure))
        self.run_budget: RunBudget | None = None

    def pytest_sessionstart(self, session):
        """Start the sandboxed process before collection so its start-up overlaps ours."""
        if self.problem_dir is not None and self.config.getoption("backend") != "inprocess":
            try:
                self.open_submission()
            except Exception as exc:  # pytest reports it as an internal error: keep the words for the caller
                self.context.error = f"setting up the submission failed: {type(exc).__name__}: {exc}"[:2000]
                raise

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        """From now on, failures the submission reports belong to this test; past the run's
        budget, the test is charged `timeout` without running."""
        self._observed = item.stash.setdefault(OBSERVED, [])
        if self.run_budget is not None:
            self.run_budget.check()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        """The test's own code runs under the trusted clock (sandboxed grading only)."""
        if self.run_budget is None:
            yield
            return
        with self.clock.running(self.test_limit_s):
            yield

    def pytest_collection_modifyitems(self, session, config, items):
        """Without --problem, the problem is the one the first test file belongs to."""
        if self.problem_dir is None and items:
            self.problem_dir = find_problem_for_path(Path(items[0].path))

    def pytest_sessionfinish(self, session):
        """Stop the sandboxed process and remove what was written for it."""
        if isinstance(self._submission, SandboxedSubmission):
            client = self._submission._client
            self.context.timing = {"slowest_call_s": round(client.slowest_call_s, 4),
                                   "calls_s": round(client.spent_s, 4)}
            if client.peak_rss_kb:
                self.context.timing["peak_memory_mb"] = round(client.peak_rss_kb / 1024, 1)
        if self._submission is not None:
            self._submission.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _require_problem(self) -> ProblemDir:
        if self.problem_dir is None:
            raise pytest.UsageError("cannot tell which problem these tests are for: pass --problem ID")
        return self.problem_dir

    def submission_path(self) -> Path:
        """The file under test: --submission, else solution.py in the root folder."""
        given = self.config.getoption("submission")
        return Path(given) if given else self.config.rootpath / "solution.py"

    def open_submission(self) -> SubmissionProxy:
        """The proxy of the solver's module, made once per session."""
        if self._submission is None:
            self._submission = self._make_submission()
            # A copy without the traceback: the test's record keeps it to the end of grading, and
            # the frames of the failed call hold what the sandboxed process sent (up to gigabytes).
            self._submission.observer = lambda failure: self._observed.append(
                failure.again() if isinstance(failure, SolverFailure) else type(failure)(*failure.args))
        return self._submission

    def _make_submission(self) -> SubmissionProxy:
        pdir = self._require_problem()
        meta = pdir.meta
        functions = [f.model_dump() for f in meta.functions]
        try:
            source = read_submission(self.submission_path(), [f.name for f in meta.functions])
        except SubmissionInvalid as exc:
            return InvalidSubmissionProxy(exc.message)
        self.context.file_lines = len(source.code.splitlines())
        backend = self.config.getoption("backend")
        if backend == "inprocess":
            self._tmp = tempfile.TemporaryDirectory(prefix="grader-submission-")
            target = Path(self._tmp.name) / "submission.py"
            target.write_text(source.code, encoding="utf-8")
            handles = handles_for(meta, SANDBOX_ASSETS)[1]
            if handles:
                self.context.device = "cuda" if handles.get("_cuda") else "cpu"
            return InProcessSubmission(target, functions, handles=handles)
        assets, handles = handles_for(meta, SANDBOX_ASSETS)
        cuda = bool(handles.pop("_cuda", False))
        if handles:
            self.context.device = "cuda" if cuda else "cpu"
        limits = meta.limits.model_dump()
        limits |= {name: max(limits[name], need) for name, need in handle_limits(meta).items()}
        limits |= {"preload": [meta.framework]} | self.limit_overrides()
        spec = LaunchSpec(Path(), limits, assets=assets, protected=protected_paths(pdir), cuda=cuda)
        imports = {"problem": meta.key, "allowed": list(meta.imports)}
        client = checkout(self.pool, get_backend(backend), spec, functions, handles, source.code, imports)
        client.pause_clock = self.clock.paused
        # The trusted side's wall clock: each test's own code, and the whole run.
        self.test_limit_s = float(limits["time_s"]) + float(limits["check_s"])
        self.run_budget = RunBudget(float(limits["total_s"]) + float(limits["check_s"]) + RUN_MARGIN_S)
        return SandboxedSubmission(client, [f.name for f in meta.functions])

    def limit_overrides(self) -> dict:
        """The --limit options as overrides of the problem's [limits]."""
        try:
            return parse_limit_overrides(self.config.getoption("limit"), "--limit")
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.fixture(scope="session")
    def problem(self):
        """The problem's parsed problem.toml."""
        return self._require_problem().meta

    @pytest.fixture(scope="session")
    def submission(self):
        """The solver's module; calls run in the sandbox unless --backend inprocess."""
        return self.open_submission()

    @pytest.fixture(scope="session")
    def reference(self):
        """The reference solution, imported here in the trusted process (skipped where absent)."""
        path = self._require_problem().solution_file
        if not path.is_file():
            pytest.skip("the reference solution is not available here")
        return import_file(path, f"reference_{self.problem_dir.key.replace('-', '_')}")


def protected_paths(pdir: ProblemDir) -> list[Path]:
    """What the sandbox must never show: the references, the hidden tests, the gradebook."""
    from runner.settings import current

    return [pdir.root / "solutions", pdir.root / "graders", current().gradebook_dir]
