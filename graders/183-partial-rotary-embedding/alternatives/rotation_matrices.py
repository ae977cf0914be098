"""A correct alternative: float32 throughout, one 2x2 rotation matrix per token and pair, einsum."""
from __future__ import annotations

import numpy as np

DEFAULT_ROPE = {
    "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}


def rope_frequencies(head_dim: int, layer_type: str, config: dict | None = None) -> np.ndarray:
    params = DEFAULT_ROPE[layer_type] if config is None else config[layer_type]
    half = head_dim // 2
    if params["rope_type"] == "proportional":
        count = int(params.get("partial_rotary_factor", 1.0) * head_dim // 2)
        factor = np.float32(params.get("factor", 1.0))
    else:
        count, factor = half, np.float32(1.0)
    theta = np.float32(params["rope_theta"])
    powers = np.arange(half, dtype=np.float32) * np.float32(2.0) / np.float32(head_dim)
    freq = np.float32(1.0) / theta ** powers
    freq[count:] = 0.0
    return freq / factor


def apply_rope(x: np.ndarray, positions: np.ndarray, layer_type: str, config: dict | None = None) -> np.ndarray:
    d = x.shape[-1]
    freq = rope_frequencies(d, layer_type, config)
    angle = np.asarray(positions, dtype=np.float32)[..., None] * freq           # (B, S, D/2)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)          # (B, S, D/2, 2, 2)
    pairs = np.stack([x[..., : d // 2], x[..., d // 2:]], -1).astype(np.float32)  # (B, S, H, D/2, 2)
    turned = np.einsum("bspij,bshpj->bshpi", rot, pairs)
    return np.concatenate([turned[..., 0], turned[..., 1]], -1).astype(x.dtype)
