"""Alternative: explicit loops over batch rows, heads and queries, all in float64."""
from __future__ import annotations

import math

import numpy as np


def _normalise(u, eps, scale=None):
    out = u / math.sqrt(float(np.dot(u, u)) / u.shape[0] + eps)
    return out if scale is None else out * scale


def gemma4_attention(hidden_states, weights, layer_type, config):
    x = np.asarray(hidden_states, dtype=np.float64)
    B, S, D = x.shape
    H = config["num_attention_heads"]
    eps = float(config["rms_norm_eps"])
    sliding = layer_type == "sliding_attention"
    if sliding:
        d, K, shared = config["head_dim"], config["num_key_value_heads"], False
    else:
        d = config["global_head_dim"]
        shared = bool(config["attention_k_eq_v"])
        K = config["num_key_value_heads"]
        if shared and config["num_global_key_value_heads"] is not None:
            K = config["num_global_key_value_heads"]
    wq = np.asarray(weights["q_proj"], dtype=np.float64)
    wk = np.asarray(weights["k_proj"], dtype=np.float64)
    wv = wk if shared else np.asarray(weights["v_proj"], dtype=np.float64)
    wo = np.asarray(weights["o_proj"], dtype=np.float64)
    q_scale = np.asarray(weights["q_norm"], dtype=np.float64)
    k_scale = np.asarray(weights["k_norm"], dtype=np.float64)
    per_group = H // K
    out = np.zeros((B, S, D))
    for b in range(B):
        for h in range(H):
            g = h // per_group
            wq_h, wk_g, wv_g = wq[h * d:(h + 1) * d], wk[g * d:(g + 1) * d], wv[g * d:(g + 1) * d]
            keys = [_normalise(wk_g @ x[b, t], eps, k_scale) for t in range(S)]
            values = [_normalise(wv_g @ x[b, t], eps) for t in range(S)]
            for i in range(S):
                query = _normalise(wq_h @ x[b, i], eps, q_scale)
                start = max(0, i - config["sliding_window"] + 1) if sliding else 0
                scores = [float(np.dot(query, keys[j])) for j in range(start, i + 1)]
                top = max(scores)
                exps = [math.exp(s - top) for s in scores]
                total = sum(exps)
                mixed = sum(e / total * values[j] for e, j in zip(exps, range(start, i + 1)))
                out[b, i] += wo[:, h * d:(h + 1) * d] @ mixed
    return out.astype(np.float32)
