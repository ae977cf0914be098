"""Gemma 4 attention with QK-norm (problem 181): reference solution.

One self-attention layer of Gemma 4's text decoder, without rotary embeddings: per-head RMS norm
of queries and keys (with a learned scale) and of values (without one), a softmax scale of 1.0,
grouped-query heads, and a causal mask that a sliding layer cuts to a window. Full ("global")
layers may use a wider head, fewer key/value heads, and keys that double as values.
"""
from __future__ import annotations

import numpy as np


def rms_norm(x: np.ndarray, eps: float, weight: np.ndarray | None = None) -> np.ndarray:
    """RMS norm over the last axis: x / sqrt(mean(x^2) + eps), times weight when one is given."""
    mean_square = np.mean(np.square(x), axis=-1, keepdims=True)
    out = x * (mean_square + eps) ** -0.5
    if weight is not None:
        out = out * weight
    return out


def layer_shape(layer_type: str, config: dict) -> tuple[int, int, bool]:
    """(head_dim, number of key/value heads, keys double as values) of a layer of this type."""
    if layer_type == "sliding_attention":
        return config["head_dim"], config["num_key_value_heads"], False
    # a full_attention layer
    k_eq_v = bool(config["attention_k_eq_v"])
    kv_heads = config["num_key_value_heads"]
    if k_eq_v and config.get("num_global_key_value_heads") is not None:
        kv_heads = config["num_global_key_value_heads"]
    return config["global_head_dim"], kv_heads, k_eq_v


def attention_mask(seq_len: int, sliding_window: int | None) -> np.ndarray:
    """(S, S) bool, True where query i may attend to key j: j <= i, and i - j < W on a sliding layer."""
    i = np.arange(seq_len)[:, None]
    j = np.arange(seq_len)[None, :]
    allowed = j <= i
    if sliding_window is not None:
        allowed &= i - j < sliding_window
    return allowed


def gemma4_attention(hidden_states: np.ndarray, weights: dict, layer_type: str, config: dict) -> np.ndarray:
    """Self-attention of one Gemma 4 text layer (no RoPE).

    hidden_states: (B, S, D) float32. weights: q_proj (H*d, D), k_proj (K*d, D), v_proj (K*d, D) or
    None (keys double as values), o_proj (D, H*d), q_norm (d,), k_norm (d,); projections are
    applied as x @ W.T. layer_type: "sliding_attention" or "full_attention". Returns (B, S, D) float32.
    """
    x = np.asarray(hidden_states, dtype=np.float32)
    batch, seq_len, _ = x.shape
    num_heads = config["num_attention_heads"]
    eps = config["rms_norm_eps"]
    head_dim, kv_heads, k_eq_v = layer_shape(layer_type, config)
    groups = num_heads // kv_heads

    q = (x @ weights["q_proj"].T).reshape(batch, seq_len, num_heads, head_dim)
    k = (x @ weights["k_proj"].T).reshape(batch, seq_len, kv_heads, head_dim)
    # On a full layer with attention_k_eq_v, the raw key projection is also the value.
    v = k if k_eq_v else (x @ weights["v_proj"].T).reshape(batch, seq_len, kv_heads, head_dim)

    # QK-norm with the learned per-dimension scale (multiplied as it is), V-norm without a scale.
    q = rms_norm(q, eps, weights["q_norm"])
    k = rms_norm(k, eps, weights["k_norm"])
    v = rms_norm(v, eps)

    # (B, heads, S, d); query head h reads key/value head h // groups.
    q = q.transpose(0, 2, 1, 3)
    k = np.repeat(k.transpose(0, 2, 1, 3), groups, axis=1)
    v = np.repeat(v.transpose(0, 2, 1, 3), groups, axis=1)

    scores = q @ k.transpose(0, 1, 3, 2)          # scaling is 1.0: the norms already fix the scale
    window = config["sliding_window"] if layer_type == "sliding_attention" else None
    allowed = attention_mask(seq_len, window)
    scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs = probs / probs.sum(axis=-1, keepdims=True)

    out = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq_len, num_heads * head_dim)
    return (out @ weights["o_proj"].T).astype(np.float32)
