"""Cross-check of 418-full-inference's reference generate against transformers' own
DiffusionGemmaForBlockDiffusion.generate() on the bundled tiny model.

The two samplers draw their random numbers differently (a seeded generator here, the global RNG
there), so they are compared on random prompts of the model's language where it is confident:
there every step's acceptance and stopping is decided by the logits, not by the draws, and the
committed canvases and the number of canvases must agree. (How many passes a canvas takes can
still depend on the draws, so tokens per forward is checked against the model's own pass count.)"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from runner.modules import import_file
from runner.handles.diffusiongemma import bundled_checkpoint, copy_example, count_example, left_pad, load_model

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "418-full-inference" / "solution.py"


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_418_full_inference")


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_model(bundled_checkpoint(), "cpu")


def random_prompts(seed: int, n: int) -> list[list[int]]:
    """Random copy prompts of 1 to 4 symbols (where the tiny model is confident), and now and
    then one of the count prompts it is confident on."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.8:
            out.append(copy_example([rng.randrange(26) for _ in range(rng.randint(1, 4))])[0])
        else:
            out.append(count_example(*rng.choice([(20, 5), (0, 11), (5, 9), (0, 18), (3, 24)]))[0])
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reference_matches_transformers_generate(ref, model, seed):
    prompts = random_prompts(seed, 3 + seed)
    ids, mask = left_pad(prompts)
    seq, tpf = ref.generate(model, ids, attention_mask=mask, max_new_tokens=32,
                            generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=32)
    assert seq.shape == out.sequences.shape
    assert torch.equal(seq, out.sequences)


@pytest.mark.parametrize("seed", [0, 1])
def test_tokens_per_forward_counts_the_model_passes(ref, model, seed):
    prompt = random_prompts(10 + seed, 1)
    model.grader_log_passes(True)
    seq, tpf = ref.generate(model, torch.tensor(prompt), max_new_tokens=32,
                            generator=torch.Generator().manual_seed(seed))
    passes = len(model.grader_take_log()["decoder"])
    model.grader_log_passes(False)
    assert float(tpf[0]) == pytest.approx(int((seq[0, len(prompt[0]):] != 0).sum()) / passes)


def test_reference_matches_transformers_with_other_settings(ref, model):
    ids, mask = left_pad(random_prompts(7, 4))
    settings = dict(max_denoising_steps=12, t_max=0.6, t_min=0.3, stability_threshold=2)
    seq, tpf = ref.generate(model, ids, attention_mask=mask, max_new_tokens=16,
                            generator=torch.Generator().manual_seed(3), **settings)
    torch.manual_seed(3)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=16, **settings)
    assert torch.equal(seq, out.sequences)
