"""Alternative: the table viewed as (V, L, P) up front, einsum contractions, float32 throughout."""
from __future__ import annotations

import numpy as np


def _rms(x, w, eps):
    return x * (1.0 / np.sqrt(np.square(x).mean(axis=-1, keepdims=True) + np.float32(eps))) * w


def per_layer_inputs(input_ids, inputs_embeds, params, config, multimodal_mask=None):
    n = config["num_hidden_layers"]
    p = config["hidden_size_per_layer_input"]
    h = config["hidden_size"]
    table = params["embed_tokens_per_layer"].reshape(-1, n, p)           # (V, L, P)
    proj = params["per_layer_model_projection"].reshape(n, p, h)         # (L, P, H)
    ids = input_ids if multimodal_mask is None else np.where(multimodal_mask, config["pad_token_id"], input_ids)
    identity = np.take(table, ids, axis=0) * np.float32(np.sqrt(p))      # (B, S, L, P)
    context = np.einsum("bsh,lph->bslp", inputs_embeds, proj) * np.float32(h ** -0.5)
    context = _rms(context, params["per_layer_projection_norm"], config["rms_norm_eps"])
    return ((context + identity) * np.float32(2.0 ** -0.5)).astype(np.float32)


def apply_per_layer_gate(hidden_states, per_layer_input, layer_params, config):
    z = np.einsum("bsh,ph->bsp", hidden_states, layer_params["per_layer_input_gate"])
    c = np.float32(np.sqrt(2.0 / np.pi))
    act = np.float32(0.5) * z * (np.float32(1.0) + np.tanh(c * (z + np.float32(0.044715) * z * z * z)))
    up = np.einsum("bsp,hp->bsh", act * per_layer_input, layer_params["per_layer_projection"])
    branch = _rms(up, layer_params["post_per_layer_input_norm"], config["rms_norm_eps"])
    return (hidden_states + branch).astype(np.float32)
