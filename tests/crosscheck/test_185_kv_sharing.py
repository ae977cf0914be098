"""Cross-check of 185-kv-sharing's reference against transformers' Gemma 4 text model.

* kv_source_layers vs Gemma4TextConfig.kv_sharing_modes on random layer-type patterns (which layers
  reuse, which store, and when the config refuses a pattern), and vs the key/value tensors each
  layer of a tiny Gemma4TextModel actually attends to in a forward pass (eager attention);
* kv_cache_bytes vs the bytes held by the DynamicCache that the same forward pass fills (prefill
  shorter and longer than the sliding window, then decode steps), float32 and bfloat16, with
  per-layer head sizes (global_head_dim, num_global_key_value_heads with attention_k_eq_v).
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from runner.modules import import_file

modeling = pytest.importorskip("transformers.models.gemma4.modeling_gemma4")
from transformers.models.gemma4 import Gemma4TextConfig  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "185-kv-sharing" / "solution.py"
S, F = "sliding_attention", "full_attention"


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_185_kv_sharing")


def tiny_config(layer_types, num_kv_shared_layers, sliding_window=5, k_eq_v=True):
    config = Gemma4TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=len(layer_types),
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, global_head_dim=16,
        num_global_key_value_heads=1, attention_k_eq_v=k_eq_v, sliding_window=sliding_window,
        layer_types=list(layer_types), num_kv_shared_layers=num_kv_shared_layers,
        hidden_size_per_layer_input=4, vocab_size_per_layer_input=64,
        pad_token_id=0, eos_token_id=1, bos_token_id=2)
    config._attn_implementation = "eager"
    return config


def _raises(call) -> bool:
    try:
        call()
    except ValueError:
        return True
    return False


def test_sources_agree_with_kv_sharing_modes(ref):
    rnd = random.Random(185)
    checked = refused = 0
    for _ in range(300):
        n_layers = rnd.randint(1, 14)
        # the config forces the last layer to full attention: draw patterns that already end so
        types = [rnd.choice([S, S, S, F]) for _ in range(n_layers - 1)] + [F]
        n_shared = rnd.randint(0, n_layers)
        config = tiny_config(types, n_shared)
        hf_refuses = _raises(lambda: config.kv_sharing_modes)
        ours_refuses = _raises(lambda: ref.kv_source_layers(types, n_shared))
        assert hf_refuses == ours_refuses, (types, n_shared)
        if hf_refuses:
            refused += 1
            continue
        modes = config.kv_sharing_modes
        sources = ref.kv_source_layers(types, n_shared)
        assert len(sources) == n_layers
        for i, (mode, src) in enumerate(zip(modes, sources)):
            assert (mode == "reuse") == (src != i), (types, n_shared, i)
            if src != i:
                assert modes[src] == "store" and types[src] == types[i]
                # the source is the LAST non-shared layer of that type
                assert all(types[j] != types[i] for j in range(src + 1, n_layers - n_shared))
        checked += 1
    assert checked > 100 and refused > 10


@pytest.mark.parametrize("types,n_shared", [
    ([S, S, F, S, F, S, S, F], 4),
    ([S, F, S, S, F, S, F], 3),
    ([S, S, S, S, F] * 3, 6),
    ([S, F, F], 0),
])
def test_layers_attend_to_their_source_kv_and_cache_bytes(ref, types, n_shared, monkeypatch):
    config = tiny_config(types, n_shared)
    torch.manual_seed(len(types) * 10 + n_shared)
    model = modeling.Gemma4TextModel(config).eval()
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    eager = modeling.eager_attention_forward

    def spy(module, query, key, value, *args, **kwargs):
        seen[module.layer_idx] = (key, value)
        return eager(module, query, key, value, *args, **kwargs)

    monkeypatch.setattr(modeling, "eager_attention_forward", spy)
    sources = ref.kv_source_layers(types, n_shared)
    head_dims = [c.head_dim for c in config.per_layer_config]
    kv_heads = [c.num_key_value_heads for c in config.per_layer_config]
    batch = 2
    g = torch.Generator().manual_seed(7)
    for dtype, nbytes in ((torch.float32, 4), (torch.bfloat16, 2)):
        model = model.to(dtype)
        for prefill in (3, 9):  # shorter and longer than the window of 5
            ids = torch.randint(3, 64, (batch, prefill), generator=g)
            with torch.no_grad():
                out = model(input_ids=ids, use_cache=True)
            cache = out.past_key_values
            length = prefill
            for step in range(3):
                for i, src in enumerate(sources):
                    k, v = seen[i]
                    # a layer reads exactly the tensors its source layer produced
                    assert k is seen[src][0] and v is seen[src][1], (i, src)
                    if src == i:
                        assert all(seen[j][0] is not k for j in range(len(types)) if sources[j] != i)
                held = 0
                for i, layer in enumerate(cache.layers):
                    keys = getattr(layer, "keys", None)
                    if sources[i] != i:
                        assert keys is None or keys.numel() == 0, "a shared layer holds a cache entry"
                        continue
                    held += keys.numel() * keys.element_size() + layer.values.numel() * layer.values.element_size()
                expected = ref.kv_cache_bytes(types, n_shared, config.sliding_window, head_dims, kv_heads,
                                              length, batch, nbytes)
                assert held == expected, (dtype, prefill, step, held, expected)
                # one decode step
                seen.clear()
                with torch.no_grad():
                    out = model(input_ids=torch.randint(3, 64, (batch, 1), generator=g),
                                past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                length += 1


def test_sharing_saves_against_the_unshared_model(ref):
    """The unshared baseline: the same model with num_kv_shared_layers = 0 holds every layer."""
    types = [S, S, F, S, F, S, S, F]
    config = tiny_config(types, 0)
    model = modeling.Gemma4TextModel(config).eval()
    head_dims = [c.head_dim for c in config.per_layer_config]
    kv_heads = [c.num_key_value_heads for c in config.per_layer_config]
    with torch.no_grad():
        out = model(input_ids=torch.randint(3, 64, (1, 11)), use_cache=True)
    held = sum(l.keys.numel() * 4 + l.values.numel() * 4 for l in out.past_key_values.layers)
    assert held == ref.kv_cache_bytes(types, 0, config.sliding_window, head_dims, kv_heads, 11, 1, 4)
    assert ref.kv_cache_bytes(types, 4, config.sliding_window, head_dims, kv_heads, 11, 1, 4) < held
