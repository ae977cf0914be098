"""Reference solution of 182-gemma4-rmsnorm: Gemma 4's RMSNorm in NumPy."""
from __future__ import annotations

import numpy as np


def rms_norm(x: np.ndarray, weight: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Normalise the last axis of `x` by its root mean square, then scale by `weight`.

    x: (..., D) float16 or float32. weight: (D,) float16 or float32, or None (no scale).
    Computes in float32: y = x * (mean(x**2) + eps) ** -0.5 * weight, the mean over the last
    axis; returns y cast to x's dtype, with x's shape.
    """
    h = x.astype(np.float32)
    mean_square = np.mean(h * h, axis=-1, keepdims=True) + np.float32(eps)
    out = h * mean_square ** np.float32(-0.5)
    if weight is not None:
        out = out * weight.astype(np.float32)
    return out.astype(x.dtype)
