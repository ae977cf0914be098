"""Reference solution of 183-partial-rotary-embedding: Gemma 4's rotary embeddings in NumPy.

Sliding layers: "default" RoPE, every pair rotates, base 10 000. Full layers: "proportional"
RoPE, base 1 000 000, only the first partial_rotary_factor of the pairs rotate and their
frequencies keep the exponents of the full head dimension; the other pairs get frequency 0.
"""
from __future__ import annotations

import math

import numpy as np

# Gemma4TextConfig's rope_parameters when the config leaves them out.
GEMMA4_ROPE_PARAMETERS = {
    "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}


def rope_frequencies(head_dim: int, layer_type: str, config: dict | None = None) -> np.ndarray:
    """(head_dim // 2,) float32 inverse frequencies of the layer type's rotary embedding.

    config: the rope parameters per layer type, as Gemma4TextConfig.rope_parameters (None: the
    Gemma 4 defaults). Pair i (dimensions i and i + head_dim // 2) turns by position * inv_freq[i].
    """
    params = (GEMMA4_ROPE_PARAMETERS if config is None else config)[layer_type]
    base = np.float32(params["rope_theta"])
    half = head_dim // 2
    if params["rope_type"] == "default":
        rotated = half
        scale = 1.0
    else:  # "proportional"
        rotated = math.floor(params.get("partial_rotary_factor", 1.0) * head_dim / 2)
        scale = params.get("factor", 1.0)
    # Exponents 2i / head_dim over the FULL head dimension, in float32 as the release computes them.
    exponents = np.arange(0, 2 * rotated, 2).astype(np.float32) / np.float32(head_dim)
    inv_freq = np.zeros(half, dtype=np.float32)
    inv_freq[:rotated] = np.float32(1.0) / base ** exponents
    return (inv_freq / np.float32(scale)).astype(np.float32)


def apply_rope(x: np.ndarray, positions: np.ndarray, layer_type: str, config: dict | None = None) -> np.ndarray:
    """Rotate x (B, S, H, D) at integer positions (B, S); returns x's shape and dtype.

    Pair i holds dimensions i and i + D // 2 (rotate-half layout):
        out[..., i]          = x[..., i] * cos(a_i) - x[..., i + D/2] * sin(a_i)
        out[..., i + D/2]    = x[..., i + D/2] * cos(a_i) + x[..., i] * sin(a_i)
    with a_i = position * inv_freq[i], computed in float32.
    """
    head_dim = x.shape[-1]
    half = head_dim // 2
    inv_freq = rope_frequencies(head_dim, layer_type, config)
    angles = positions.astype(np.float32)[..., None] * inv_freq            # (B, S, D/2)
    cos = np.cos(angles)[:, :, None, :]                                     # (B, S, 1, D/2)
    sin = np.sin(angles)[:, :, None, :]
    h = x.astype(np.float32)
    first, second = h[..., :half], h[..., half:]
    out = np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return out.astype(x.dtype)
