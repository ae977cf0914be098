"""Cross-check of 415-adaptive-stopping's reference against transformers'
StableAndConfidentStoppingCriteria (models/diffusion_gemma/generation_diffusion_gemma.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runner.modules import import_file

generation = pytest.importorskip("transformers.models.diffusion_gemma.generation_diffusion_gemma")
HF = generation.StableAndConfidentStoppingCriteria

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "415-adaptive-stopping" / "solution.py"


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_415_adaptive_stopping")


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


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stability_threshold", [0, 1, 2, 3])
@pytest.mark.parametrize("confidence_threshold", [0.0, 0.005, 0.5])
def test_matches_transformers_on_random_sequences(ref, seed, stability_threshold, confidence_threshold):
    gen = torch.Generator().manual_seed(1000 * seed + 10 * stability_threshold)
    batch, length, vocab = [(4, 6, 10), (7, 3, 17), (1, 9, 5)][seed]
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


@pytest.mark.parametrize("confidence_threshold", [0.0, 1e-12, 0.005])
def test_zero_entropy_rows_at_the_threshold(ref, confidence_threshold):
    """Rows with exactly zero entropy (a single finite logit, or a gap that underflows): the
    strict `<` says a threshold of 0 is never met."""
    canvas = torch.tensor([[1, 2, 3], [4, 0, 2], [3, 3, 3]])
    logits = torch.full((3, 3, 6), float("-inf"))
    logits[0] = torch.where(torch.nn.functional.one_hot(canvas[0], 6).bool(), 0.0, float("-inf"))
    logits[1] = 300.0 * torch.nn.functional.one_hot(canvas[1], 6).float()
    logits[2] = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    ours = ref.StableAndConfident(1, confidence_threshold)
    theirs = HF(stability_threshold=1, confidence_threshold=confidence_threshold)
    for _ in range(3):
        got, want = ours(canvas, logits), theirs(canvas, logits)
        assert torch.equal(got, want), f"{got} != {want}"
    assert want.tolist() == [confidence_threshold > 0, confidence_threshold > 0, False]

def _tiny_model():
    from transformers import DiffusionGemmaConfig, DiffusionGemmaTextConfig
    from transformers.models.diffusion_gemma.modeling_diffusion_gemma import DiffusionGemmaForBlockDiffusion
    from transformers.models.gemma4.configuration_gemma4 import Gemma4VisionConfig

    text = DiffusionGemmaTextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, global_head_dim=16, sliding_window=8, max_position_embeddings=256,
        num_experts=2, top_k_experts=1, moe_intermediate_size=32,
        layer_types=["sliding_attention", "full_attention"], pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, head_dim=8)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=8,
                                  boi_token_id=60, eoi_token_id=61, image_token_id=62)
    torch.manual_seed(0)
    return DiffusionGemmaForBlockDiffusion(config).eval()


def _generate_with(model, make_stopper, k: int, c: float, seed: int):
    """Run the real `generate` with `make_stopper(k, c)` as its diffusion stopping rule; return the
    output and the log of every stop decision. A logits processor pulls each row toward a fixed
    target with a strength that grows with the step (later rows later), so rows settle at
    different steps even though the model is random."""
    from transformers import LogitsProcessor, LogitsProcessorList

    targets = torch.randint(3, 60, (3, 8), generator=torch.Generator().manual_seed(seed))

    class Ramp(LogitsProcessor):
        def __call__(self, input_ids, scores, cur_step):
            done = 12 - int(cur_step)
            strength = (4.0 * done - 5.0 * torch.arange(scores.shape[0])).clamp(min=0)
            return scores + strength[:, None, None] * torch.nn.functional.one_hot(targets, scores.shape[-1])

    log = []

    class Spy:
        def __init__(self):
            self.inner = make_stopper(k, c)

        def __call__(self, argmax_canvas, logits):
            out = self.inner(argmax_canvas, logits)
            log.append(out.clone())
            return out

        def reset(self):
            self.inner.reset()

    prompt = torch.tensor([[2, 5, 7, 9], [2, 11, 12, 13], [2, 3, 4, 5]])
    cls = type(model)
    original = cls._prepare_diffusion_stopping_criteria
    cls._prepare_diffusion_stopping_criteria = lambda self, generation_config: Spy()
    try:
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=prompt, max_new_tokens=16, max_denoising_steps=12, t_min=0.4, t_max=0.8,
            stability_threshold=k, confidence_threshold=c,
            sampler_config=generation.EntropyBoundSamplerConfig(entropy_bound=0.1),
            eos_token_id=1, pad_token_id=0, disable_compile=True, logits_processor=LogitsProcessorList([Ramp()]))
    finally:
        cls._prepare_diffusion_stopping_criteria = original
    return out, torch.stack(log)


@pytest.fixture(scope="module")
def tiny_model():
    return _tiny_model()


@pytest.mark.slow
@pytest.mark.parametrize("k,c", [(0, 0.005), (1, 0.005), (3, 0.5)])
def test_drop_in_for_transformers_generate(ref, tiny_model, k, c):
    """The reference, plugged into the real sampler loop, makes the same decisions at every step
    (rows frozen after stopping included) and yields the same tokens and tokens-per-forward."""
    model = tiny_model
    want_out, want_log = _generate_with(model, lambda k, c: HF(stability_threshold=k, confidence_threshold=c), k, c, 0)
    got_out, got_log = _generate_with(model, ref.StableAndConfident, k, c, 0)
    assert got_log.shape == want_log.shape and torch.equal(got_log, want_log)
    assert torch.equal(got_out.sequences, want_out.sequences)
    torch.testing.assert_close(got_out.tokens_per_forward, want_out.tokens_per_forward)
    # the loops did stop early: fewer stopper calls than 2 canvases x 12 steps
    assert want_log.shape[0] < 24 and bool(want_log[-1].all())
