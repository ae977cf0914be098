"""Partial rotary embeddings, per layer type (problem 183)."""
from __future__ import annotations

import numpy as np


def rope_frequencies(head_dim: int, layer_type: str, config: dict | None = None) -> np.ndarray:
    """Inverse frequencies of the rotary embedding of one layer type.

    head_dim: the even head dimension D.
    layer_type: "sliding_attention" or "full_attention".
    config: the rope parameters per layer type, as Gemma4TextConfig.rope_parameters, or None for
        Gemma 4's defaults.
    Returns: (D // 2,) float32; entry i is the frequency of pair i (dimensions i and i + D // 2),
        0 for a pair that does not turn.
    """
    # your code here
    raise NotImplementedError


def apply_rope(x: np.ndarray, positions: np.ndarray, layer_type: str, config: dict | None = None) -> np.ndarray:
    """Rotate queries or keys by their positions, in the rotate-half layout.

    x: (B, S, H, D) float32 or float16.
    positions: (B, S) integers, shared by all heads of a token.
    Returns: the same shape and dtype as x.
    """
    # your code here
    raise NotImplementedError
