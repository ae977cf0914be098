"""The empty-answer build of a reference, and the validation check that grades it.

The builds are imported here, in-process, to see what they answer; the grading through the
sandbox is covered by `grader validate` of every bundled problem (test_validation.py)."""
import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from runner.authoring.empty_answers import CHECK, empty_answers, tensor_free
from runner.authoring.validation import Report, check_empty_answers
from runner.modules import import_file
from runner.problems.schema import FunctionSpec
from runner.records.results import Result, TestResult
from runner.sandbox.child import check_signature

REFERENCE = '''
from __future__ import annotations

import collections

import torch

Pair = collections.namedtuple("Pair", "left right")


def double(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    return x * scale


def total(x: torch.Tensor) -> float:
    # calls another declared function: it must get a real answer back
    return float(double(x).sum())


def many(x: torch.Tensor):
    return {"pair": Pair(x, x.bool()), "items": [x.sum(), 3, "text"], "none": None}


class Counter:
    def __init__(self, start: int) -> None:
        self.count = start

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return x[:, None].expand(-1, 2)

    def reset(self) -> None:
        self.count = 0

    @staticmethod
    def zeros(n: int) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.int32)
'''

FUNCTIONS = [
    FunctionSpec(name="double", params=["x", "scale"]),
    FunctionSpec(name="total", params=["x"]),
    FunctionSpec(name="many", params=["x"]),
    FunctionSpec(name="Counter", kind="class", params=["start"], methods=["__call__", "reset", "zeros"]),
]


@pytest.fixture
def pdir(tmp_path):
    """A stand-in for a problem folder: what the builds read of one."""
    solution = tmp_path / "solution.py"
    solution.write_text(REFERENCE, encoding="utf-8")
    return SimpleNamespace(meta=SimpleNamespace(functions=FUNCTIONS), solution_file=solution)


def build(pdir, tmp_path, make, name):
    """Import the build `make(pdir)` as a module."""
    return import_file(make(pdir).write(tmp_path), name)


def test_tensors_become_empty_with_their_dtype_and_dimensions(pdir, tmp_path):
    module = build(pdir, tmp_path, empty_answers, "empty_dims")
    out = module.double(torch.ones(3, 4, dtype=torch.float64))
    assert out.shape == (0, 0) and out.dtype == torch.float64
    answer = module.many(torch.arange(3))
    pair = answer["pair"]
    assert type(pair).__name__ == "Pair" and pair.left.shape == (0,) and pair.right.dtype == torch.bool
    # a 0-d tensor always holds a value: it becomes the empty shape (0,)
    assert answer["items"][0].shape == (0,) and answer["items"][1:] == [3, "text"]
    assert answer["none"] is None


def test_numbers_are_kept_and_inner_calls_get_real_answers(pdir, tmp_path):
    module = build(pdir, tmp_path, empty_answers, "empty_numbers")
    assert module.total(torch.ones(3)) == 6.0


def test_listed_methods_of_a_class_are_wrapped(pdir, tmp_path):
    module = build(pdir, tmp_path, empty_answers, "empty_class")
    counter = module.Counter(5)
    out = counter(torch.ones(4))
    assert out.shape == (0, 0) and counter.count == 6  # the original method ran
    assert counter.reset() is None and counter.count == 0
    zeros = module.Counter.zeros(3)
    assert zeros.shape == (0,) and zeros.dtype == torch.int32


def test_signatures_are_kept(pdir, tmp_path):
    module = build(pdir, tmp_path, empty_answers, "empty_signatures")
    assert list(inspect.signature(module.double).parameters) == ["x", "scale"]
    assert all(check_signature(module, f.model_dump()) is None for f in FUNCTIONS)


def test_tensor_free_build_raises_only_for_tensor_answers(pdir, tmp_path):
    module = build(pdir, tmp_path, tensor_free, "tensor_free_build")
    assert module.total(torch.ones(2)) == 4.0
    assert module.Counter(0).reset() is None
    with pytest.raises(RuntimeError):
        module.double(torch.ones(2))
    with pytest.raises(RuntimeError):
        module.many(torch.ones(2))


NUMPY_REFERENCE = '''
import numpy as np


def scale(x: np.ndarray) -> tuple:
    return 2 * x, np.float32(x.sum()), np.asarray(x.sum(), dtype=np.int64)
'''


def test_numpy_arrays_become_empty_and_the_build_imports_nothing(tmp_path):
    solution = tmp_path / "solution.py"
    solution.write_text(NUMPY_REFERENCE, encoding="utf-8")
    pdir = SimpleNamespace(meta=SimpleNamespace(functions=[FunctionSpec(name="scale", params=["x"])]),
                           solution_file=solution)
    source = empty_answers(pdir).source
    appended = source[len(NUMPY_REFERENCE.rstrip()):]
    # the sandbox's import guard refuses what the problem does not list: the build must not import
    assert "import " not in appended.replace("# ", "")
    module = import_file(empty_answers(pdir).write(tmp_path), "empty_numpy")
    doubled, total, zero_d = module.scale(np.ones((3, 4), dtype=np.float32))
    assert isinstance(doubled, np.ndarray) and doubled.shape == (0, 0) and doubled.dtype == np.float32
    assert total == np.float32(12)  # a numpy number is a number: kept
    assert zero_d.shape == (0,) and zero_d.dtype == np.int64
    with pytest.raises(RuntimeError):
        import_file(tensor_free(pdir).write(tmp_path), "free_numpy").scale(np.ones(2))


def result(*tests: tuple[str, str, float]) -> Result:
    """A graded submission whose hidden tests ended as given: (name, status, points)."""
    return Result(problem="p", score=0, max_score=0, backend="local", duration_s=0, tests=[
        TestResult(name=n, status=s, score=p if s == "passed" else 0, max_score=p, visibility="hidden")
        for n, s, p in tests])


def run_check(pdir, empty: Result, free: Result | None) -> tuple[Report, list[str]]:
    """check_empty_answers with canned gradings; the builds it asked to grade."""
    graded: list[str] = []

    def score_mutant(mutant):
        graded.append(mutant.name)
        return empty if mutant.name == "empty_answers" else free

    report = Report("p")
    check_empty_answers(pdir, score_mutant, report)
    return report, graded


def test_check_passes_when_empty_answers_earn_nothing(pdir):
    report, graded = run_check(pdir, result(("test_a", "failed", 1), ("test_b", "error", 2)), None)
    [check] = report.checks
    assert check.name == CHECK and check.ok and check.detail == "0 points"
    assert graded == ["empty_answers"]  # no second grading when nothing was earned


def test_check_fails_with_the_points_and_tests_that_passed(pdir):
    report, _ = run_check(pdir, result(("test_a", "passed", 2), ("test_b", "failed", 1)), result(("test_a", "failed", 2)))
    [check] = report.checks
    assert not check.ok and check.detail == "2 points from test_a"


def test_check_excuses_tests_that_pass_without_any_tensor(pdir):
    empty = result(("test_number", "passed", 1), ("test_tensor", "failed", 1))
    report, graded = run_check(pdir, empty, result(("test_number", "passed", 1), ("test_tensor", "error", 1)))
    [check] = report.checks
    assert check.ok and "test_number" in check.detail
    assert graded == ["empty_answers", "tensor_free"]


def test_check_fails_when_the_empty_build_could_not_be_loaded(pdir):
    refused = Result(problem="p", score=0, max_score=3, backend="local", duration_s=0, status="invalid", tests=[
        TestResult(name="loading the submission", status="invalid", message="NotAllowed: import of functools",
                   score=0, max_score=3, visibility="visible")])
    report, graded = run_check(pdir, refused, None)
    [check] = report.checks
    assert check.name == CHECK and not check.ok
    assert check.detail == "the build with empty answers could not be loaded: NotAllowed: import of functools"
    assert graded == ["empty_answers"]
