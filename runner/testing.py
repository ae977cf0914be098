"""Helpers for writing public and hidden tests.

Their failure messages say what is wrong with the solver's result and never print expected
values. What the solver's code returned (a shape, a count, an error) is shown for public tests
only: a hidden test's message must carry nothing the solver can shape (see `CheckFailed`).
"""
from __future__ import annotations

import math
import sys

from runner.sandbox.wire import Generator, Handle, NumpyGenerator  # noqa: F401  (re-exported for tests)

__all__ = ["CheckFailed", "Generator", "Handle", "NumpyGenerator", "assert_close", "assert_shape_dtype",
           "binomial_bound", "check", "rng"]


class CheckFailed(AssertionError):
    """A failed check. Its message may show what the solver's code returned (public tests);
    `hidden_message` says what is wrong without any value the solver chose (hidden tests)."""

    def __init__(self, message: str, hidden_message: str):
        super().__init__(message)
        self.hidden_message = hidden_message


def check(ok: bool, what: str, problem: str, shown: str = "") -> None:
    """Fail with "WHAT: PROBLEM" unless `ok`; `shown` (the solver's values) is added for public tests only."""
    if not ok:
        raise CheckFailed(f"{what}: {problem}{shown}", f"{what}: {problem}")


def rng(seed: int):
    """`np.random.default_rng(seed)`: the generator a numpy problem's tests draw their inputs from
    (the torch problems' tests use `torch.Generator().manual_seed(seed)`). To hand the solver's
    function a generator of its own, pass `NumpyGenerator(seed)` instead."""
    import numpy as np

    return np.random.default_rng(seed)


# Neither check imports torch: a value can only be a tensor when torch is loaded already, so the
# tests of a numpy problem never pay for importing it.
def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_array(x) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def _is_torch_dtype(dtype) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(dtype, torch.dtype)


def _index(flat: int, shape: tuple) -> str:
    """A flat position as the index of an array of `shape`: `(1, 3)`, or `()` for a 0-d array."""
    out = []
    for size in reversed(shape):
        flat, i = divmod(flat, size)
        out.append(i)
    return "(" + ", ".join(map(str, reversed(out))) + ("," if len(out) == 1 else "") + ")"


def assert_shape_dtype(actual, shape: tuple, dtype, *, what: str) -> None:
    """`actual` is a tensor (for a torch dtype) or a numpy array (for a numpy dtype: `np.float32`,
    `np.dtype("int64")`, `"bool"`) of exactly this shape and dtype."""
    if _is_torch_dtype(dtype):
        check(_is_tensor(actual), what, "expected a torch.Tensor", f", got {type(actual).__name__}")
        check(tuple(actual.shape) == tuple(shape), what, "the shape is wrong", f" ({tuple(actual.shape)})")
        check(actual.dtype == dtype, what, f"the dtype is wrong (should be {dtype})", f"; got {actual.dtype}")
        return
    import numpy as np

    dtype = np.dtype(dtype)
    check(_is_array(actual), what, "expected a numpy array", f", got {type(actual).__name__}")
    check(tuple(actual.shape) == tuple(shape), what, "the shape is wrong", f" ({tuple(actual.shape)})")
    check(actual.dtype == dtype, what, f"the dtype is wrong (should be {dtype})", f"; got {actual.dtype}")


def assert_close(actual, expected, *, rtol: float, atol: float, what: str) -> None:
    """`expected` a tensor: `actual` a tensor of the same shape and kind of dtype (float/int/bool).
    `expected` a numpy array: `actual` a numpy array of the same shape and exactly its dtype.
    `expected` a number: `actual` one number. Floats must be within atol + rtol * |expected|;
    integers and bools must match exactly; NaN never matches a number.

    Shape and dtype are checked before any value. A public test's message adds how many entries
    are wrong, the largest error and where it is; a hidden test's says only what is wrong."""
    if _is_array(expected):
        _assert_arrays_close(actual, expected, rtol, atol, what)
    elif _is_tensor(expected):
        _assert_tensors_close(actual, expected, rtol, atol, what)
    else:
        _assert_number_close(actual, expected, rtol, atol, what)


def _assert_number_close(actual, expected, rtol: float, atol: float, what: str) -> None:
    np = sys.modules.get("numpy")
    numpy_number = np is not None and isinstance(actual, (np.integer, np.floating))
    single = (_is_tensor(actual) and actual.numel() == 1) or (_is_array(actual) and actual.size == 1)
    number = (isinstance(actual, (int, float)) and not isinstance(actual, bool)) or numpy_number
    check(number or _is_tensor(actual) or _is_array(actual), what, "expected a number",
          f", got {type(actual).__name__}")
    check(number or single, what, "expected a single number")
    actual_f = float(actual.item() if single else actual)
    check(math.isfinite(actual_f), what, "the value is not finite")
    check(abs(actual_f - float(expected)) <= atol + rtol * abs(float(expected)), what,
          "the value is off by more than the tolerance", f" (got {actual_f:.6g})")


def _assert_tensors_close(actual, expected, rtol: float, atol: float, what: str) -> None:
    import torch

    check(_is_tensor(actual), what, "expected a torch.Tensor", f", got {type(actual).__name__}")
    check(tuple(actual.shape) == tuple(expected.shape), what, "the shape is wrong", f" ({tuple(actual.shape)})")
    if expected.dtype == torch.bool or not (expected.is_floating_point() or expected.is_complex()):
        kind = "bool" if expected.dtype == torch.bool else "integer"
        ok_kind = (actual.dtype == torch.bool) if kind == "bool" else not (
            actual.is_floating_point() or actual.dtype == torch.bool)
        check(ok_kind, what, f"the dtype is wrong (should be {kind})", f"; got {actual.dtype}")
        wrong = (actual.cpu() != expected.cpu()).reshape(-1)
        if bool(wrong.any()):
            check(False, what, "some entries are wrong", f" ({int(wrong.sum())} of {expected.numel()}, the first "
                  f"at index {_index(int(wrong.nonzero()[0]), tuple(expected.shape))})")
        return
    check(actual.is_floating_point(), what, "the dtype is wrong (should be floating point)", f"; got {actual.dtype}")
    a, e = actual.detach().cpu().double(), expected.detach().cpu().double()
    check(not torch.isnan(a).any() or torch.isnan(e).any(), what, "contains NaN")
    close = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        diff = (a - e).abs()
        error = torch.where(close, 0.0, diff.nan_to_num(nan=float("inf"), posinf=float("inf"))).reshape(-1)
        worst = int(error.argmax())
        check(False, what, "values are outside the tolerance",
              f" ({int((~close).sum())} of {e.numel()}, largest error {float(error[worst]):.3g} "
              f"at index {_index(worst, tuple(e.shape))})")


def _assert_arrays_close(actual, expected, rtol: float, atol: float, what: str) -> None:
    import numpy as np

    check(_is_array(actual), what, "expected a numpy array", f", got {type(actual).__name__}")
    check(actual.shape == expected.shape, what, "the shape is wrong", f" ({actual.shape})")
    check(actual.dtype == expected.dtype, what, f"the dtype is wrong (should be {expected.dtype})",
          f"; got {actual.dtype}")
    if expected.dtype.kind != "f":  # bool and integers: exactly
        wrong = (actual != expected).reshape(-1)
        if wrong.any():
            check(False, what, "some entries are wrong", f" ({int(wrong.sum())} of {expected.size}, the first at "
                  f"index {_index(int(np.flatnonzero(wrong)[0]), expected.shape)})")
        return
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    check(not np.isnan(a).any() or np.isnan(e).any(), what, "contains NaN")
    close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        with np.errstate(invalid="ignore", over="ignore"):
            error = np.where(close, 0.0, np.nan_to_num(np.abs(a - e), nan=np.inf, posinf=np.inf)).reshape(-1)
        worst = int(error.argmax())
        check(False, what, "values are outside the tolerance",
              f" ({int((~close).sum())} of {e.size}, largest error {error[worst]:.3g} "
              f"at index {_index(worst, e.shape)})")


def binomial_bound(n: int, p: float, alpha: float = 1e-6) -> float:
    """Half-width k with P(|X - n p| > k) < alpha for X ~ Binomial(n, p) (Hoeffding's bound).

    A test that checks a count against n p +- k therefore wrongly fails a correct solution with
    probability below alpha.
    """
    if n <= 0:
        return 0.0
    return math.sqrt(n * math.log(2 / alpha) / 2)
