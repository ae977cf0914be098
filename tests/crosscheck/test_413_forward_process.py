"""Cross-checks of 413-forward-process's reference.

transformers ships DiffusionGemma's inference only, so the training pieces have no transformers
counterpart. The reference is checked instead against:
- `torch.nn.functional.cross_entropy` computed independently, example by example;
- the laws of the process on large samples: resampling frequencies per example (binomial
  bounds), uniformity of the fresh tokens (Pearson chi-square), uniformity of the noise levels;
- transformers' `EntropyBoundSampler`, whose canvas initialisation and renoising use the same
  uniform kernel that `corrupt_canvas` applies at t = 1.

Statistical thresholds: binomial counts use Hoeffding's bound at alpha = 1e-6 per count; the
chi-square statistic with k degrees of freedom is compared with the Laurent-Massart bound
k + 2 sqrt(k x) + 2 x, x = ln(1e6), exceeded with probability below 1e-6 (asymptotically in the
sample size, which is large here). All seeds are fixed, so the tests are deterministic.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from runner.modules import import_file
import torch.nn.functional as F

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "413-forward-process" / "solution.py"
ALPHA = 1e-6


@pytest.fixture(scope="module")
def ref():
    return import_file(SOLUTION, "solution_413_forward_process")


def hoeffding(n: int, alpha: float = ALPHA) -> float:
    return math.sqrt(n * math.log(2 / alpha) / 2)


def chi_square_bound(dof: int, alpha: float = ALPHA) -> float:
    x = math.log(1 / alpha)
    return dof + 2 * math.sqrt(dof * x) + 2 * x


def chi_square(counts: torch.Tensor) -> float:
    """Pearson statistic of `counts` against the uniform distribution."""
    counts = counts.double()
    expected = counts.sum() / counts.numel()
    return float(((counts - expected) ** 2 / expected).sum())


# ----------------------------------------------------------------------------- diffusion_loss

def loss_by_hand(logits, clean, valid, weights) -> torch.Tensor:
    """The statement's formula, one example at a time, with F.cross_entropy(reduction='mean')."""
    total = torch.zeros((), dtype=torch.float64)
    for b in range(logits.shape[0]):
        keep = valid[b]
        if keep.any():
            ce = F.cross_entropy(logits[b][keep].double(), clean[b][keep], reduction="mean")
            total = total + weights[b].double() * ce
    return total / logits.shape[0]


@pytest.mark.parametrize("seed,batch,length,vocab", [
    (0, 1, 1, 2), (1, 4, 16, 50), (2, 7, 33, 257), (3, 3, 128, 1000), (4, 16, 9, 7),
])
def test_loss_matches_per_example_cross_entropy(ref, seed, batch, length, vocab):
    g = torch.Generator().manual_seed(seed)
    logits = 3.0 * torch.randn(batch, length, vocab, generator=g)
    clean = torch.randint(0, vocab, (batch, length), generator=g)
    valid = torch.rand(batch, length, generator=g) < 0.7
    if batch > 2:
        valid[1] = False                      # an example with no valid position
        valid[2] = True                       # an example without pads
    weights = ref.loss_weight(ref.sample_noise_level(batch, generator=g), "reweighted-ce", clip=10.0)
    resampled = (torch.rand(batch, length, generator=g) < 0.5) & valid
    got = ref.diffusion_loss(logits, clean, valid, weights, resampled)
    assert got.shape == () and got.dtype == torch.float32
    want = loss_by_hand(logits, clean, valid, weights)
    assert math.isfinite(float(got))
    assert abs(float(got) - float(want)) <= 1e-5 * abs(float(want)) + 1e-6, (float(got), float(want))


def test_loss_weights_match_their_formula(ref):
    t = torch.linspace(1e-3, 1 - 1e-3, 1001)
    assert torch.equal(ref.loss_weight(t), torch.ones_like(t))
    w = ref.loss_weight(t, "reweighted-ce")
    assert torch.allclose(w.double(), 1 / (1 - t.double()), rtol=1e-5)
    wc = ref.loss_weight(t, "reweighted-ce", clip=7.5)
    assert torch.allclose(wc.double(), torch.clamp(1 / (1 - t.double()), max=7.5), rtol=1e-5)
    with pytest.raises(ValueError):
        ref.loss_weight(t, "mdlm")


# ----------------------------------------------------------------------------- noise levels

@pytest.mark.parametrize("seed,t_min,t_max", [(10, 1e-3, 1 - 1e-3), (11, 0.2, 0.3), (12, 0.0, 1.0)])
def test_noise_levels_are_uniform(ref, seed, t_min, t_max):
    n, bins = 20000, 10
    t = ref.sample_noise_level(n, t_min, t_max, generator=torch.Generator().manual_seed(seed))
    assert t.dtype == torch.float32 and t.shape == (n,)
    assert float(t.min()) >= t_min and float(t.max()) <= t_max
    idx = ((t.double() - t_min) / (t_max - t_min) * bins).floor().clamp(0, bins - 1).long()
    assert chi_square(torch.bincount(idx, minlength=bins)) <= chi_square_bound(bins - 1)


# ----------------------------------------------------------------------------- corruption

@pytest.mark.parametrize("seed,vocab", [(20, 3), (21, 1000), (22, 262_144)])
def test_resampling_frequency_per_example(ref, seed, vocab):
    g = torch.Generator().manual_seed(seed)
    batch, length = 8, 20000
    t = torch.rand(batch, generator=g)
    t[0], t[1] = 0.0, 1.0
    tokens = torch.randint(0, vocab, (batch, length), generator=g)
    valid = torch.rand(batch, length, generator=g) < 0.8
    noisy, resampled = ref.corrupt_canvas(tokens, t, vocab, valid, generator=g)
    assert not resampled[~valid].any() and torch.equal(noisy[~valid], tokens[~valid])
    assert not ((noisy != tokens) & ~resampled).any()
    for b in range(batch):
        n = int(valid[b].sum())
        k = int(resampled[b].sum())
        assert abs(k - n * float(t[b])) <= hoeffding(n), (b, k, n, float(t[b]))
        # Among resampled positions, the original id comes back with probability 1/vocab.
        same = int((resampled[b] & (noisy[b] == tokens[b])).sum())
        assert abs(same - k / vocab) <= hoeffding(k), (b, same, k)


@pytest.mark.parametrize("seed,vocab", [(30, 2), (31, 17), (32, 256)])
def test_fresh_tokens_are_uniform(ref, seed, vocab):
    g = torch.Generator().manual_seed(seed)
    length = 400 * vocab
    tokens = torch.randint(0, vocab, (2, length), generator=g)
    noisy, resampled = ref.corrupt_canvas(tokens, torch.ones(2), vocab, generator=g)
    assert resampled.all()
    counts = torch.bincount(noisy.flatten(), minlength=vocab)
    assert counts.numel() == vocab
    assert chi_square(counts) <= chi_square_bound(vocab - 1)


def test_chi_square_check_can_fail():
    """The uniformity check rejects the kernels of the common mistakes."""
    g = torch.Generator().manual_seed(40)
    vocab, n = 17, 400 * 17
    wrong = torch.randint(0, vocab - 1, (n,), generator=g)            # never draws the last id
    assert chi_square(torch.bincount(wrong, minlength=vocab)) > chi_square_bound(vocab - 1)
    orig = torch.zeros(n, dtype=torch.long)
    other = (orig + torch.randint(1, vocab, (n,), generator=g)) % vocab  # never draws the original
    assert chi_square(torch.bincount(other, minlength=vocab)) > chi_square_bound(vocab - 1)


# ----------------------------------------------------------------------------- transformers

def test_same_kernel_as_the_released_sampler(ref):
    """transformers' EntropyBoundSampler draws its initial canvas (and its renoising tokens) uniformly
    from [0, vocab_size); corrupt_canvas at t = 1 must follow the same law. A two-sample chi-square
    test of homogeneity compares the two token histograms."""
    generation = pytest.importorskip("transformers.models.diffusion_gemma.generation_diffusion_gemma")
    vocab, length, batch = 31, 2000, 4
    config = generation.EntropyBoundSamplerConfig(entropy_bound=0.1)
    sampler = generation.EntropyBoundSampler(config, canvas_length=length, vocab_size=vocab,
                                             max_denoising_steps=48)
    torch.manual_seed(50)                                   # the released sampler uses the global RNG
    theirs = sampler.initialize_canvas(batch_size=batch, device=torch.device("cpu"))
    assert theirs.shape == (batch, length)
    tokens = torch.zeros(batch, length, dtype=torch.long)
    ours, _ = ref.corrupt_canvas(tokens, torch.ones(batch), vocab, generator=torch.Generator().manual_seed(50))
    a = torch.bincount(theirs.flatten(), minlength=vocab).double()
    b = torch.bincount(ours.flatten(), minlength=vocab).double()
    assert a.numel() == vocab and b.numel() == vocab
    pooled = (a + b) / 2
    stat = float((((a - pooled) ** 2 + (b - pooled) ** 2) / pooled).sum())
    assert stat <= chi_square_bound(vocab - 1)
