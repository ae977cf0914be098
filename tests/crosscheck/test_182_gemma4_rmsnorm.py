"""Cross-check of 182-gemma4-rmsnorm's reference against transformers' Gemma 4.

Every Gemma4RMSNorm module of decoder layers built from a small released-style Gemma4TextConfig
(sliding and full layers, MoE block, per-layer inputs; q/k norms with a scale, the values' and
router's norms without one) is run on random inputs and compared with the NumPy reference:
float32 within rtol 1e-5 / atol 1e-6; float16 (modules and inputs in half precision, or a
float16 input through float32 weights) within one float16 step and exactly equal in >= 99% of
entries; bfloat16 (which NumPy lacks) by rounding the reference's float32 answer of the same
inputs once to bfloat16.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from runner.modules import import_file

modeling = pytest.importorskip("transformers.models.gemma4.modeling_gemma4")
from transformers import Gemma4TextConfig  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "182-gemma4-rmsnorm" / "solution.py"


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_182_gemma4_rmsnorm")


def small_config() -> Gemma4TextConfig:
    """Released conventions at small sizes: 5 sliding layers to 1 full one, a wider global head,
    MoE block and per-layer inputs on, the default rms_norm_eps."""
    return Gemma4TextConfig(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=6,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=16, global_head_dim=32,
                            enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=32,
                            hidden_size_per_layer_input=8, sliding_window=8)


def all_norms(config: Gemma4TextConfig, seed: int) -> list[tuple[str, torch.nn.Module, int]]:
    """(name, module, normalised dim) of every RMSNorm of one sliding and one full decoder layer,
    with trained-looking weights (around 1, some far from it, a few negative)."""
    torch.manual_seed(seed)
    norms = []
    for layer_idx in (0, config.num_hidden_layers - 1):
        layer = modeling.Gemma4TextDecoderLayer(config, layer_idx).eval()
        for name, module in layer.named_modules():
            if isinstance(module, modeling.Gemma4RMSNorm):
                if module.with_scale:
                    with torch.no_grad():
                        module.weight.copy_(1.0 + 0.6 * torch.randn_like(module.weight))
                    dim = module.weight.shape[0]
                else:   # the values' norm works on a head, the router's on the hidden state
                    dim = layer.self_attn.head_dim if name.endswith("v_norm") else config.hidden_size
                norms.append((f"layer {layer_idx} {name}", module, dim))
    return norms


def numpy_weight(module):
    return module.weight.detach().numpy().copy() if module.with_scale else None


def inputs(gen: torch.Generator, dim: int, scale_low: float, scale_high: float) -> torch.Tensor:
    """(2, 5, 3, dim) float32: vectors of RMS spread over [scale_low, scale_high]."""
    x = torch.randn(2, 5, 3, dim, generator=gen)
    logs = torch.empty(2, 5, 3, 1).uniform_(np.log(scale_low), np.log(scale_high), generator=gen)
    return x * logs.exp()


def test_config_conventions():
    """The conventions the problem states are the released ones."""
    config = small_config()
    assert config.rms_norm_eps == 1e-6
    norms = all_norms(config, 0)
    names = {name.split(" ", 2)[2]: module for name, module, _ in norms}
    dims = {name: dim for name, _, dim in norms}
    assert dims["layer 0 self_attn.v_norm"] == 16 and dims["layer 5 self_attn.v_norm"] == 32
    assert not names["self_attn.v_norm"].with_scale and not names["router.norm"].with_scale
    assert names["self_attn.q_norm"].with_scale and names["input_layernorm"].with_scale
    fresh = modeling.Gemma4RMSNorm(8)
    assert torch.equal(fresh.weight, torch.ones(8)), "Gemma 4 initialises the scale to ones"
    x = torch.randn(3, 8)
    assert torch.allclose(fresh(x), x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


@pytest.mark.parametrize("scales", [(0.5, 5.0), (1e-4, 3e-3), (50.0, 2000.0)])
def test_float32(ref, scales):
    config = small_config()
    gen = torch.Generator().manual_seed(1)
    for name, module, dim in all_norms(config, 1):
        x = inputs(gen, dim, *scales)
        with torch.no_grad():
            want = module(x).numpy()
        got = ref.rms_norm(x.numpy(), numpy_weight(module), module.eps)
        assert got.dtype == np.float32 and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


def assert_half_close(got: np.ndarray, want: np.ndarray, name: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, name
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=1e-6,
                               err_msg=name)
    assert np.mean(got == want) >= 0.99, name


@pytest.mark.parametrize("scales", [(0.5, 8.0), (100.0, 3000.0)])
def test_float16(ref, scales):
    """Modules and inputs in float16, and float16 inputs through float32 modules."""
    config = small_config()
    gen = torch.Generator().manual_seed(2)
    for name, module, dim in all_norms(config, 2):
        x = inputs(gen, dim, *scales).half()
        w32 = numpy_weight(module)
        with torch.no_grad():
            want32w = module(x).numpy()                      # float32 weight, float16 input
            half = module.half()
            want16w = half(x).numpy()                        # both float16
        assert want32w.dtype == np.float16 and want16w.dtype == np.float16
        w16 = numpy_weight(half)
        assert_half_close(ref.rms_norm(x.numpy(), w32, module.eps), want32w, name)
        assert_half_close(ref.rms_norm(x.numpy(), w16, module.eps), want16w, name)


def test_bfloat16_rounds_once(ref):
    """bfloat16 (no NumPy dtype): the release's answer is the float32 result rounded once."""
    config = small_config()
    gen = torch.Generator().manual_seed(3)
    for name, module, dim in all_norms(config, 3):
        module = module.to(torch.bfloat16)
        x = inputs(gen, dim, 0.5, 500.0).to(torch.bfloat16)
        with torch.no_grad():
            want = module(x).float().numpy()
        w = None if not module.with_scale else module.weight.float().detach().numpy()
        got32 = ref.rms_norm(x.float().numpy(), w, module.eps)
        got = torch.from_numpy(got32).to(torch.bfloat16).float().numpy()
        np.testing.assert_allclose(got, want, rtol=8e-3, atol=1e-6, err_msg=name)
        assert np.mean(got == want) >= 0.99, name


def test_inside_a_layer(ref):
    """The q, k and v norms on the projections of a real layer, per head over the head dimension."""
    config = small_config()
    torch.manual_seed(4)
    layer = modeling.Gemma4TextDecoderLayer(config, 0).eval()
    attn = layer.self_attn
    with torch.no_grad():
        for norm in (attn.q_norm, attn.k_norm):
            norm.weight.copy_(1.0 + 0.6 * torch.randn_like(norm.weight))
        h = torch.randn(2, 7, config.hidden_size)
        q = attn.q_proj(h).view(2, 7, -1, attn.head_dim)
        k = attn.k_proj(h).view(2, 7, -1, attn.head_dim)
        v = attn.v_proj(h).view(2, 7, -1, attn.head_dim)
        for proj, norm, weight in ((q, attn.q_norm, attn.q_norm.weight), (k, attn.k_norm, attn.k_norm.weight),
                                   (v, attn.v_norm, None)):
            want = norm(proj).numpy()
            got = ref.rms_norm(proj.numpy(), None if weight is None else weight.numpy(), config.rms_norm_eps)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
