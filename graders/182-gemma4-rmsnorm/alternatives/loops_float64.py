"""A correct alternative: a plain loop over the vectors, with math.sqrt and float64 arithmetic."""
from __future__ import annotations

import math

import numpy as np


def rms_norm(x, weight=None, eps=1e-6):
    dim = x.shape[-1]
    flat = x.reshape(-1, dim).astype(np.float64)
    scale = np.ones(dim) if weight is None else weight.astype(np.float64)
    out = np.empty_like(flat)
    for row in range(flat.shape[0]):
        vector = flat[row]
        total = 0.0
        for value in vector:
            total += float(value) * float(value)
        inverse_rms = 1.0 / math.sqrt(total / dim + eps)
        out[row] = vector * inverse_rms * scale
    return out.reshape(x.shape).astype(x.dtype)
