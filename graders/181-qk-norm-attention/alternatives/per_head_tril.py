"""Alternative: one query head at a time, RMS via np.linalg.norm, mask from np.tril / np.triu."""
from __future__ import annotations

import numpy as np


def _rms(t, eps):
    d = t.shape[-1]
    return t / np.sqrt(np.linalg.norm(t, axis=-1, keepdims=True) ** 2 / d + eps)


def gemma4_attention(hidden_states, weights, layer_type, config):
    B, S, D = hidden_states.shape
    H = config["num_attention_heads"]
    eps = config["rms_norm_eps"]
    if layer_type == "sliding_attention":
        d, K, shared = config["head_dim"], config["num_key_value_heads"], False
        visible = np.tril(np.ones((S, S), dtype=bool)) & np.triu(np.ones((S, S), dtype=bool),
                                                                 k=-(config["sliding_window"] - 1))
    else:
        d, shared = config["global_head_dim"], bool(config["attention_k_eq_v"])
        global_kv = config["num_global_key_value_heads"]
        K = global_kv if (shared and global_kv is not None) else config["num_key_value_heads"]
        visible = np.tril(np.ones((S, S), dtype=bool))
    x = hidden_states.astype(np.float64)
    keys = x @ weights["k_proj"].T.astype(np.float64)
    values = keys.copy() if shared else x @ weights["v_proj"].T.astype(np.float64)
    queries = x @ weights["q_proj"].T.astype(np.float64)
    heads = []
    for h in range(H):
        g = h * K // H                      # the same as h // (H // K) when K divides H
        q = _rms(queries[..., h * d:(h + 1) * d], eps) * weights["q_norm"]
        k = _rms(keys[..., g * d:(g + 1) * d], eps) * weights["k_norm"]
        v = _rms(values[..., g * d:(g + 1) * d], eps)
        s = np.einsum("bid,bjd->bij", q, k)
        s[:, ~visible] = -np.inf
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        heads.append(p @ v)
    concat = np.concatenate(heads, axis=-1)
    return (concat @ weights["o_proj"].T.astype(np.float64)).astype(np.float32)
