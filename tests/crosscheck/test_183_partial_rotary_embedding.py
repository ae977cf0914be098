"""Cross-check of 183-partial-rotary-embedding's reference against transformers' Gemma 4.

* rope_frequencies vs the per-layer-type inv_freq buffers of Gemma4TextRotaryEmbedding, built from
  small released-style Gemma4TextConfigs (head_dim 16 on sliding layers, global_head_dim 32 on full
  layers): the default rope_parameters from Gemma4TextConfig.__post_init__, and configs with other
  bases, proportions (rounded down), a proportional factor, and rope types swapped between the
  layer types;
* apply_rope vs apply_rotary_pos_emb with that module's cos/sin, on float32 and float16 heads at
  random positions up to max_position_embeddings - 1, within the statement's tolerance;
* inside a layer: the eager attention weights of Gemma4TextAttention (sliding and full layers)
  against softmax(rope(q_norm(q)) . rope(k_norm(k))) with the reference's rotation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from runner.modules import import_file

modeling = pytest.importorskip("transformers.models.gemma4.modeling_gemma4")
from transformers import Gemma4TextConfig  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "183-partial-rotary-embedding" / "solution.py"
SLIDING, FULL = "sliding_attention", "full_attention"
HEAD_DIM = {SLIDING: 16, FULL: 32}

ROPE_CONFIGS = {
    "defaults": None,
    "other bases and proportion": {
        SLIDING: {"rope_type": "default", "rope_theta": 50_000.0},
        FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 300_000.0}},
    "proportion rounded down": {
        SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
        FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.35, "rope_theta": 1_000_000.0}},
    "proportional factor": {
        SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
        FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0,
               "factor": 8.0}},
    "rope types swapped": {
        SLIDING: {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 10_000.0},
        FULL: {"rope_type": "default", "rope_theta": 1_000_000.0}},
}


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_183_partial_rotary_embedding")


def small_config(rope_parameters) -> Gemma4TextConfig:
    """Released conventions at small sizes: 5 sliding layers to 1 full one, a wider global head."""
    kwargs = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=6, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=HEAD_DIM[SLIDING], global_head_dim=HEAD_DIM[FULL],
                  sliding_window=8)
    if rope_parameters is not None:
        kwargs["rope_parameters"] = {k: dict(v) for k, v in rope_parameters.items()}
    config = Gemma4TextConfig(**kwargs)
    config._attn_implementation = "eager"
    return config


def test_release_defaults_are_the_statement_defaults(ref):
    config = small_config(None)
    assert config.rope_parameters == ref.GEMMA4_ROPE_PARAMETERS
    assert config.max_position_embeddings == 131_072
    assert config.layer_types == [SLIDING] * 5 + [FULL]


@pytest.mark.parametrize("name", list(ROPE_CONFIGS))
def test_frequencies(ref, name):
    rope = ROPE_CONFIGS[name]
    module = modeling.Gemma4TextRotaryEmbedding(small_config(rope))
    for layer_type in (SLIDING, FULL):
        want = getattr(module, f"{layer_type}_inv_freq").numpy()
        got = ref.rope_frequencies(HEAD_DIM[layer_type], layer_type, rope)
        assert got.dtype == np.float32 and got.shape == want.shape, (name, layer_type)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=f"{name} {layer_type}")
        assert np.array_equal(got == 0, want == 0), (name, layer_type)
        assert getattr(module, f"{layer_type}_attention_scaling") == 1.0


@pytest.mark.parametrize("name", list(ROPE_CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_rotation(ref, name, dtype):
    rope = ROPE_CONFIGS[name]
    module = modeling.Gemma4TextRotaryEmbedding(small_config(rope))
    gen = torch.Generator().manual_seed(10 * list(ROPE_CONFIGS).index(name) + (dtype == torch.float16))
    for layer_type in (SLIDING, FULL):
        for top in (1024, 131_072):
            positions = torch.randint(0, top, (3, 11), generator=gen)
            x = torch.randn(3, 11, 4, HEAD_DIM[layer_type], generator=gen).to(dtype)
            cos, sin = module(x, positions, layer_type)
            want = modeling.apply_rotary_pos_emb(x, cos, sin, unsqueeze_dim=2).numpy()
            got = ref.apply_rope(x.numpy(), positions.numpy(), layer_type, rope)
            assert got.dtype == want.dtype and got.shape == want.shape
            p = float(positions.max())
            atol, rtol = (1e-2 + 5e-7 * p, 1e-2) if dtype == torch.float16 else (2e-5 + 5e-7 * p, 1e-5)
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"{name} {layer_type} {dtype} positions < {top}")
            if dtype == torch.float32:   # the release is float32 too: far tighter than the tolerance
                assert np.abs(got - want).max() <= 1e-5


@pytest.mark.parametrize("layer_idx", [0, 5])
def test_inside_attention(ref, layer_idx):
    """Eager attention weights of a real layer, recomputed with the reference's rotation."""
    config = small_config(None)
    layer_type = config.layer_types[layer_idx]
    torch.manual_seed(7 + layer_idx)
    attn = modeling.Gemma4TextAttention(config, layer_idx).eval()
    rotary = modeling.Gemma4TextRotaryEmbedding(config)
    batch, seq = 2, 9
    hidden = torch.randn(batch, seq, config.hidden_size)
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8], [40, 41, 42, 43, 44, 45, 46, 47, 48]])
    with torch.no_grad():
        for norm in (attn.q_norm, attn.k_norm):
            norm.weight.copy_(1.0 + 0.5 * torch.randn_like(norm.weight))
        cos, sin = rotary(hidden, positions, layer_type)
        _, weights = attn(hidden, (cos, sin), None, {})
        q = attn.q_norm(attn.q_proj(hidden).view(batch, seq, -1, attn.head_dim)).numpy()
        k = attn.k_norm(attn.k_proj(hidden).view(batch, seq, -1, attn.head_dim)).numpy()
    assert attn.head_dim == HEAD_DIM[layer_type]
    q = ref.apply_rope(q, positions.numpy(), layer_type, None)
    k = ref.apply_rope(k, positions.numpy(), layer_type, None)
    k = np.repeat(k, config.num_attention_heads // k.shape[2], axis=2)
    scores = np.einsum("bqhd,bkhd->bhqk", q.astype(np.float64), k.astype(np.float64))   # scaling 1.0
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, weights.numpy(), rtol=1e-4, atol=1e-5)
