"""Cross-check of 417-attention-masking's reference against transformers' DiffusionGemma.

* decoder_attention_mask vs DiffusionGemmaDecoderModel.create_diffusion_decoder_attention_mask, on a
  DynamicCache of a tiny DiffusionGemma config (full and sliding layers, padded prefixes), with the
  sdpa and eager mask interfaces, and vs the attention weights of a tiny model's decoder forward;
* encoder_attention_mask vs DiffusionGemmaEncoderModel.create_masks_for_generate with
  mm_token_type_ids (use_bidirectional_attention == "vision");
* block_diffusion_training_mask (transformers ships inference only) vs a brute-force construction
  from the definition of the BD3-LM training mask.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runner.modules import import_file

modeling = pytest.importorskip("transformers.models.diffusion_gemma.modeling_diffusion_gemma")
from transformers import DiffusionGemmaConfig, DynamicCache  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "417-attention-masking" / "solution.py"

HEAD_DIM = 8


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_417_attention_masking")


def tiny_config(sliding_window: int, canvas_length: int, attn: str) -> DiffusionGemmaConfig:
    """A tiny DiffusionGemma config: one sliding and one full layer, a tiny vision tower."""
    from transformers.models.gemma4 import Gemma4VisionConfig

    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2, head_dim=8)
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=HEAD_DIM, global_head_dim=HEAD_DIM,
                sliding_window=sliding_window, layer_types=["sliding_attention", "full_attention"],
                use_bidirectional_attention="vision", num_experts=2, top_k_experts=1,
                moe_intermediate_size=16, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length)
    config._attn_implementation = attn
    config.text_config._attn_implementation = attn
    return config


def filled_cache(config: DiffusionGemmaConfig, batch: int, prefix_length: int, gen: torch.Generator):
    """A DynamicCache as the encoder leaves it after prefilling `prefix_length` tokens (random K/V)."""
    cache = DynamicCache(config=config)
    for layer_idx in range(len(cache.layers)):
        k = torch.randn(batch, 1, prefix_length, HEAD_DIM, generator=gen)
        cache.update(k, k.clone(), layer_idx)
    return cache


def random_prefix_mask(gen: torch.Generator, batch: int, prefix_length: int) -> torch.Tensor:
    """Left padding, scattered pads (tokens after an EOS), and one row with no padding at all."""
    mask = torch.rand(batch, prefix_length, generator=gen) > 0.3
    left = torch.randint(0, prefix_length + 1, (batch,), generator=gen)
    mask &= torch.arange(prefix_length)[None, :] >= left[:, None] // 2
    mask[0] = True
    return mask


def as_bool(mask: torch.Tensor) -> torch.Tensor:
    """A 4D mask of the sdpa (bool) or eager (0 / large negative float) interface, as (B, Q, K) bool."""
    assert mask.ndim == 4 and mask.shape[1] == 1
    mask = mask[:, 0]
    return mask if mask.dtype == torch.bool else mask == 0


def release_decoder_masks(config, cache, prefix_mask: torch.Tensor, canvas_length: int) -> dict:
    """transformers' decoder masks, spread over the full key axis [prefix (P) ; canvas (C)].

    The release's key axis for a layer is the cache's kept keys plus the canvas: kv_length keys
    starting at absolute position kv_offset; positions before kv_offset are not in the cache at
    all, hence invisible."""
    batch, prefix_length = prefix_mask.shape
    decoder_mask_2d = torch.nn.functional.pad(prefix_mask, (0, canvas_length), value=True)
    embeds = torch.zeros(batch, canvas_length, 4)
    mapping = modeling.DiffusionGemmaDecoderModel.create_diffusion_decoder_attention_mask(
        config=config.text_config, inputs_embeds=embeds, past_key_values=cache,
        decoder_attention_mask=decoder_mask_2d)
    out = {}
    for layer_type, mask in mapping.items():
        layer_idx = cache.is_sliding.index(layer_type == "sliding_attention")
        kv_length, kv_offset = cache.get_mask_sizes(canvas_length, layer_idx)
        # the keys the decoder layer really attends over: the kept cache entries plus the canvas
        assert cache.layers[layer_idx].keys.shape[-2] + canvas_length == kv_length
        assert kv_offset + kv_length == prefix_length + canvas_length
        if mask is None:  # the shortcut: no padding, attend to every kept key
            local = torch.ones(batch, canvas_length, kv_length, dtype=torch.bool)
        else:
            local = as_bool(mask)
        assert local.shape == (batch, canvas_length, kv_length)
        full = torch.zeros(batch, canvas_length, prefix_length + canvas_length, dtype=torch.bool)
        full[:, :, kv_offset:] = local
        out[layer_type] = full
    return out


CASES = [  # (seed, batch, prefix_length, canvas_length, sliding_window)
    (0, 3, 7, 3, 4),
    (1, 2, 9, 5, 2),
    (2, 4, 5, 4, 8),    # window longer than the prefix: the whole prefix is kept
    (3, 3, 6, 2, 6),    # window equal to the prefix length
    (4, 2, 12, 6, 7),
    (5, 3, 10, 8, 3),   # canvas longer than the window: the window never restricts the canvas
    (6, 1, 4, 2, 5),
]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("seed,batch,prefix_length,canvas_length,window", CASES)
def test_decoder_mask_matches_release(ref, attn, seed, batch, prefix_length, canvas_length, window):
    gen = torch.Generator().manual_seed(seed)
    config = tiny_config(window, canvas_length, attn)
    cache = filled_cache(config, batch, prefix_length, gen)
    prefix_mask = random_prefix_mask(gen, batch, prefix_length)
    release = release_decoder_masks(config, cache, prefix_mask, canvas_length)
    ours_full = ref.decoder_attention_mask(prefix_mask, canvas_length)
    ours_sliding = ref.decoder_attention_mask(prefix_mask, canvas_length, sliding_window=window)
    assert ours_full.dtype == torch.bool and ours_sliding.dtype == torch.bool
    assert torch.equal(ours_full, release["full_attention"])
    assert torch.equal(ours_sliding, release["sliding_attention"])


def test_decoder_mask_without_padding_matches_release(ref):
    """No padding: the release skips the mask (None) and attends to every key the cache kept."""
    gen = torch.Generator().manual_seed(11)
    config = tiny_config(4, 3, "sdpa")
    cache = filled_cache(config, 2, 9, gen)
    prefix_mask = torch.ones(2, 9, dtype=torch.bool)
    release = release_decoder_masks(config, cache, prefix_mask, 3)
    assert torch.equal(ref.decoder_attention_mask(prefix_mask, 3), release["full_attention"])
    assert torch.equal(ref.decoder_attention_mask(prefix_mask, 3, 4), release["sliding_attention"])
    assert not release["sliding_attention"][:, :, :6].any()  # the window did hide part of the prefix


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoder_attention_weights_of_a_tiny_model(ref, seed):
    """End to end: a tiny DiffusionGemmaForBlockDiffusion prefills a padded prompt with its encoder,
    then its decoder (eager attention) runs on a canvas; the attention probabilities of each layer
    are nonzero exactly where our mask allows attention."""
    gen = torch.Generator().manual_seed(seed)
    batch, prefix_length, canvas_length, window = 3, 8, 3, 4
    config = tiny_config(window, canvas_length, "eager")
    torch.manual_seed(seed)
    model = modeling.DiffusionGemmaForBlockDiffusion(config).eval()
    prefix_mask = random_prefix_mask(gen, batch, prefix_length)
    input_ids = torch.randint(3, 64, (batch, prefix_length), generator=gen)
    canvas = torch.randint(3, 64, (batch, canvas_length), generator=gen)
    with torch.no_grad():
        cache = DynamicCache(config=config)
        encoded = model.model.encoder(input_ids=input_ids, attention_mask=prefix_mask, past_key_values=cache,
                                      position_ids=torch.arange(prefix_length)[None])
        cache = encoded.past_key_values
        decoder_mask_2d = torch.nn.functional.pad(prefix_mask, (0, canvas_length), value=True)
        out = model.model.decoder(decoder_input_ids=canvas, past_key_values=cache,
                                  decoder_attention_mask=decoder_mask_2d, output_attentions=True)
    assert len(out.attentions) == len(config.text_config.layer_types)
    for layer_idx, (layer_type, probs) in enumerate(zip(config.text_config.layer_types, out.attentions)):
        sliding = layer_type == "sliding_attention"
        kv_length, kv_offset = cache.get_mask_sizes(canvas_length, layer_idx)
        assert probs.shape[-1] == kv_length
        seen = torch.zeros(batch, canvas_length, prefix_length + canvas_length, dtype=torch.bool)
        seen[:, :, kv_offset:] = (probs > 0).any(dim=1)
        ours = ref.decoder_attention_mask(prefix_mask, canvas_length, window if sliding else None)
        assert torch.equal(ours, seen), layer_type


def random_images(gen: torch.Generator, batch: int, length: int) -> torch.Tensor:
    """mm_token_type_ids: 0 text, 1 image; several image runs per row, some back to back."""
    types = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        pos = 0
        while pos < length:
            gap = int(torch.randint(0, 4, (1,), generator=gen))
            span = int(torch.randint(1, 5, (1,), generator=gen))
            pos += gap
            types[b, pos:pos + span] = 1
            pos += span
    return types


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("seed,batch,length", [(0, 3, 8), (1, 4, 13), (2, 2, 20), (3, 5, 6)])
def test_encoder_mask_matches_release(ref, attn, seed, batch, length):
    gen = torch.Generator().manual_seed(seed)
    config = tiny_config(4, 3, attn)
    mm_token_type_ids = random_images(gen, batch, length)
    attention_mask = torch.ones(batch, length, dtype=torch.bool)
    lefts = torch.randint(0, length // 2, (batch,), generator=gen)
    rights = torch.randint(0, length // 3, (batch,), generator=gen)
    for b in range(batch):
        if b % 2 == 0:                                   # left padding
            attention_mask[b, :int(lefts[b])] = False
            mm_token_type_ids[b, :int(lefts[b])] = 0
        else:                                            # right padding
            attention_mask[b, length - int(rights[b]):] = False
            mm_token_type_ids[b, length - int(rights[b]):] = 0
    masks = modeling.DiffusionGemmaEncoderModel.create_masks_for_generate(
        config=config, inputs_embeds=torch.empty(batch, length, 0), attention_mask=attention_mask,
        past_key_values=DynamicCache(config=config), position_ids=torch.arange(length)[None],
        mm_token_type_ids=mm_token_type_ids)
    release = as_bool(masks["full_attention"])
    ours = ref.encoder_attention_mask(attention_mask, mm_token_type_ids == 1)
    assert ours.dtype == torch.bool
    assert torch.equal(ours, release)
    # without images the encoder is plainly causal over the valid keys
    masks = modeling.DiffusionGemmaEncoderModel.create_masks_for_generate(
        config=config, inputs_embeds=torch.empty(batch, length, 0), attention_mask=attention_mask,
        past_key_values=DynamicCache(config=config), position_ids=torch.arange(length)[None])
    assert torch.equal(ref.encoder_attention_mask(attention_mask), as_bool(masks["full_attention"]))


def brute_force_training_mask(num_canvases: int, canvas_length: int) -> torch.Tensor:
    """The BD3-LM training mask, one entry at a time from its definition."""
    n = num_canvases * canvas_length
    mask = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    for q in range(2 * n):
        q_clean, q_block = q >= n, (q % n) // canvas_length
        for k in range(2 * n):
            k_clean, k_block = k >= n, (k % n) // canvas_length
            if not q_clean and not k_clean:
                mask[q, k] = q_block == k_block       # a noisy canvas sees itself
            elif not q_clean and k_clean:
                mask[q, k] = k_block < q_block        # and the clean canvases before it
            elif q_clean and k_clean:
                mask[q, k] = k_block <= q_block       # clean tokens: block causal
            else:
                mask[q, k] = False                    # clean tokens never see noisy ones
    return mask


@pytest.mark.parametrize("num_canvases,canvas_length", [(1, 1), (1, 4), (2, 1), (3, 2), (4, 3), (2, 5)])
def test_training_mask_matches_brute_force(ref, num_canvases, canvas_length):
    ours = ref.block_diffusion_training_mask(num_canvases, canvas_length)
    assert ours.dtype == torch.bool
    assert torch.equal(ours, brute_force_training_mask(num_canvases, canvas_length))
