"""Alternative: one position and one layer at a time, in Python floats."""
from __future__ import annotations

import math

import numpy as np


def _norm(values: list[float], weight: list[float], eps: float) -> list[float]:
    inv = 1.0 / math.sqrt(sum(v * v for v in values) / len(values) + eps)
    return [v * inv * w for v, w in zip(values, weight)]


def _gelu(z: float) -> float:
    return 0.5 * z * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))


def per_layer_inputs(input_ids, inputs_embeds, params, config, multimodal_mask=None):
    n = config["num_hidden_layers"]
    p = config["hidden_size_per_layer_input"]
    h = config["hidden_size"]
    eps = config["rms_norm_eps"]
    table = params["embed_tokens_per_layer"].tolist()
    proj = params["per_layer_model_projection"].tolist()
    weight = params["per_layer_projection_norm"].tolist()
    batch, seq = input_ids.shape
    out = np.zeros((batch, seq, n, p), dtype=np.float32)
    for b in range(batch):
        for s in range(seq):
            token = int(input_ids[b, s])
            if multimodal_mask is not None and bool(multimodal_mask[b, s]):
                token = int(config["pad_token_id"])
            row = table[token]
            x = inputs_embeds[b, s].tolist()
            for layer in range(n):
                context = [sum(proj[layer * p + j][k] * x[k] for k in range(h)) / math.sqrt(h) for j in range(p)]
                context = _norm(context, weight, eps)
                for j in range(p):
                    identity = row[layer * p + j] * math.sqrt(p)
                    out[b, s, layer, j] = (context[j] + identity) / math.sqrt(2.0)
    return out


def apply_per_layer_gate(hidden_states, per_layer_input, layer_params, config):
    eps = config["rms_norm_eps"]
    gate = layer_params["per_layer_input_gate"].tolist()
    up = layer_params["per_layer_projection"].tolist()
    weight = layer_params["post_per_layer_input_norm"].tolist()
    batch, seq, h = hidden_states.shape
    p = len(gate)
    out = np.zeros((batch, seq, h), dtype=np.float32)
    for b in range(batch):
        for s in range(seq):
            x = hidden_states[b, s].tolist()
            e = per_layer_input[b, s].tolist()
            g = [_gelu(sum(gate[j][k] * x[k] for k in range(h))) * e[j] for j in range(p)]
            branch = _norm([sum(up[i][j] * g[j] for j in range(p)) for i in range(h)], weight, eps)
            out[b, s] = [xi + bi for xi, bi in zip(x, branch)]
    return out
