"""Helpers for writing public and hidden tests.

Their failure messages say what is wrong with the solver's result and never print expected
values. What the solver's code returned (a shape, a count, an error) is shown for public tests
only: a hidden test's message must carry nothing the solver can shape (see `CheckFailed`).
"""
from __future__ import annotations

import math

from runner.sandbox.wire import Generator, Handle  # noqa: F401  (re-exported for tests)

__all__ = ["CheckFailed", "Generator", "Handle", "assert_close", "assert_shape_dtype", "binomial_bound", "check"]


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


def _is_tensor(x) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def assert_shape_dtype(actual, shape: tuple, dtype, *, what: str) -> None:
    """`actual` is a tensor of exactly this shape and dtype."""
    check(_is_tensor(actual), what, "expected a torch.Tensor", f", got {type(actual).__name__}")
    check(tuple(actual.shape) == tuple(shape), what, "the shape is wrong", f" ({tuple(actual.shape)})")
    check(actual.dtype == dtype, what, f"the dtype is wrong (should be {dtype})", f"; got {actual.dtype}")


def assert_close(actual, expected, *, rtol: float, atol: float, what: str) -> None:
    """Same shape, same kind of dtype (float/int/bool), values within atol + rtol * |expected|.

    Integer and bool tensors must match exactly. NaN never matches.
    """
    import torch

    if not _is_tensor(expected):
        number = isinstance(actual, (int, float)) and not isinstance(actual, bool) or _is_tensor(actual)
        check(number, what, "expected a number", f", got {type(actual).__name__}")
        check(not _is_tensor(actual) or actual.numel() == 1, what, "expected a single number")
        actual_f = float(actual.item() if _is_tensor(actual) else actual)
        check(math.isfinite(actual_f), what, "the value is not finite")
        check(abs(actual_f - float(expected)) <= atol + rtol * abs(float(expected)), what,
              "the value is off by more than the tolerance", f" (got {actual_f:.6g})")
        return
    check(_is_tensor(actual), what, "expected a torch.Tensor", f", got {type(actual).__name__}")
    check(tuple(actual.shape) == tuple(expected.shape), what, "the shape is wrong", f" ({tuple(actual.shape)})")
    if expected.dtype == torch.bool or not (expected.is_floating_point() or expected.is_complex()):
        kind = "bool" if expected.dtype == torch.bool else "integer"
        ok_kind = (actual.dtype == torch.bool) if kind == "bool" else not (
            actual.is_floating_point() or actual.dtype == torch.bool)
        check(ok_kind, what, f"the dtype is wrong (should be {kind})", f"; got {actual.dtype}")
        wrong = int((actual.cpu() != expected.cpu()).sum())
        check(wrong == 0, what, "some entries are wrong", f" ({wrong} of {expected.numel()})")
        return
    check(actual.is_floating_point(), what, "the dtype is wrong (should be floating point)", f"; got {actual.dtype}")
    a, e = actual.detach().cpu().double(), expected.detach().cpu().double()
    check(not torch.isnan(a).any() or torch.isnan(e).any(), what, "contains NaN")
    close = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        bad = int((~close).sum())
        err = float(((a - e).abs()[~close]).nan_to_num(float("inf")).max())
        check(False, what, "values are outside the tolerance",
              f" ({bad} of {e.numel()}, largest error {err:.3g})")


def binomial_bound(n: int, p: float, alpha: float = 1e-6) -> float:
    """Half-width k with P(|X - n p| > k) < alpha for X ~ Binomial(n, p) (Hoeffding's bound).

    A test that checks a count against n p +- k therefore wrongly fails a correct solution with
    probability below alpha.
    """
    if n <= 0:
        return 0.0
    return math.sqrt(n * math.log(2 / alpha) / 2)
