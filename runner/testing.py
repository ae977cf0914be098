"""Helpers for writing public and hidden tests.

Their failure messages say what is wrong with the solver's result without printing expected
values: hidden tests show their messages to solvers.
"""
from __future__ import annotations

import math

from runner.sandbox.wire import Generator, Handle  # noqa: F401  (re-exported for tests)

__all__ = ["Generator", "Handle", "assert_close", "assert_shape_dtype", "binomial_bound"]


def _is_tensor(x) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def assert_shape_dtype(actual, shape: tuple, dtype, *, what: str) -> None:
    """`actual` is a tensor of exactly this shape and dtype."""
    assert _is_tensor(actual), f"{what}: expected a torch.Tensor, got {type(actual).__name__}"
    assert tuple(actual.shape) == tuple(shape), f"{what}: shape {tuple(actual.shape)} is wrong"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype} is wrong (should be {dtype})"


def assert_close(actual, expected, *, rtol: float, atol: float, what: str) -> None:
    """Same shape, same kind of dtype (float/int/bool), values within atol + rtol * |expected|.

    Integer and bool tensors must match exactly. NaN never matches.
    """
    import torch

    if not _is_tensor(expected):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool) or _is_tensor(actual), \
            f"{what}: expected a number, got {type(actual).__name__}"
        actual_f = float(actual.item() if _is_tensor(actual) and actual.numel() == 1 else actual)
        assert math.isfinite(actual_f), f"{what}: the value is not finite"
        assert abs(actual_f - float(expected)) <= atol + rtol * abs(float(expected)), \
            f"{what}: the value is off by more than the tolerance"
        return
    assert _is_tensor(actual), f"{what}: expected a torch.Tensor, got {type(actual).__name__}"
    assert tuple(actual.shape) == tuple(expected.shape), f"{what}: shape {tuple(actual.shape)} is wrong"
    if expected.dtype == torch.bool or not (expected.is_floating_point() or expected.is_complex()):
        kind = "bool" if expected.dtype == torch.bool else "integer"
        ok_kind = (actual.dtype == torch.bool) if kind == "bool" else not (
            actual.is_floating_point() or actual.dtype == torch.bool)
        assert ok_kind, f"{what}: dtype {actual.dtype} is wrong (should be {kind})"
        wrong = int((actual.cpu() != expected.cpu()).sum())
        assert wrong == 0, f"{what}: {wrong} of {expected.numel()} entries are wrong"
        return
    assert actual.is_floating_point(), f"{what}: dtype {actual.dtype} is wrong (should be floating point)"
    a, e = actual.detach().cpu().double(), expected.detach().cpu().double()
    assert not torch.isnan(a).any() or torch.isnan(e).any(), f"{what}: contains NaN"
    close = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bool(close.all()):
        bad = int((~close).sum())
        err = float(((a - e).abs()[~close]).nan_to_num(float("inf")).max())
        raise AssertionError(
            f"{what}: {bad} of {e.numel()} values are outside the tolerance (largest error {err:.3g})")


def binomial_bound(n: int, p: float, alpha: float = 1e-6) -> float:
    """Half-width k with P(|X - n p| > k) < alpha for X ~ Binomial(n, p) (Hoeffding's bound).

    A test that checks a count against n p +- k therefore wrongly fails a correct solution with
    probability below alpha.
    """
    if n <= 0:
        return 0.0
    return math.sqrt(n * math.log(2 / alpha) / 2)
