"""Gemma 4 attention with QK-norm (problem 181): one self-attention layer of Gemma 4, in NumPy.

No rotary embedding is applied in this problem (the release's layer with cos = 1, sin = 0).
"""
from __future__ import annotations

import numpy as np


def gemma4_attention(hidden_states: np.ndarray, weights: dict, layer_type: str, config: dict) -> np.ndarray:
    """Self-attention of one Gemma 4 text layer, from hidden states to the output projection.

    hidden_states: (B, S, D) float32; token s sits at position s.
    weights: dict of float32 arrays. q_proj (H*d, D), k_proj (K*d, D), v_proj (K*d, D) or None,
        o_proj (D, H*d), applied as x @ W.T; q_norm (d,), k_norm (d,), the norms' learned scales.
    layer_type: "sliding_attention" (d = head_dim, K = num_key_value_heads, causal window of
        sliding_window tokens) or "full_attention" (d = global_head_dim, whole causal past; with
        attention_k_eq_v, K = num_global_key_value_heads or num_key_value_heads when that is None,
        and the raw key projection doubles as the values).
    config: dict with num_attention_heads (H), num_key_value_heads, head_dim, global_head_dim,
        num_global_key_value_heads, attention_k_eq_v, sliding_window, rms_norm_eps.
    Per head: q = rms(q) * q_norm, k = rms(k) * k_norm, v = rms(v) with no scale, where
    rms(u) = u / sqrt(mean(u**2) + eps); scores q . k with scale 1; query head h reads key/value
    head h // (H // K).
    Returns: (B, S, D) float32.
    """
    # your code here
    raise NotImplementedError
