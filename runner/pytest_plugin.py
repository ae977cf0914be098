"""pytest plugin: the fixtures of public and hidden tests.

    pytest -p runner.pytest_plugin TESTS --submission FILE [--backend local|docker|inprocess] [--problem ID]

`submission` proxies calls to the solver's code (in the sandbox unless --backend inprocess);
`reference` is the reference solution, imported here in the trusted process; `problem` is the
parsed problem.toml.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from .assets import handles_for
from .catalogue import Catalogue, ProblemDir, find_problem_for_path, import_file
from .rpc import InProcessSubmission, SandboxedSubmission, checkout_worker
from .sandbox import LaunchSpec, get_backend
from .schema import parse_limit_overrides
from .submission import InvalidSubmission, read_submission
from .rpc import SubmissionInvalid


def pytest_addoption(parser):
    group = parser.getgroup("grader")
    group.addoption("--submission", default=None, help="the solver's .py or .ipynb (default: solution.py here)")
    group.addoption("--backend", default="inprocess", choices=["local", "docker", "inprocess"],
                    help="where the solver's code runs; inprocess is unsafe and meant for your own code")
    group.addoption("--problem", default=None, help="problem id (default: found from the test's folder)")
    group.addoption("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="override a [limits] value of problem.toml, e.g. time_s=2")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): weight of a grading test (default 1)")
    config.pluginmanager.register(GraderFixtures(config), "grader-fixtures")


class GraderFixtures:
    def __init__(self, config):
        self.config = config
        self.problem_dir: ProblemDir | None = None
        self._submission = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.problem_dir = Catalogue().get(config.getoption("problem")) if config.getoption("problem") else None

    def pytest_sessionstart(self, session):
        # Start the sandboxed worker before collection so its start-up overlaps ours.
        if self.problem_dir is not None and self.config.getoption("backend") != "inprocess":
            self.open_submission()

    def pytest_collection_modifyitems(self, session, config, items):
        if self.problem_dir is None and items:
            self.problem_dir = find_problem_for_path(Path(items[0].path))

    def pytest_sessionfinish(self, session):
        if self._submission is not None:
            self._submission.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _require_problem(self) -> ProblemDir:
        if self.problem_dir is None:
            raise pytest.UsageError("cannot tell which problem these tests are for: pass --problem ID")
        return self.problem_dir

    def submission_path(self) -> Path:
        given = self.config.getoption("submission")
        return Path(given) if given else self.config.rootpath / "solution.py"

    def open_submission(self):
        if self._submission is not None:
            return self._submission
        pdir = self._require_problem()
        meta = pdir.meta
        functions = [f.model_dump() for f in meta.functions]
        try:
            source = read_submission(self.submission_path(), [f.name for f in meta.functions])
        except InvalidSubmission as exc:
            self._submission = _Invalid(str(exc))
            return self._submission
        backend = self.config.getoption("backend")
        if backend == "inprocess":
            self._tmp = tempfile.TemporaryDirectory(prefix="grader-submission-")
            target = Path(self._tmp.name) / "submission.py"
            target.write_text(source.code, encoding="utf-8")
            self._submission = InProcessSubmission(target, functions, handles=handles_for(meta)[1])
            return self._submission
        assets, handles = handles_for(meta)
        cuda = bool(handles.pop("_cuda", False))
        limits = meta.limits.model_dump() | {"preload": [meta.framework]} | self.limit_overrides()
        spec = LaunchSpec(Path(), limits, assets=assets, protected=protected_paths(pdir), cuda=cuda)
        client = checkout_worker(get_backend(backend), spec, functions, handles, source.code)
        self._submission = SandboxedSubmission(client, [f.name for f in meta.functions])
        return self._submission

    def limit_overrides(self) -> dict:
        try:
            return parse_limit_overrides(self.config.getoption("limit"), "--limit")
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.fixture(scope="session")
    def problem(self):
        return self._require_problem().meta

    @pytest.fixture(scope="session")
    def submission(self):
        return self.open_submission()

    @pytest.fixture(scope="session")
    def reference(self):
        path = self._require_problem().solution_file
        if not path.is_file():
            pytest.skip("the reference solution is not available here")
        return import_file(path, f"reference_{self.problem_dir.key.replace('-', '_')}")


class _Invalid:
    """Stands in for a submission that failed the static checks: every use is `invalid`."""

    def __init__(self, message: str):
        self.message = message

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise SubmissionInvalid(self.message)

    def close(self) -> None:
        pass


def protected_paths(pdir: ProblemDir) -> list[Path]:
    from .gradebook import default_data_dir

    return [pdir.root / "solutions", pdir.root / "graders", default_data_dir()]
