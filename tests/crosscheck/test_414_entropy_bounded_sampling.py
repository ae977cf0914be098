"""Cross-check of 414-entropy-bounded-sampling's reference against transformers' own pieces:
torch.distributions.Categorical.entropy (what the released sampler uses for entropies) and
EntropyBoundSampler.accept_canvas / renoise_canvas
(models/diffusion_gemma/generation_diffusion_gemma.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runner.modules import import_file

generation = pytest.importorskip("transformers.models.diffusion_gemma.generation_diffusion_gemma")

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "414-entropy-bounded-sampling" / "solution.py"


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_414_entropy_bounded_sampling")


def hf_sampler(bound: float, length: int, vocab: int):
    config = generation.EntropyBoundSamplerConfig(entropy_bound=float(bound))
    return generation.EntropyBoundSampler(config, canvas_length=length, vocab_size=vocab, max_denoising_steps=48)


def random_logits(gen: torch.Generator, batch: int, length: int, vocab: int, scale: float,
                  minus_inf: float = 0.0) -> torch.Tensor:
    """Logits whose sharpness varies per position, optionally with -inf entries (never a whole row)."""
    sharp = torch.rand(batch, length, 1, generator=gen) * 2.0
    logits = torch.randn(batch, length, vocab, generator=gen) * scale * sharp
    if minus_inf:
        out = torch.rand(batch, length, vocab, generator=gen) < minus_inf
        out[..., 0] = False
        logits = logits.masked_fill(out, float("-inf"))
    return logits


SHAPES = [(2, 8, 5), (4, 16, 32), (1, 33, 7), (3, 64, 50)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [0.05, 1.0, 4.0, 30.0])
@pytest.mark.parametrize("minus_inf", [0.0, 0.3])
def test_token_entropy_matches_categorical(ref, seed, scale, minus_inf):
    gen = torch.Generator().manual_seed(100 * seed + int(scale * 10))
    batch, length, vocab = SHAPES[seed]
    logits = random_logits(gen, batch, length, vocab, scale, minus_inf)
    ours = ref.token_entropy(logits)
    theirs = torch.distributions.Categorical(logits=logits).entropy()
    assert ours.dtype == torch.float32 and ours.shape == (batch, length)
    assert not torch.isnan(ours).any()
    # Categorical normalises by subtracting logsumexp; at scale 30 it rounds at about 1e-5.
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_token_entropy_half_precision_equals_float32(ref, dtype):
    gen = torch.Generator().manual_seed(3)
    logits = random_logits(gen, 3, 20, 40, 5.0, 0.2).to(dtype)
    ours = ref.token_entropy(logits)
    assert ours.dtype == torch.float32
    theirs = torch.distributions.Categorical(logits=logits.float()).entropy()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_token_entropy_huge_logits_is_finite_and_close(ref):
    gen = torch.Generator().manual_seed(9)
    logits = torch.randn(4, 16, 24, generator=gen) * 1e4
    ours = ref.token_entropy(logits)
    assert torch.isfinite(ours).all()
    theirs = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(ours, theirs, rtol=0.0, atol=1e-3)
    # A shift of every logit by a constant leaves the distribution, hence the entropy, unchanged.
    small = torch.randn(4, 16, 24, generator=gen) * 3.0
    torch.testing.assert_close(ref.token_entropy(small + 5e3), ref.token_entropy(small), rtol=0.0, atol=1e-3)


def _decisions_are_clear(entropy: torch.Tensor, bound: float, eps: float) -> torch.Tensor:
    """(B,) True for rows where no EB decision is within eps of flipping."""
    h, _ = torch.sort(entropy.double(), dim=-1)
    before = torch.cumsum(h, dim=-1) - h
    clear = ((before - bound).abs() >= eps).all(-1)
    count = (before <= bound).sum(-1)
    for b in range(h.shape[0]):
        k = int(count[b])
        if k < h.shape[1] and float(h[b, k] - h[b, k - 1]) < eps:
            clear[b] = False
    return clear


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("bound", [1e-3, 0.1, 0.5, 3.0])
@pytest.mark.parametrize("scale", [0.5, 3.0, 12.0])
def test_accept_matches_eb_sampler(ref, seed, bound, scale):
    gen = torch.Generator().manual_seed(1000 + 10 * seed + int(scale))
    batch, length, vocab = SHAPES[seed]
    logits = random_logits(gen, batch, length, vocab, scale, minus_inf=0.2 if seed % 2 else 0.0)
    current = torch.randint(0, vocab, (batch, length), generator=gen)
    denoiser = torch.randint(0, vocab, (batch, length), generator=gen)

    sampler = hf_sampler(bound, length, vocab)
    accepted_canvas = sampler.accept_canvas(current, denoiser, logits, cur_step=48)
    theirs = sampler.accepted_token_mask
    ours = ref.entropy_bound_accept(logits, bound)
    assert ours.dtype == torch.bool and ours.shape == (batch, length)
    assert ours.any(-1).all(), "every row accepts at least one token"

    # The two compute entropies with different float32 roundings: compare the rows where no
    # decision is within 1e-5 of flipping, and require that these are (nearly) all rows.
    clear = _decisions_are_clear(torch.distributions.Categorical(logits=logits).entropy(), bound, 1e-5)
    assert clear.float().mean() >= 0.75
    assert torch.equal(ours[clear], theirs[clear])
    # The released accepted canvas takes the denoiser's token exactly where our mask is set.
    assert torch.equal(accepted_canvas[clear], torch.where(ours, denoiser, current)[clear])


@pytest.mark.parametrize("seed", range(3))
def test_accept_and_renoise_matches_released_step(ref, seed):
    gen = torch.Generator().manual_seed(77 + seed)
    batch, length, vocab = SHAPES[seed + 1]
    logits = random_logits(gen, batch, length, vocab, 4.0)
    current = torch.randint(0, vocab, (batch, length), generator=gen)
    denoiser = torch.randint(0, vocab, (batch, length), generator=gen)

    sampler = hf_sampler(0.1, length, vocab)
    accepted_canvas = sampler.accept_canvas(current, denoiser, logits, cur_step=10)
    mask = sampler.accepted_token_mask.clone()
    torch.manual_seed(seed)  # renoise_canvas draws from the global generator
    theirs = sampler.renoise_canvas(accepted_canvas, cur_step=10)

    ours = ref.accept_and_renoise(current, denoiser, mask, vocab, generator=torch.Generator().manual_seed(seed))
    assert ours.dtype == torch.int64 and ours.shape == (batch, length)
    # Semantics every solution must share: accepted positions hold the denoiser's token.
    assert torch.equal(ours[mask], denoiser[mask])
    assert torch.equal(theirs[mask], denoiser[mask])
    assert ((ours >= 0) & (ours < vocab)).all()
    # The reference draws its noise canvas exactly as renoise_canvas does (one randint over the
    # whole canvas), so with equally seeded generators the two canvases agree everywhere.
    assert torch.equal(ours, theirs)
