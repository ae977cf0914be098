"""Per-layer embeddings (problem 184): Gemma 4's per-layer inputs and the gate that adds them."""
from __future__ import annotations

import math

import numpy as np


def per_layer_inputs(
    input_ids: np.ndarray,
    inputs_embeds: np.ndarray,
    params: dict,
    config: dict,
    multimodal_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The per-layer input of every decoder layer.

    input_ids: (B, S) int64 token ids.
    inputs_embeds: (B, S, H) float32, what enters the first decoder layer.
    params: "embed_tokens_per_layer" (V, L * P), "per_layer_model_projection" (L * P, H),
        "per_layer_projection_norm" (P,), all float32.
    config: "hidden_size" H, "num_hidden_layers" L, "hidden_size_per_layer_input" P,
        "rms_norm_eps", "pad_token_id".
    multimodal_mask: None or (B, S) bool, True at image/audio soft tokens (look up the pad id there).
    Returns: (B, S, L, P) float32, (context + token identity) / sqrt(2) for every layer.
    """
    # your code here
    raise NotImplementedError


def apply_per_layer_gate(
    hidden_states: np.ndarray,
    per_layer_input: np.ndarray,
    layer_params: dict,
    config: dict,
) -> np.ndarray:
    """One decoder layer's PLE block, residual add included.

    hidden_states: (B, S, H) float32; per_layer_input: (B, S, P) float32.
    layer_params: "per_layer_input_gate" (P, H), "per_layer_projection" (H, P),
        "post_per_layer_input_norm" (H,), all float32.
    config: "rms_norm_eps" (and the sizes).
    Returns: (B, S, H) float32.
    """
    # your code here
    raise NotImplementedError
