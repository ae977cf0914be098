"""A correct alternative: plain loops over tokens, heads and pairs with math.cos and math.sin."""
from __future__ import annotations

import math

import numpy as np


def rope_frequencies(head_dim, layer_type, config=None):
    if config is None:
        config = {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                  "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                     "rope_theta": 1000000.0}}
    params = config[layer_type]
    n_pairs = head_dim // 2
    if params["rope_type"] == "default":
        turning, divisor = n_pairs, 1.0
    else:
        turning = int(math.floor(params.get("partial_rotary_factor", 1.0) * head_dim / 2))
        divisor = params.get("factor", 1.0)
    out = []
    for i in range(n_pairs):
        if i < turning:
            out.append(1.0 / math.pow(params["rope_theta"], 2.0 * i / head_dim) / divisor)
        else:
            out.append(0.0)
    return np.array(out, dtype=np.float32)


def apply_rope(x, positions, layer_type, config=None):
    b, s, h, d = x.shape
    half = d // 2
    freq = rope_frequencies(d, layer_type, config)
    out = np.array(x, dtype=np.float32)
    for bi in range(b):
        for si in range(s):
            p = float(np.float32(positions[bi, si]))
            for i in range(half):
                angle = float(np.float32(p) * freq[i])
                c, sn = math.cos(angle), math.sin(angle)
                for hi in range(h):
                    u, v = float(x[bi, si, hi, i]), float(x[bi, si, hi, i + half])
                    out[bi, si, hi, i] = u * c - v * sn
                    out[bi, si, hi, i + half] = v * c + u * sn
    return out.astype(x.dtype)
