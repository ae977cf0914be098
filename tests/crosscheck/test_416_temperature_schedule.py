"""Cross-check of problem 416's reference against transformers' DiffusionGemma implementation.

- `temperature` against `LinearTemperatureScheduleLogitsProcessor` (which returns scores / T) for
  every step of the release's loop, cur_step = N, ..., 1, on random schedules and logits;
- `sample_tokens` frequencies against the release's sampling distribution
  softmax(processor(scores), dtype=float32) with Pearson's chi-square test. Each chi-square check
  rejects a correct sampler with probability about 1e-6 / (number of checks) (chi-square
  approximation; bins with an expected count below 5 are pooled), so the whole file wrongly
  fails with probability below about 1e-6 -- and never at these fixed seeds once it has passed.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from runner.modules import import_file

pytest.importorskip("transformers")
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (  # noqa: E402
    DiffusionGemmaGenerationConfig,
    LinearTemperatureScheduleLogitsProcessor,
)

SOLUTION = Path(__file__).resolve().parents[2] / "solutions" / "416-temperature-schedule" / "solution.py"
ALPHA = 1e-6


def _load_reference():
    return import_file(SOLUTION, "reference_416_temperature_schedule")


ref = _load_reference()


def _chi_square_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's chi-square p-value of `counts` (V,) against `probs` (V,), pooling every bin whose
    expected count is below 5 into one."""
    counts, probs = counts.double(), probs.double()
    n = float(counts.sum())
    expected = probs * n
    small = expected < 5
    obs = counts[~small]
    exp = expected[~small]
    if bool(small.any()):
        obs = torch.cat([obs, counts[small].sum().view(1)])
        exp = torch.cat([exp, expected[small].sum().view(1)])
    dof = obs.numel() - 1
    if dof < 1:
        return 1.0
    stat = float(((obs - exp) ** 2 / exp.clamp_min(1e-300)).sum())
    # Survival function of chi-square(dof): Q(dof / 2, stat / 2).
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))


def _random_schedule(g: torch.Generator) -> tuple[int, float, float]:
    n = int(torch.randint(1, 65, (1,), generator=g))
    t_min = float(torch.rand((), generator=g)) * 0.8
    t_max = t_min + 0.05 + float(torch.rand((), generator=g))
    return n, t_min, t_max


def test_defaults_match_the_release():
    release = DiffusionGemmaGenerationConfig._get_default_generation_params()
    params = inspect.signature(ref.temperature).parameters
    assert params["t_min"].default == release["t_min"]
    assert params["t_max"].default == release["t_max"]


@pytest.mark.parametrize("seed", range(6))
def test_temperature_matches_logits_processor(seed):
    g = torch.Generator().manual_seed(416_000 + seed)
    n, t_min, t_max = _random_schedule(g)
    b, length, vocab = (int(x) for x in torch.randint(1, 9, (3,), generator=g))
    scores = torch.randn(b, length, vocab, generator=g, dtype=torch.float64) * 4
    processor = LinearTemperatureScheduleLogitsProcessor(t_min=t_min, t_max=t_max, max_denoising_steps=n)
    previous = float("inf")
    for cur_step in reversed(range(1, n + 1)):  # the release's denoising loop
        t = ref.temperature(cur_step, n, t_min, t_max)
        assert isinstance(t, float)
        torch.testing.assert_close(scores / t, processor(None, scores, cur_step=cur_step), rtol=1e-12, atol=0)
        # Inside the step the release passes cur_step as an int32 tensor, so its temperature is
        # then computed in float32: agreement to float32 precision.
        step_tensor = torch.tensor(cur_step, dtype=torch.int32)
        torch.testing.assert_close(scores / t, processor(None, scores, cur_step=step_tensor),
                                   rtol=1e-6, atol=0)
        assert t < previous
        previous = t
    assert ref.temperature(n, n, t_min, t_max) == pytest.approx(t_max, rel=1e-12)
    assert ref.temperature(1, n, t_min, t_max) == pytest.approx(t_min + (t_max - t_min) / n, rel=1e-12)


@pytest.mark.parametrize("cur_step, num_steps", [(0, 5), (6, 5), (1, 0), (-2, 4)])
def test_temperature_rejects_steps_outside_the_loop(cur_step, num_steps):
    with pytest.raises(ValueError):
        ref.temperature(cur_step, num_steps)


SAMPLING_CASES = [(seed, dtype) for seed in range(4) for dtype in (torch.float32, torch.bfloat16)]


@pytest.mark.parametrize("seed, dtype", SAMPLING_CASES)
def test_sample_frequencies_match_release_distribution(seed, dtype):
    g = torch.Generator().manual_seed(416_100 + seed)
    n, t_min, t_max = _random_schedule(g)
    cur_step = int(torch.randint(1, n + 1, (1,), generator=g))
    rows, draws = 3, 20000
    vocab = int(torch.randint(3, 13, (1,), generator=g))
    base = (torch.randn(rows, vocab, generator=g) * 1.5).to(dtype)
    logits = base[:, None, :].expand(rows, draws, vocab).contiguous()

    processor = LinearTemperatureScheduleLogitsProcessor(t_min=t_min, t_max=t_max, max_denoising_steps=n)
    if dtype == torch.float32:
        # Exactly the release's distribution: softmax(scores / T) in float32.
        release_probs = torch.softmax(processor(None, base, cur_step=cur_step), dim=-1, dtype=torch.float32)
    else:
        # The release divides bfloat16 scores in bfloat16 (one more rounding); the reference
        # divides after upcasting, so compare with the exact tempered softmax of the same values.
        t = t_min + (t_max - t_min) * cur_step / n
        release_probs = torch.softmax(base.double() / t, dim=-1)

    t = ref.temperature(cur_step, n, t_min, t_max)
    tokens = ref.sample_tokens(logits, t, torch.Generator().manual_seed(seed))
    assert tokens.shape == (rows, draws) and tokens.dtype == torch.int64
    for r in range(rows):
        counts = torch.bincount(tokens[r], minlength=vocab)
        assert counts.numel() == vocab
        p = _chi_square_pvalue(counts, release_probs[r])
        assert p > ALPHA / (len(SAMPLING_CASES) * rows), f"row {r}: chi-square p-value {p:.3g}"


def test_greedy_matches_release_argmax_canvas():
    g = torch.Generator().manual_seed(416_200)
    logits = torch.randn(3, 17, 50, generator=g)
    processor = LinearTemperatureScheduleLogitsProcessor(t_min=0.4, t_max=0.8, max_denoising_steps=48)
    for cur_step in (48, 20, 1):
        # The release's argmax canvas is taken from the temperature-scaled logits.
        release_argmax = torch.argmax(processor(None, logits, cur_step=cur_step), dim=-1)
        assert torch.equal(ref.sample_tokens(logits, 0.0), release_argmax)


def test_chi_square_check_can_fail():
    """The frequency check has power: draws at the wrong temperature are rejected."""
    g = torch.Generator().manual_seed(416_300)
    base = torch.randn(1, 6, generator=g) * 1.5
    logits = base[:, None, :].expand(1, 20000, 6).contiguous()
    tokens = ref.sample_tokens(logits, 1.0, torch.Generator().manual_seed(1))  # T = 1 ...
    counts = torch.bincount(tokens[0], minlength=6)
    assert _chi_square_pvalue(counts, torch.softmax(base[0].double() / 0.5, -1)) < ALPHA  # ... tested at 0.5
    assert _chi_square_pvalue(counts, torch.softmax(base[0].double(), -1)) > ALPHA
