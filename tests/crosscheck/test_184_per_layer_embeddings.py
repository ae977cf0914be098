"""Cross-check of 184-per-layer-embeddings' reference against transformers' Gemma 4.

* per_layer_inputs vs the per_layer_input each Gemma4TextDecoderLayer receives in a forward pass of
  a tiny Gemma4TextModel (hidden_size_per_layer_input > 0), and vs Gemma4TextModel's own
  get_per_layer_inputs / project_per_layer_inputs;
* the multimodal case vs a tiny Gemma4Model whose image soft tokens come in as mm_encoder_outputs
  (the image token id lies outside the vocabulary; the PLE lookup uses the pad token's row);
* apply_per_layer_gate vs each decoder layer: the layer's output (divided by its layer_scalar) is
  our function applied to what entered its per_layer_input_gate.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from runner.modules import import_file

modeling = pytest.importorskip("transformers.models.gemma4.modeling_gemma4")
from transformers import Gemma4Config, Gemma4TextConfig  # noqa: E402
from transformers.modeling_outputs import BaseModelOutputWithPooling  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "184-per-layer-embeddings" / "solution.py"

IMAGE_TOKEN_ID = 300          # outside the text vocabulary (vocab_size 96), as in the release


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_184_per_layer_embeddings")


def text_config(num_layers: int, hidden: int, per_layer: int, eps: float) -> Gemma4TextConfig:
    config = Gemma4TextConfig(
        vocab_size=96, vocab_size_per_layer_input=96, hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=num_layers, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
        global_head_dim=16, hidden_size_per_layer_input=per_layer, rms_norm_eps=eps, sliding_window=4,
        pad_token_id=0, eos_token_id=1, bos_token_id=2)
    config._attn_implementation = "eager"
    return config


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere, norm weights and layer scalars far from 1 (a 1 + w norm is then wrong)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm.weight") or "norm" in name.split(".")[-2]:
                p.copy_(0.5 + torch.rand(p.shape, generator=gen) * 1.5)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        for name, b in module.named_buffers():
            if name.endswith("layer_scalar"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def params_of(text_model) -> dict:
    return {
        "embed_tokens_per_layer": text_model.embed_tokens_per_layer.weight.detach().numpy().copy(),
        "per_layer_model_projection": text_model.per_layer_model_projection.weight.detach().numpy().copy(),
        "per_layer_projection_norm": text_model.per_layer_projection_norm.weight.detach().numpy().copy(),
    }


def layer_params_of(layer) -> dict:
    return {
        "per_layer_input_gate": layer.per_layer_input_gate.weight.detach().numpy().copy(),
        "per_layer_projection": layer.per_layer_projection.weight.detach().numpy().copy(),
        "post_per_layer_input_norm": layer.post_per_layer_input_norm.weight.detach().numpy().copy(),
    }


def config_dict(config: Gemma4TextConfig) -> dict:
    return {"hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
            "hidden_size_per_layer_input": config.hidden_size_per_layer_input,
            "rms_norm_eps": config.rms_norm_eps, "pad_token_id": config.pad_token_id}


def record_layers(text_model):
    """Hooks recording, per decoder layer, the per_layer_input argument, the input of its
    per_layer_input_gate and the layer's output."""
    log = {"ple": {}, "gate_in": {}, "out": {}}
    handles = []
    for i, layer in enumerate(text_model.layers):
        def pre(module, args, kwargs, i=i):
            log["ple"][i] = args[1] if len(args) > 1 else kwargs["per_layer_input"]
        def gate(module, args, i=i):
            log["gate_in"][i] = args[0]
        def post(module, args, kwargs, output, i=i):
            log["out"][i] = output[0] if isinstance(output, tuple) else output
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(layer.per_layer_input_gate.register_forward_pre_hook(gate))
        handles.append(layer.register_forward_hook(post, with_kwargs=True))
    return log, handles


CASES = [  # (seed, num_layers, hidden, per_layer, eps, batch, seq)
    (0, 3, 32, 8, 1e-6, 2, 5),
    (1, 2, 48, 16, 1e-6, 3, 4),
    (2, 4, 16, 4, 1e-2, 1, 7),
]


@pytest.mark.parametrize("seed,num_layers,hidden,per_layer,eps,batch,seq", CASES)
def test_text_model_matches_release(ref, seed, num_layers, hidden, per_layer, eps, batch, seq):
    config = text_config(num_layers, hidden, per_layer, eps)
    torch.manual_seed(seed)
    model = modeling.Gemma4TextModel(config).eval()
    randomize(model, seed)
    gen = torch.Generator().manual_seed(100 + seed)
    input_ids = torch.randint(0, config.vocab_size, (batch, seq), generator=gen)
    input_ids[0, 0] = config.pad_token_id
    log, handles = record_layers(model)
    with torch.no_grad():
        model(input_ids=input_ids)
        embeds = model.embed_tokens(input_ids)
        direct = model.project_per_layer_inputs(embeds, model.get_per_layer_inputs(input_ids))
    for h in handles:
        h.remove()

    ours = ref.per_layer_inputs(input_ids.numpy(), embeds.numpy(), params_of(model), config_dict(config))
    assert ours.dtype == np.float32 and ours.shape == (batch, seq, num_layers, per_layer)
    np.testing.assert_allclose(ours, direct.numpy(), rtol=1e-5, atol=1e-5)
    for i, layer in enumerate(model.layers):
        np.testing.assert_allclose(ours[:, :, i], log["ple"][i].numpy(), rtol=1e-5, atol=1e-5)
        gated = ref.apply_per_layer_gate(log["gate_in"][i].numpy(), ours[:, :, i], layer_params_of(layer),
                                         config_dict(config))
        assert gated.dtype == np.float32 and gated.shape == (batch, seq, hidden)
        scalar = float(layer.layer_scalar)
        np.testing.assert_allclose(gated * scalar, log["out"][i].numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_small_context_where_eps_matters(ref, seed):
    """Tiny input embeddings: the context projection's mean square is below eps, so the 1/sqrt(H)
    scale and the eps inside the square root both show in the output."""
    config = text_config(3, 32, 8, 1e-6)
    torch.manual_seed(seed)
    model = modeling.Gemma4TextModel(config).eval()
    randomize(model, seed)
    gen = torch.Generator().manual_seed(200 + seed)
    input_ids = torch.randint(0, config.vocab_size, (2, 6), generator=gen)
    embeds = torch.randn(2, 6, 32, generator=gen) * 1e-3
    with torch.no_grad():
        direct = model.project_per_layer_inputs(embeds, model.get_per_layer_inputs(input_ids))
        context_only = model.project_per_layer_inputs(embeds)
    ours = ref.per_layer_inputs(input_ids.numpy(), embeds.numpy(), params_of(model), config_dict(config))
    np.testing.assert_allclose(ours, direct.numpy(), rtol=1e-5, atol=1e-5)
    # the context part is far from unit RMS here: the norm is dominated by eps
    rms = context_only.detach().pow(2).mean(-1).sqrt() / model.per_layer_projection_norm.weight.detach().pow(2).mean().sqrt()
    assert float(rms.max()) < 0.5


def test_multimodal_model_matches_release(ref):
    """Gemma4Model: image tokens (id outside the vocabulary) take the pad token's PLE row, while the
    context part reads the merged embeddings (the image soft tokens)."""
    text = text_config(3, 32, 8, 1e-6)
    config = Gemma4Config(text_config=text.to_dict(), vision_config=None, image_token_id=IMAGE_TOKEN_ID,
                          video_token_id=IMAGE_TOKEN_ID + 1, audio_token_id=IMAGE_TOKEN_ID + 2)
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    torch.manual_seed(5)
    model = modeling.Gemma4Model(config).eval()
    randomize(model, 5)
    gen = torch.Generator().manual_seed(5)
    batch, seq = 2, 9
    input_ids = torch.randint(3, 96, (batch, seq), generator=gen)
    image = torch.zeros(batch, seq, dtype=torch.bool)
    image[0, 2:5] = True
    image[1, 0:3] = True
    image[1, 6:8] = True
    input_ids[image] = IMAGE_TOKEN_ID
    soft_tokens = torch.randn(int(image.sum()), 32, generator=gen)
    lm = model.language_model
    seen = {}
    handle = lm.per_layer_model_projection.register_forward_pre_hook(
        lambda module, args: seen.__setitem__("embeds", args[0]))
    log, handles = record_layers(lm)
    with torch.no_grad():
        model(input_ids=input_ids,
              mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=[soft_tokens])})
    for h in handles + [handle]:
        h.remove()
    merged = seen["embeds"].numpy()
    np.testing.assert_allclose(merged[image.numpy()], soft_tokens.numpy())   # the soft tokens went in
    ours = ref.per_layer_inputs(input_ids.numpy(), merged, params_of(lm), config_dict(config.text_config),
                                multimodal_mask=image.numpy())
    for i in range(3):
        np.testing.assert_allclose(ours[:, :, i], log["ple"][i].numpy(), rtol=1e-5, atol=1e-5)
