"""Alternative: einsum over (key/value head, group) axes without repeating K/V, additive mask."""
from __future__ import annotations

import numpy as np


def gemma4_attention(hidden_states, weights, layer_type, config):
    x = hidden_states
    B, S, _ = x.shape
    H = config["num_attention_heads"]
    eps = config["rms_norm_eps"]
    is_full = layer_type == "full_attention"
    d = config["global_head_dim"] if is_full else config["head_dim"]
    k_eq_v = is_full and config["attention_k_eq_v"]
    K = config["num_key_value_heads"]
    if k_eq_v and config["num_global_key_value_heads"]:
        K = config["num_global_key_value_heads"]
    G = H // K

    def rms(t):
        return t / np.sqrt((t * t).mean(-1, keepdims=True) + eps)

    q = np.einsum("bsx,ox->bso", x, weights["q_proj"]).reshape(B, S, K, G, d)
    k_raw = np.einsum("bsx,ox->bso", x, weights["k_proj"]).reshape(B, S, K, d)
    v_raw = k_raw if k_eq_v else np.einsum("bsx,ox->bso", x, weights["v_proj"]).reshape(B, S, K, d)
    q = rms(q) * weights["q_norm"]
    k = rms(k_raw) * weights["k_norm"]
    v = rms(v_raw)

    pos = np.arange(S)
    gap = pos[:, None] - pos[None, :]
    keep = gap >= 0
    if not is_full:
        keep = keep & (gap < config["sliding_window"])
    bias = np.where(keep, 0.0, -1e30).astype(np.float32)

    scores = np.einsum("bikgd,bjkd->bkgij", q, k) + bias
    scores -= scores.max(-1, keepdims=True)
    w = np.exp(scores)
    w /= w.sum(-1, keepdims=True)
    ctx = np.einsum("bkgij,bjkd->bikgd", w, v).reshape(B, S, H * d)
    return np.einsum("bsi,oi->bso", ctx, weights["o_proj"]).astype(np.float32)
