"""Reference solution of 184-per-layer-embeddings: Gemma 4's per-layer embeddings (PLE)."""
from __future__ import annotations

import math

import numpy as np


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Gemma 4's RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight (no 1 + weight)."""
    x64 = x.astype(np.float64)
    mean_square = np.mean(x64 * x64, axis=-1, keepdims=True)
    return x64 / np.sqrt(mean_square + eps) * weight.astype(np.float64)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU with the tanh approximation (gelu_pytorch_tanh)."""
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
    return 0.5 * x * (1.0 + np.tanh(inner))


def per_layer_inputs(input_ids, inputs_embeds, params, config, multimodal_mask=None):
    """The per-layer input of every decoder layer, (B, S, num_layers, P) float32."""
    num_layers = int(config["num_hidden_layers"])
    per_layer = int(config["hidden_size_per_layer_input"])
    hidden = int(config["hidden_size"])
    eps = float(config["rms_norm_eps"])
    batch, seq = input_ids.shape

    # token identity: one row of the packed table per token, scaled by sqrt(P)
    ids = input_ids
    if multimodal_mask is not None:
        ids = np.where(multimodal_mask, int(config["pad_token_id"]), input_ids)
    table = params["embed_tokens_per_layer"].astype(np.float64)
    identity = table[ids] * math.sqrt(per_layer)
    identity = identity.reshape(batch, seq, num_layers, per_layer)

    # context: project the (merged) input embeddings, scale by 1/sqrt(H), split per layer, normalize
    projection = params["per_layer_model_projection"].astype(np.float64)
    context = inputs_embeds.astype(np.float64) @ projection.T / math.sqrt(hidden)
    context = context.reshape(batch, seq, num_layers, per_layer)
    context = _rms_norm(context, params["per_layer_projection_norm"], eps)

    return ((context + identity) / math.sqrt(2.0)).astype(np.float32)


def apply_per_layer_gate(hidden_states, per_layer_input, layer_params, config):
    """One decoder layer's PLE block: hidden + norm(up(gelu(gate(hidden)) * per_layer_input))."""
    eps = float(config["rms_norm_eps"])
    residual = hidden_states.astype(np.float64)
    gate = layer_params["per_layer_input_gate"].astype(np.float64)       # (P, H)
    up = layer_params["per_layer_projection"].astype(np.float64)         # (H, P)

    gated = _gelu_tanh(residual @ gate.T) * per_layer_input.astype(np.float64)
    branch = _rms_norm(gated @ up.T, layer_params["post_per_layer_input_norm"], eps)
    return (residual + branch).astype(np.float32)
