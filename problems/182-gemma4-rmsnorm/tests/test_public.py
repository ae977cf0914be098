"""Public tests of 182-gemma4-rmsnorm: the statement's worked example."""
from __future__ import annotations

import numpy as np

from runner.testing import assert_close


def test_example(submission, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    scale = 1.0 / np.sqrt(12.5 + 1e-6)
    want = np.array([[3.0 * scale, 4.0 * scale], [0.0, 0.0]], dtype=np.float32)
    assert_close(submission.rms_norm(x), want, what="rms_norm without a weight", **tol)
    weight = np.array([1.0, 0.5], dtype=np.float32)
    assert_close(submission.rms_norm(x, weight), want * weight, what="rms_norm with a weight", **tol)


def test_example_float16(submission):
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float16)
    weight = np.array([1.0, 0.5], dtype=np.float32)
    want = np.array([[0.8486, 0.566], [0.0, 0.0]], dtype=np.float16)
    assert_close(submission.rms_norm(x, weight), want, rtol=0, atol=0,
                 what="rms_norm of a float16 input with a float32 weight")


def test_example_small_entries(submission, problem):
    x = np.array([[0.001, 0.001]], dtype=np.float32)
    want = np.full((1, 2), 0.001 / np.sqrt(2e-6), dtype=np.float32)
    assert_close(submission.rms_norm(x, eps=1e-6), want, rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="rms_norm of small entries, where eps matters")
