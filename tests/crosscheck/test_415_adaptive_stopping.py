"""Cross-check of 415-adaptive-stopping's reference against transformers'
StableAndConfidentStoppingCriteria (models/diffusion_gemma/generation_diffusion_gemma.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

generation = pytest.importorskip("transformers.models.diffusion_gemma.generation_diffusion_gemma")
HF = generation.StableAndConfidentStoppingCriteria

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "415-adaptive-stopping" / "solution.py"


@pytest.fixture(scope="module")
def ref():
    spec = importlib.util.spec_from_file_location("solution_415_adaptive_stopping", SOLUTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_calls(gen: torch.Generator, n_calls: int, batch: int, length: int, vocab: int):
    """A sequence of (argmax_canvas, logits) with many repeats (so stability triggers), logits
    whose sharpness varies per row and step (so confidence goes both ways), and -inf entries."""
    calls = []
    canvas = torch.randint(0, vocab, (batch, length), generator=gen)
    older = canvas.clone()
    for _ in range(n_calls):
        choice = torch.rand(batch, generator=gen)
        fresh = torch.randint(0, vocab, (batch, length), generator=gen)
        one_change = canvas.clone()
        pos = torch.randint(0, length, (batch,), generator=gen)
        one_change[torch.arange(batch), pos] = (one_change[torch.arange(batch), pos] + 1) % vocab
        new = torch.where((choice < 0.55)[:, None], canvas,                 # repeat
              torch.where((choice < 0.7)[:, None], older,                    # go back
              torch.where((choice < 0.85)[:, None], one_change, fresh)))     # small / big change
        older, canvas = canvas, new
        # Logits peaked on the canvas with a per-row gap, plus noise.
        gap = torch.rand(batch, 1, 1, generator=gen) * 25.0
        logits = torch.randn(batch, length, vocab, generator=gen)
        logits = logits + gap * torch.nn.functional.one_hot(canvas, vocab)
        masked = torch.rand(batch, length, vocab, generator=gen) < 0.1
        masked &= ~torch.nn.functional.one_hot(canvas, vocab).bool()
        logits = logits.masked_fill(masked, float("-inf"))
        calls.append((canvas.clone(), logits))
    return calls


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("stability_threshold", [0, 1, 2, 3])
@pytest.mark.parametrize("confidence_threshold", [0.0, 0.005, 0.3, 1.5])
def test_matches_transformers_on_random_sequences(ref, seed, stability_threshold, confidence_threshold):
    gen = torch.Generator().manual_seed(1000 * seed + 10 * stability_threshold)
    batch, length, vocab = [(4, 6, 10), (7, 3, 17), (1, 9, 5), (5, 16, 32)][seed]
    ours = ref.StableAndConfident(stability_threshold, confidence_threshold)
    theirs = HF(stability_threshold=stability_threshold, confidence_threshold=confidence_threshold)
    stops = 0
    for segment in range(3):  # three canvases, with reset() between them
        if segment == 2:
            batch, length = batch + 1, length + 2  # a new shape after reset is allowed
        for i, (argmax_canvas, logits) in enumerate(random_calls(gen, 9, batch, length, vocab)):
            got = ours(argmax_canvas.clone(), logits.clone())
            want = theirs(argmax_canvas.clone(), logits.clone())
            assert got.dtype == torch.bool and got.shape == (batch,)
            assert torch.equal(got, want), f"segment {segment} call {i}: {got} != {want}"
            stops += int(want.sum())
        ours.reset()
        theirs.reset()
    if confidence_threshold > 0.1:
        assert stops > 0  # the sequences do exercise the stopping branch


@pytest.mark.parametrize("seed", range(5))
def test_mean_entropy_matches_categorical(ref, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 11, generator=gen) * (1 + 10 * torch.rand(3, 5, 1, generator=gen))
    logits[0, 0, 1:] = float("-inf")
    logits[1, 2, :4] = float("-inf")
    logits[2, 1] = 300.0 * torch.nn.functional.one_hot(torch.tensor(3), 11)  # underflowing probabilities
    want = torch.distributions.Categorical(logits=logits).entropy().mean(-1)
    got = ref.mean_token_entropy(logits)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_history_semantics_agree_on_hand_made_sequence(ref):
    """k=2 on rows A,B,B,B / A,A,A,A / A,B,A,A: only stable once two previous canvases match."""
    a, b = torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4])
    rows = [[a, b, b, b], [a, a, a, a], [a, b, a, a]]
    logits = 50.0 * torch.nn.functional.one_hot(torch.zeros(3, 3, dtype=torch.long), 6).float()
    ours, theirs = ref.StableAndConfident(2, 0.005), HF(stability_threshold=2, confidence_threshold=0.005)
    outs = []
    for t in range(4):
        canvas = torch.stack([r[t] for r in rows])
        got, want = ours(canvas, logits), theirs(canvas, logits)
        assert torch.equal(got, want)
        outs.append(got.tolist())
    assert outs == [[False, False, False], [False, False, False], [False, True, False], [True, True, False]]
