"""Hidden tests of 182-gemma4-rmsnorm (Gemma 4's RMSNorm, in NumPy)."""
from __future__ import annotations

import numpy as np
import pytest

from runner.testing import assert_close, assert_shape_dtype, rng

# float16 answers: within one float16 step everywhere, and exactly the reference almost everywhere.
HALF_RTOL, HALF_ATOL, HALF_EXACT_SHARE = 1e-3, 1e-6, 0.99


def rows_of_many_scales(seed: int, shape: tuple, low: float, high: float) -> np.ndarray:
    """float64 values whose vectors (along the last axis) have RMS spread log-uniformly in [low, high]."""
    gen = rng(seed)
    values = gen.standard_normal(shape)
    scales = np.exp(gen.uniform(np.log(low), np.log(high), size=shape[:-1] + (1,)))
    return values * scales


def learned_scale(seed: int, dim: int, dtype=np.float32) -> np.ndarray:
    """A trained-looking Gemma 4 scale: around 1, some entries well away from it, a few negative."""
    gen = rng(seed)
    return (1.0 + 0.6 * gen.standard_normal(dim)).astype(dtype)


def close32(got, want, problem, what: str) -> None:
    assert_close(got, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol, what=what)


def close16(got, want, what: str) -> None:
    assert_close(got, want, rtol=HALF_RTOL, atol=HALF_ATOL, what=what)
    exact = float(np.mean(got == want))
    assert exact >= HALF_EXACT_SHARE, \
        f"{what}: too many float16 entries are one step off; round to float16 only once, at the end"


# ----------------------------------------------------------------------------------------------
# shapes and dtypes

def test_shape_and_dtype(submission):
    for shape in [(3, 8), (2, 5, 16), (2, 3, 4, 8), (16,)]:
        x = rng(1).standard_normal(shape).astype(np.float32)
        out = submission.rms_norm(x, learned_scale(2, shape[-1]))
        assert_shape_dtype(out, shape, np.float32, what="rms_norm of a float32 input")
        out = submission.rms_norm(x.astype(np.float16), learned_scale(2, shape[-1]))
        assert_shape_dtype(out, shape, np.float16, what="rms_norm of a float16 input")
        out = submission.rms_norm(x, None)
        assert_shape_dtype(out, shape, np.float32, what="rms_norm without a weight")


def test_answer_dtype_follows_x_not_weight(submission, reference, problem):
    x = rng(3).standard_normal((4, 6, 32))
    for x_dtype, w_dtype in [(np.float16, np.float32), (np.float32, np.float16), (np.float16, np.float16)]:
        xs, w = x.astype(x_dtype), learned_scale(4, 32, w_dtype)
        out = submission.rms_norm(xs, w)
        assert_shape_dtype(out, xs.shape, x_dtype,
                           what="rms_norm when x and weight have different dtypes (the answer has x's dtype)")
        want = reference.rms_norm(xs, w)
        if x_dtype == np.float16:
            close16(out, want, what="rms_norm of a float16 input")
        else:
            close32(out, want, problem, what="rms_norm of a float32 input with a float16 weight")


# ----------------------------------------------------------------------------------------------
# the formula, in float32

@pytest.mark.points(2)
def test_random_float32(submission, reference, problem):
    for seed, shape in [(10, (4, 7, 64)), (11, (2, 5, 4, 16)), (12, (9, 3)), (13, (40,))]:
        x = rows_of_many_scales(seed, shape, 0.05, 50.0).astype(np.float32)
        w = learned_scale(seed + 100, shape[-1])
        close32(submission.rms_norm(x, w), reference.rms_norm(x, w), problem,
                what="rms_norm with a weight on float32 inputs")


def test_each_vector_is_normalised_on_its_own(submission, problem):
    """Without a weight, every vector comes out with RMS 1 (eps is negligible at these scales)."""
    x = rows_of_many_scales(20, (6, 10, 32), 0.5, 500.0).astype(np.float32)
    out = submission.rms_norm(x, None)
    assert_shape_dtype(out, x.shape, np.float32, what="rms_norm without a weight")
    rms = np.sqrt(np.mean(out.astype(np.float64) ** 2, axis=-1))
    assert np.allclose(rms, 1.0, rtol=1e-4, atol=0), \
        "without a weight, a vector's root mean square after the norm should be 1 (each vector on its own, over the last axis)"
    x1 = x[:1, :1]
    out1 = submission.rms_norm(x1, None)
    assert_shape_dtype(out1, x1.shape, np.float32, what="rms_norm of a single vector")
    close32(out[:1, :1], out1, problem, what="a vector's norm depends on the other vectors of the batch")


def test_not_centred(submission, reference, problem):
    """Vectors with a large mean: RMSNorm does not subtract it."""
    gen = rng(30)
    x = (gen.standard_normal((8, 24)) + gen.uniform(-6, 6, size=(8, 1))).astype(np.float32)
    w = learned_scale(31, 24)
    close32(submission.rms_norm(x, w), reference.rms_norm(x, w), problem,
            what="rms_norm of vectors whose mean is far from 0")


def test_scale_is_the_weight(submission, reference, problem):
    x = rows_of_many_scales(40, (5, 48), 0.5, 5.0).astype(np.float32)
    plain = submission.rms_norm(x, None)
    assert_shape_dtype(plain, x.shape, np.float32, what="rms_norm without a weight")
    ones = submission.rms_norm(x, np.ones(48, dtype=np.float32))
    assert_shape_dtype(ones, x.shape, np.float32, what="rms_norm with a weight of ones")
    close32(ones, plain, problem,
            what="a weight of ones should leave the normalised vectors as they are (check Gemma 4's scale convention)")
    zeros = submission.rms_norm(x, np.zeros(48, dtype=np.float32))
    assert_shape_dtype(zeros, x.shape, np.float32, what="rms_norm with a weight of zeros")
    assert not np.any(zeros), "a weight of zeros should give zeros (check Gemma 4's scale convention)"
    w = learned_scale(41, 48)
    close32(submission.rms_norm(x, w), reference.rms_norm(x, w), problem,
            what="rms_norm with a learned weight (check Gemma 4's scale convention)")


def test_without_weight(submission, reference, problem):
    """with_scale=False, as on the values: no learned scale at all."""
    for seed, shape in [(50, (3, 6, 2, 16)), (51, (7, 32))]:
        x = rows_of_many_scales(seed, shape, 0.1, 20.0).astype(np.float32)
        close32(submission.rms_norm(x, None), reference.rms_norm(x, None), problem,
                what="rms_norm without a weight")
    x16 = rows_of_many_scales(52, (8, 64), 0.1, 20.0).astype(np.float16)
    close16(submission.rms_norm(x16, None), reference.rms_norm(x16, None),
            what="rms_norm of a float16 input without a weight")


# ----------------------------------------------------------------------------------------------
# epsilon

def test_eps_inside_the_root(submission, reference, problem):
    """Vectors small enough that eps is not negligible next to their mean square."""
    for seed, eps, low, high in [(60, 1e-6, 1e-4, 3e-3), (61, 1e-2, 0.01, 0.3), (62, 0.5, 0.2, 2.0)]:
        x = rows_of_many_scales(seed, (6, 20), low, high).astype(np.float32)
        w = learned_scale(seed + 100, 20)
        close32(submission.rms_norm(x, w, eps), reference.rms_norm(x, w, eps), problem,
                what="rms_norm of small vectors, where eps matters")


def test_default_eps(submission, reference, problem):
    x = rows_of_many_scales(70, (5, 16), 2e-4, 2e-3).astype(np.float32)
    w = learned_scale(71, 16)
    close32(submission.rms_norm(x, w), reference.rms_norm(x, w, 1e-6), problem,
            what="rms_norm called without eps (the default is Gemma 4's rms_norm_eps)")


def test_zero_vectors_give_zeros(submission):
    x = rng(80).standard_normal((4, 3, 12)).astype(np.float32)
    x[1] = 0.0
    x[3, 2] = 0.0
    for dtype in (np.float32, np.float16):
        xs = x.astype(dtype)
        out = submission.rms_norm(xs, learned_scale(81, 12))
        assert_shape_dtype(out, xs.shape, dtype, what="rms_norm of a batch with zero vectors")
        assert np.all(np.isfinite(out)), "rms_norm of a zero vector is not finite"
        assert not np.any(out[1]) and not np.any(out[3, 2]), "rms_norm of a zero vector should be zeros"
        assert np.all(out[0] != 0), "rms_norm zeroes entries of a nonzero vector"


# ----------------------------------------------------------------------------------------------
# float16 inputs: float32 arithmetic, one rounding at the end

@pytest.mark.points(2)
def test_float16_large_activations(submission, reference):
    """float16 hidden states with entries in the hundreds and thousands: squares overflow float16."""
    x = rows_of_many_scales(90, (4, 8, 64), 150.0, 3000.0).astype(np.float16)
    w = learned_scale(91, 64)
    close16(submission.rms_norm(x, w), reference.rms_norm(x, w),
            what="rms_norm of large float16 activations")
    close16(submission.rms_norm(x, None), reference.rms_norm(x, None),
            what="rms_norm of large float16 activations without a weight")


def test_float16_small_activations(submission, reference):
    """Tiny float16 entries with a tiny eps: squares underflow float16."""
    x = rows_of_many_scales(100, (6, 32), 2e-4, 2e-3).astype(np.float16)
    w = learned_scale(101, 32, np.float16)
    close16(submission.rms_norm(x, w, 1e-10), reference.rms_norm(x, w, 1e-10),
            what="rms_norm of tiny float16 activations")


@pytest.mark.points(2)
def test_float16_rounds_once(submission, reference):
    x = rows_of_many_scales(110, (64, 8, 64), 0.5, 8.0).astype(np.float16)
    w = learned_scale(111, 64)
    close16(submission.rms_norm(x, w), reference.rms_norm(x, w),
            what="rms_norm of float16 inputs with a float32 weight")


def test_vector_of_one_entry(submission, reference, problem):
    x = rows_of_many_scales(120, (5, 1), 0.01, 10.0).astype(np.float32)
    w = learned_scale(121, 1)
    close32(submission.rms_norm(x, w), reference.rms_norm(x, w), problem,
            what="rms_norm over a last axis of length 1")
