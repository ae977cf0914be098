"""Cross-check of 181-qk-norm-attention's reference against transformers' Gemma 4.

The reference's gemma4_attention is compared with transformers' Gemma4TextAttention built from small
Gemma4TextConfig configurations in the release's style (sliding and full layers, a wider global
head, fewer global key/value heads, attention_k_eq_v on and off), with random projection and norm
weights. Rotary embedding is made the identity (cos = 1, sin = 0), since the problem leaves RoPE
out; the masks come from transformers' own create_causal_mask / create_sliding_window_causal_mask,
with the eager and sdpa attention interfaces.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from runner.modules import import_file

modeling = pytest.importorskip("transformers.models.gemma4.modeling_gemma4")
from transformers import Gemma4TextConfig  # noqa: E402
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "181-qk-norm-attention" / "solution.py"

LAYER_TYPES = ["sliding_attention", "sliding_attention", "full_attention"]


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_181_qk_norm_attention")


def make_config(attn: str, *, hidden=48, heads=4, kv_heads=2, head_dim=8, global_head_dim=16,
                global_kv_heads=1, k_eq_v=True, window=4) -> tuple[Gemma4TextConfig, dict]:
    kwargs = dict(vocab_size=64, hidden_size=hidden, intermediate_size=64, num_hidden_layers=3,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
                  global_head_dim=global_head_dim, sliding_window=window, layer_types=list(LAYER_TYPES),
                  attention_k_eq_v=k_eq_v, rms_norm_eps=1e-6, hidden_size_per_layer_input=0)
    if global_kv_heads is not None:
        kwargs["num_global_key_value_heads"] = global_kv_heads
    config = Gemma4TextConfig(**kwargs)
    config._attn_implementation = attn
    ours = dict(num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
                global_head_dim=global_head_dim, num_global_key_value_heads=global_kv_heads,
                attention_k_eq_v=k_eq_v, sliding_window=window, rms_norm_eps=1e-6)
    return config, ours


def release_layer(config, layer_idx: int, gen: torch.Generator):
    """transformers' attention module with random weights (norm scales too), in eval mode."""
    layer = modeling.Gemma4TextAttention(config, layer_idx).eval()
    with torch.no_grad():
        for name, param in layer.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(0.5 + torch.rand(param.shape, generator=gen))   # away from 1, positive
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * param.shape[-1] ** -0.5)
    weights = {name.removesuffix(".weight"): p.detach().numpy().copy() for name, p in layer.named_parameters()}
    weights.setdefault("v_proj", None)
    return layer, weights


def release_forward(config, layer, hidden: torch.Tensor) -> torch.Tensor:
    batch, seq_len, _ = hidden.shape
    position_ids = torch.arange(seq_len)[None]
    mask_kwargs = dict(config=config, inputs_embeds=hidden, attention_mask=None, past_key_values=None,
                       position_ids=position_ids)
    mask = (create_sliding_window_causal_mask(**mask_kwargs) if layer.is_sliding
            else create_causal_mask(**mask_kwargs))
    cos = torch.ones(batch, seq_len, layer.head_dim)      # rotary embedding made the identity
    sin = torch.zeros(batch, seq_len, layer.head_dim)
    with torch.no_grad():
        out, _ = layer(hidden, (cos, sin), mask, shared_kv_states={})
    return out


CASES = [  # (seed, batch, seq_len, config overrides)
    (0, 2, 9, {}),
    (1, 1, 12, dict(window=3)),
    (2, 3, 6, dict(window=8)),                                      # window longer than the sequence
    (3, 2, 10, dict(k_eq_v=False)),                                 # full layer: own v_proj, sliding kv heads
    (4, 2, 11, dict(heads=6, kv_heads=3, global_kv_heads=2, window=5)),
    (5, 2, 8, dict(heads=4, kv_heads=4, global_kv_heads=None)),     # k_eq_v without a global kv count
    (6, 1, 7, dict(head_dim=16, global_head_dim=16, kv_heads=1, window=2)),
]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("seed,batch,seq_len,overrides", CASES)
def test_attention_matches_release(ref, attn, seed, batch, seq_len, overrides):
    gen = torch.Generator().manual_seed(seed)
    config, ours = make_config(attn, **overrides)
    hidden = torch.randn(batch, seq_len, config.hidden_size, generator=gen)
    for layer_idx, layer_type in enumerate(LAYER_TYPES):
        layer, weights = release_layer(config, layer_idx, gen)
        want = release_forward(config, layer, hidden).numpy()
        got = ref.gemma4_attention(hidden.numpy(), weights, layer_type, ours)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5, err_msg=f"{layer_type} (seed {seed})")


def test_release_layer_shapes(ref):
    """The per-layer head_dim, key/value head count and k_eq_v the reference reads from the config
    are the ones transformers builds its layers with."""
    for overrides in [{}, dict(k_eq_v=False), dict(global_kv_heads=None), dict(heads=6, kv_heads=3, global_kv_heads=2)]:
        config, ours = make_config("eager", **overrides)
        for layer_idx, layer_type in enumerate(LAYER_TYPES):
            layer = modeling.Gemma4TextAttention(config, layer_idx)
            head_dim, kv_heads, k_eq_v = ref.layer_shape(layer_type, ours)
            assert layer.head_dim == head_dim
            assert layer.k_proj.out_features == kv_heads * head_dim
            assert (layer.v_proj is None) == k_eq_v
            assert layer.scaling == 1.0


def test_norms_match_release(ref):
    """q_norm/k_norm scale by their weight as it is (not 1 + weight); v_norm has no weight."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 5, 16, generator=gen) * 0.01
    weight = torch.rand(16, generator=gen) + 0.5
    scaled = modeling.Gemma4RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        scaled.weight.copy_(weight)
    plain = modeling.Gemma4RMSNorm(16, eps=1e-6, with_scale=False)
    assert not list(plain.parameters())
    with torch.no_grad():
        np.testing.assert_allclose(ref.rms_norm(x.numpy(), 1e-6, weight.numpy()), scaled(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ref.rms_norm(x.numpy(), 1e-6), plain(x).numpy(), rtol=1e-5, atol=1e-6)


def test_long_sequence_sliding_window_limits_reach(ref):
    """With a sequence much longer than the window, the release's sliding layer output at the last
    position does not change when the tokens outside the window change; the reference agrees."""
    gen = torch.Generator().manual_seed(8)
    config, ours = make_config("eager", window=4)
    layer, weights = release_layer(config, 0, gen)
    hidden = torch.randn(1, 16, config.hidden_size, generator=gen)
    changed = hidden.clone()
    changed[:, :12] = torch.randn(1, 12, config.hidden_size, generator=gen)
    a, b = release_forward(config, layer, hidden)[0, -1], release_forward(config, layer, changed)[0, -1]
    assert torch.allclose(a, b, atol=1e-6)
    ra = ref.gemma4_attention(hidden.numpy(), weights, "sliding_attention", ours)[0, -1]
    rb = ref.gemma4_attention(changed.numpy(), weights, "sliding_attention", ours)[0, -1]
    np.testing.assert_allclose(ra, rb, atol=1e-6)
    np.testing.assert_allclose(ra, a.numpy(), rtol=1e-4, atol=2e-5)
