"""A correct alternative: each pair as a complex number, turned by exp(i * angle), in float64."""
from __future__ import annotations

import math

import numpy as np

_DEFAULTS = {
    "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1e6},
}


def _frequencies64(head_dim, layer_type, config):
    params = (config or _DEFAULTS)[layer_type]
    pairs = np.arange(head_dim // 2)
    freq = params["rope_theta"] ** (-2.0 * pairs / head_dim)        # every pair first ...
    if params["rope_type"] == "proportional":
        turning = math.floor(params.get("partial_rotary_factor", 1.0) * head_dim / 2)
        freq = np.where(pairs < turning, freq, 0.0) / params.get("factor", 1.0)   # ... then mask
    return freq


def rope_frequencies(head_dim, layer_type, config=None):
    return _frequencies64(head_dim, layer_type, config).astype(np.float32)


def apply_rope(x, positions, layer_type, config=None):
    d = x.shape[-1]
    freq = _frequencies64(d, layer_type, config)
    z = x[..., : d // 2].astype(np.float64) + 1j * x[..., d // 2:].astype(np.float64)
    turn = np.exp(1j * positions[:, :, None, None].astype(np.float64) * freq)
    w = z * turn
    return np.concatenate([w.real, w.imag], axis=-1).astype(x.dtype)
