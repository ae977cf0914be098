"""Alternative solutions (graders/NNN-slug/alternatives/*.py) are graded through the sandbox like the
reference; each must score full marks, and a problem without any fails the check."""
import pytest

from runner.authoring.alternatives import MISSING, alternative_files, alternatives_dir, check_alternatives
from runner.authoring.scaffold import scaffold_problem
from runner.authoring.validation import Report
from runner.grading.pipeline import grade
from runner.problems.catalogue import Catalogue
from runner.sandbox.pool import SandboxPool
from tests.support.helpers import write

TRIPLES = '''import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    return 3 * x
'''


@pytest.fixture
def pdir(tmp_path):
    """A scaffolded problem: `solve(x) = 2 * x`, with the alternatives add.py and loop.py."""
    scaffold_problem(tmp_path, 900, "toy-problem", "Toy")
    return Catalogue(tmp_path).get("900")


@pytest.fixture(scope="module")
def pool():
    pool = SandboxPool()
    yield pool
    pool.close()


def run_check(pdir, pool) -> Report:
    report = Report(pdir.key)
    check_alternatives(pdir, lambda path: grade(pdir, path, "local", pool=pool), report.add)
    return report


def test_each_alternative_is_graded_and_a_wrong_one_fails_with_its_tests(pdir, pool):
    write(alternatives_dir(pdir) / "triples.py", TRIPLES)
    write(alternatives_dir(pdir) / "_helpers.py", "raise RuntimeError('not a solution')\n")
    assert [p.name for p in alternative_files(pdir)] == ["add.py", "loop.py", "triples.py"]
    checks = {c.name: c for c in run_check(pdir, pool).checks}
    assert list(checks) == ["alternative add scores full marks", "alternative loop scores full marks",
                            "alternative triples scores full marks"]
    assert checks["alternative add scores full marks"].ok and checks["alternative add scores full marks"].detail == "2/2"
    assert checks["alternative loop scores full marks"].ok
    wrong = checks["alternative triples scores full marks"]
    assert not wrong.ok
    assert wrong.detail.startswith("0/2; failing: ")
    assert "test_example: failed" in wrong.detail and "test_random_inputs: failed" in wrong.detail


def test_no_alternatives_fails_and_says_to_add_some(pdir, pool):
    for path in alternative_files(pdir):
        path.unlink()
    report = run_check(pdir, pool)
    assert [(c.name, c.ok) for c in report.checks] == [(MISSING, False)]
    assert "add 2-3 correct solutions" in report.checks[0].detail
    assert str(alternatives_dir(pdir)) in report.checks[0].detail
    alternatives_dir(pdir).rmdir()
    assert [(c.name, c.ok) for c in run_check(pdir, pool).checks] == [(MISSING, False)]
