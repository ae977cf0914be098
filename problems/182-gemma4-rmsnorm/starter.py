"""Gemma 4's RMSNorm (problem 182)."""
from __future__ import annotations

import numpy as np


def rms_norm(x: np.ndarray, weight: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Normalise every vector along the last axis of `x` by its root mean square, then scale it.

    x: (..., D) float32 or float16.
    weight: (D,) float32 or float16, the learned scale, or None for a norm without a scale.
    eps: added to the mean of squares, inside the square root (Gemma 4's rms_norm_eps is 1e-6).
    Returns: the same shape and dtype as x. The arithmetic is done in float32, and the result is
        cast to x's dtype once, at the end.
    """
    # your code here
    raise NotImplementedError
