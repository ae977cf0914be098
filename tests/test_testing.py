"""runner.testing, the helpers of public and hidden tests: numpy arrays and torch tensors are
checked for type, shape and dtype before values; a public test's message shows what the solver
returned, a hidden test's (`hidden_message`) nothing the solver chose."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from runner.testing import CheckFailed, assert_close, assert_shape_dtype, rng
from tests.support.helpers import ROOT

TOL = {"rtol": 1e-5, "atol": 1e-6}


def failure(actual, expected, **tol) -> CheckFailed:
    with pytest.raises(CheckFailed) as info:
        assert_close(actual, expected, **(tol or TOL), what="out")
    return info.value


def test_close_arrays_pass():
    expected = rng(0).standard_normal((3, 4)).astype(np.float32)
    assert_close(expected + np.float32(1e-7), expected, **TOL, what="out")
    assert_close(np.array([np.nan, np.inf], dtype=np.float64), np.array([np.nan, np.inf]), **TOL, what="out")
    assert_close(np.array([[True, False]]), np.array([[True, False]]), **TOL, what="out")
    assert_close(np.array(7, dtype=np.int64), np.array(7, dtype=np.int64), **TOL, what="out")


@pytest.mark.parametrize("actual,message,hidden", [
    (torch.ones(2, 3), "out: expected a numpy array, got Tensor", "out: expected a numpy array"),
    ([[1.0] * 3] * 2, "out: expected a numpy array, got list", "out: expected a numpy array"),
    (np.ones((3, 2), dtype=np.float32), "out: the shape is wrong ((3, 2))", "out: the shape is wrong"),
    (np.ones(6, dtype=np.float32), "out: the shape is wrong ((6,))", "out: the shape is wrong"),
    (np.ones((2, 3)), "out: the dtype is wrong (should be float32); got float64",
     "out: the dtype is wrong (should be float32)"),
    (np.ones((2, 3), dtype=np.int32), "out: the dtype is wrong (should be float32); got int32",
     "out: the dtype is wrong (should be float32)"),
])
def test_type_shape_and_dtype_come_before_values(actual, message, hidden):
    exc = failure(actual, np.ones((2, 3), dtype=np.float32))
    assert str(exc) == message and exc.hidden_message == hidden


def test_values_name_the_worst_element_in_public_messages_only():
    expected = np.zeros((2, 3), dtype=np.float32)
    actual = expected.copy()
    actual[0, 2], actual[1, 1] = 0.5, -2.0
    exc = failure(actual, expected)
    assert str(exc) == "out: values are outside the tolerance (2 of 6, largest error 2 at index (1, 1))"
    assert exc.hidden_message == "out: values are outside the tolerance"
    # the tolerance is rtol * |expected| + atol, on float64 copies of both
    assert_close(np.float32(101.0) * np.ones(2, dtype=np.float32), np.full(2, 100.0, dtype=np.float32),
                 rtol=0.01, atol=0.0, what="out")
    exc = failure(np.array([1.0, 102.0], dtype=np.float32), np.array([1.0, 100.0], dtype=np.float32), rtol=0.01, atol=0.0)
    assert str(exc).endswith("(1 of 2, largest error 2 at index (1,))")


def test_nan_and_inf_answers_are_wrong():
    expected = np.array([1.0, 2.0], dtype=np.float32)
    exc = failure(np.array([np.nan, 2.0], dtype=np.float32), expected)
    assert exc.hidden_message == "out: contains NaN"
    exc = failure(np.array([1.0, np.inf], dtype=np.float32), expected)
    assert str(exc) == "out: values are outside the tolerance (1 of 2, largest error inf at index (1,))"


def test_integers_and_bools_must_match_exactly():
    exc = failure(np.array([[1, 2], [3, 5]], dtype=np.int64), np.array([[1, 2], [3, 4]], dtype=np.int64))
    assert str(exc) == "out: some entries are wrong (1 of 4, the first at index (1, 1))"
    assert exc.hidden_message == "out: some entries are wrong"
    exc = failure(np.array(False), np.array(True))
    assert str(exc) == "out: some entries are wrong (1 of 1, the first at index ())"
    exc = failure(np.array([True, False]), np.array([1, 0], dtype=np.int64))
    assert exc.hidden_message == "out: the dtype is wrong (should be int64)"


def test_numbers_accept_numpy_numbers_and_single_element_arrays():
    assert_close(np.float32(0.5), 0.5, **TOL, what="out")
    assert_close(np.array([0.5], dtype=np.float32), np.float64(0.5), **TOL, what="out")
    assert failure(np.ones(2), 1.0).hidden_message == "out: expected a single number"
    assert failure("0.5", 0.5).hidden_message == "out: expected a number"
    assert str(failure(np.float32(0.75), 0.5)) == "out: the value is off by more than the tolerance (got 0.75)"


def test_tensors_name_the_worst_element_too():
    expected = torch.zeros(2, 2)
    actual = torch.tensor([[0.0, 0.1], [3.0, 0.0]])
    exc = failure(actual, expected)
    assert str(exc) == "out: values are outside the tolerance (2 of 4, largest error 3 at index (1, 0))"
    exc = failure(torch.tensor([1, 7, 3]), torch.tensor([1, 2, 4]))
    assert str(exc) == "out: some entries are wrong (2 of 3, the first at index (1,))"
    assert exc.hidden_message == "out: some entries are wrong"
    assert failure(np.zeros((2, 2), dtype=np.float32), expected).hidden_message == "out: expected a torch.Tensor"


def test_shape_and_dtype_of_arrays_and_tensors():
    assert_shape_dtype(np.zeros((2, 3), dtype=np.int32), (2, 3), np.int32, what="out")
    assert_shape_dtype(np.zeros(4, dtype=bool), (4,), "bool", what="out")
    assert_shape_dtype(torch.zeros(2, dtype=torch.int64), (2,), torch.int64, what="out")
    for actual, dtype, hidden in [
        (torch.zeros(2, 3, dtype=torch.int32), np.int32, "out: expected a numpy array"),
        (np.zeros((3, 2), dtype=np.int32), np.int32, "out: the shape is wrong"),
        (np.zeros((2, 3), dtype=np.int64), np.dtype("int32"), "out: the dtype is wrong (should be int32)"),
        (np.zeros((2, 3), dtype=np.int32), torch.int32, "out: expected a torch.Tensor"),
    ]:
        with pytest.raises(CheckFailed) as info:
            assert_shape_dtype(actual, (2, 3), dtype, what="out")
        assert info.value.hidden_message == hidden


def test_rng_is_numpys_seeded_default_generator():
    a, b = rng(3).standard_normal(5), rng(3).standard_normal(5)
    assert np.array_equal(a, b) and np.array_equal(a, np.random.default_rng(3).standard_normal(5))
    assert not np.array_equal(a, rng(4).standard_normal(5))


def test_checking_arrays_never_imports_torch():
    code = ("import sys, numpy as np\nfrom runner.testing import assert_close, assert_shape_dtype, rng\n"
            "x = rng(0).random(3)\nassert_close(x, x.copy(), rtol=0, atol=0, what='x')\n"
            "assert_shape_dtype(x, (3,), np.float64, what='x')\nassert_close(1.0, 1.0, rtol=0, atol=0, what='n')\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_an_infinite_error_reads_inf_for_tensors_too():
    exc = failure(torch.tensor([1.0, float("inf")]), torch.tensor([1.0, 2.0]))
    assert str(exc) == "out: values are outside the tolerance (1 of 2, largest error inf at index (1,))"
