"""Public tests of 183-partial-rotary-embedding: the statement's worked example."""
from __future__ import annotations

import math

import numpy as np

from runner.testing import assert_close


def test_example_frequencies(submission):
    got = submission.rope_frequencies(8, "sliding_attention", None)
    assert_close(got, np.array([1.0, 0.1, 0.01, 0.001], dtype=np.float32), rtol=1e-6, atol=0,
                 what="sliding-layer frequencies for head_dim 8")
    got = submission.rope_frequencies(16, "full_attention", None)
    want = np.zeros(8, dtype=np.float32)
    want[:2] = [1.0, 1e6 ** (-2 / 16)]
    assert_close(got, want, rtol=1e-6, atol=0, what="full-layer frequencies for head_dim 16")


def test_example_rotation(submission, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    x = np.ones((1, 1, 1, 8), dtype=np.float32)
    c, s = math.cos(1.0), math.sin(1.0)
    want = np.ones(8)
    want[0], want[4] = c - s, c + s
    got = submission.apply_rope(x, np.array([[1]]), "full_attention", None)
    assert_close(got, want.astype(np.float32).reshape(1, 1, 1, 8), what="apply_rope on a full layer", **tol)
    angles = np.array([1.0, 0.1, 0.01, 0.001])
    want = np.concatenate([np.cos(angles) - np.sin(angles), np.cos(angles) + np.sin(angles)])
    got = submission.apply_rope(x, np.array([[1]]), "sliding_attention", None)
    assert_close(got, want.astype(np.float32).reshape(1, 1, 1, 8), what="apply_rope on a sliding layer", **tol)
