"""Hidden tests for problem 416: temperature schedule and sampling.

Statistical tests compare token counts with their binomial expectation through the Chernoff
bound P(|X/n - p| this far) <= exp(-n KL(X/n || p)) per tail. Each test splits its error budget
ALPHA over all the counts it checks (union bound), so a correct sampler fails any one of them with
probability below ALPHA = 1e-6 -- and, since the seeds are fixed, a correct sampler that passes
passes every time.
"""
from __future__ import annotations

import math

import pytest
import torch

from runner.testing import Generator, assert_close, assert_shape_dtype

ALPHA = 1e-6

# (num_steps, t_min, t_max) schedules; None means "use the defaults" (0.4, 0.8).
SCHEDULES = [(48, None, None), (10, 0.2, 1.0), (7, 0.0, 0.5), (3, 0.5, 1.5)]


# ----------------------------------------------------------------------------- helpers

def _temp(submission, cur_step, num_steps, t_min, t_max):
    if t_min is None:
        return submission.temperature(cur_step, num_steps)
    return submission.temperature(cur_step, num_steps, t_min, t_max)


def _ref_temp(reference, cur_step, num_steps, t_min, t_max):
    if t_min is None:
        return reference.temperature(cur_step, num_steps)
    return reference.temperature(cur_step, num_steps, t_min, t_max)


def _raises_value_error(call) -> bool:
    """True when the solver's call raised ValueError (it crosses the sandbox as an error whose
    message starts with the exception's type name)."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the sandbox wraps the solver's exception
        return isinstance(exc, ValueError) or str(exc).startswith("ValueError")
    return False


def _kl(q: float, p: float) -> float:
    """KL divergence between Bernoulli(q) and Bernoulli(p), 0 < p < 1."""
    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)
    return term(q, p) + term(1 - q, 1 - p)


def _count_plausible(count: int, n: int, p: float, alpha: float) -> bool:
    """False when a Binomial(n, p) count this far from n p has (two-sided Chernoff) probability
    below alpha."""
    return n * _kl(count / n, p) <= math.log(2 / alpha)


def _tokens(out, shape, what):
    assert_shape_dtype(out, shape, torch.int64, what=what)
    return out


def _check_frequencies(tokens: torch.Tensor, probs: torch.Tensor, alpha: float) -> bool:
    """tokens (R, L): L draws per row; probs (R, V) float64. Checks every token count and the
    count of 'anything but the most likely token' of every row."""
    rows, length = tokens.shape
    vocab = probs.shape[1]
    if bool(((tokens < 0) | (tokens >= vocab)).any()):
        return False
    per_check = alpha / (rows * (vocab + 1))
    for r in range(rows):
        counts = torch.bincount(tokens[r], minlength=vocab).tolist()
        p = probs[r].tolist()
        for v in range(vocab):
            if not _count_plausible(counts[v], length, p[v], per_check):
                return False
        top = max(range(vocab), key=lambda v: p[v])
        if not _count_plausible(length - counts[top], length, 1 - p[top], per_check):
            return False
    return True


# ----------------------------------------------------------------------------- the schedule

def test_schedule_endpoints(submission, reference, problem):
    tol = problem.tolerance
    for n, t_min, t_max in SCHEDULES:
        first = _temp(submission, n, n, t_min, t_max)
        last = _temp(submission, 1, n, t_min, t_max)
        assert isinstance(first, float) and isinstance(last, float), \
            "temperature() must return a Python float"
        assert_close(first, _ref_temp(reference, n, n, t_min, t_max), rtol=tol.rtol, atol=tol.atol,
                     what="temperature at the first denoising step (cur_step == num_steps)")
        assert_close(last, _ref_temp(reference, 1, n, t_min, t_max), rtol=tol.rtol, atol=tol.atol,
                     what="temperature at the last denoising step (cur_step == 1)")


def test_schedule_every_step(submission, reference, problem):
    tol = problem.tolerance
    for n, t_min, t_max in SCHEDULES:
        for cur in range(n, 0, -1):
            assert_close(_temp(submission, cur, n, t_min, t_max), _ref_temp(reference, cur, n, t_min, t_max),
                         rtol=tol.rtol, atol=tol.atol, what="temperature at an intermediate step")


def test_temperature_falls_during_denoising(submission):
    n = 12
    values = [submission.temperature(cur, n, 0.3, 0.9) for cur in range(n, 0, -1)]  # the loop's order
    assert all(isinstance(v, float) for v in values), "temperature() must return a Python float"
    assert all(a > b for a, b in zip(values, values[1:])), \
        "the temperature must fall as denoising proceeds (cur_step counts down from num_steps to 1)"


def test_single_step_schedule(submission, reference, problem):
    tol = problem.tolerance
    assert_close(submission.temperature(1, 1, 0.25, 0.75), reference.temperature(1, 1, 0.25, 0.75),
                 rtol=tol.rtol, atol=tol.atol, what="temperature of a one-step schedule")


def test_invalid_steps_raise_value_error(submission):
    bad = [(0, 10), (11, 10), (-1, 10), (0, 0), (1, 0)]
    for cur, n in bad:
        assert _raises_value_error(lambda: submission.temperature(cur, n)), \
            "temperature() must raise ValueError when cur_step is outside [1, num_steps] or num_steps < 1"


# ----------------------------------------------------------------------------- sampling

def test_sample_shape_and_dtype(submission):
    torch.manual_seed(4160)
    logits = torch.randn(3, 5, 11)
    for x, what in ((logits, "float32 logits"), (logits.bfloat16(), "bfloat16 logits")):
        for t in (0.7, 0.0):
            _tokens(submission.sample_tokens(x, t, Generator(1)), (3, 5), f"tokens sampled from {what}")
    # The generator is optional: without one, the draw uses torch's global generator.
    _tokens(submission.sample_tokens(logits, 0.7), (3, 5), "tokens sampled without a generator")


def test_zero_temperature_is_argmax(submission):
    g = torch.Generator().manual_seed(4161)
    # Distinct values that bfloat16 holds exactly, so the argmax has no ties in either dtype.
    logits = torch.stack([torch.randperm(40, generator=g) for _ in range(2 * 9)]).view(2, 9, 40) * 0.25 - 5.0
    for x in (logits, logits.bfloat16()):
        out = _tokens(submission.sample_tokens(x, 0.0, Generator(2)), (2, 9), "tokens at temperature 0")
        assert torch.equal(out, x.argmax(-1)), f"temperature 0 must give the argmax token ({x.dtype} logits)"


@pytest.mark.points(2)
def test_frequencies_follow_tempered_softmax(submission):
    g = torch.Generator().manual_seed(4162)
    rows, length, vocab = 3, 20000, 6
    for t in (0.5, 1.6):
        base = torch.randn(rows, vocab, generator=g) * 1.5
        logits = base[:, None, :].expand(rows, length, vocab).contiguous()
        out = _tokens(submission.sample_tokens(logits, t, Generator(10 + int(t * 10))), (rows, length),
                      "sampled tokens")
        probs = torch.softmax(base.double() / t, dim=-1)
        assert _check_frequencies(out, probs, ALPHA), \
            "token frequencies do not follow softmax(logits / temperature)"


@pytest.mark.points(2)
def test_rare_tokens_with_bfloat16_logits(submission):
    # Rows of the kind a model puts out: one likely token and a tail of rare ones. Row 0 spreads
    # the tail over several orders of magnitude, row 1 has one token that should (almost) never
    # appear, row 2 has seven equally rare tokens. Noise of low precision draws the tail wrongly.
    rows = torch.tensor([[0.0, -1.0, -2.5, -3.0, -3.5, -4.0, -5.0, -6.0],
                         [0.0, -7.0] + [-30.0] * 6,
                         [0.0] + [-4.0] * 7])
    r, vocab = rows.shape
    length, t = 60000, 0.5  # dividing by 0.5 is exact in bfloat16
    logits = rows[:, None, :].expand(r, length, vocab).bfloat16()
    out = _tokens(submission.sample_tokens(logits, t, Generator(416)), (r, length), "sampled tokens")
    probs = torch.softmax(rows.double() / t, dim=-1)
    assert _check_frequencies(out, probs, ALPHA), \
        "rare tokens are drawn at the wrong rate (is the random noise precise enough?)"


def test_positions_are_drawn_independently(submission):
    rows, length, vocab = 4, 512, 16
    logits = torch.zeros(rows, length, vocab)  # every position uniform over the vocabulary
    out = _tokens(submission.sample_tokens(logits, 1.0, Generator(7)), (rows, length), "sampled tokens")
    # Disjoint pairs are independent: each agrees with probability 1 / vocab.
    same_in_row = int((out[:, 0::2] == out[:, 1::2]).sum())
    same_across_rows = int((out[0::2] == out[1::2]).sum())
    n_in_row, n_across = rows * length // 2, rows // 2 * length
    assert _count_plausible(same_in_row, n_in_row, 1 / vocab, ALPHA / 2), \
        "positions of one row are not drawn independently of each other"
    assert _count_plausible(same_across_rows, n_across, 1 / vocab, ALPHA / 2), \
        "rows of the batch are not drawn independently of each other"


def test_same_seed_gives_same_tokens(submission):
    torch.manual_seed(4163)
    logits = torch.randn(4, 64, 32)
    a, b, c = (_tokens(submission.sample_tokens(logits, 1.0, Generator(seed)), (4, 64), "sampled tokens")
               for seed in (1234, 1234, 4321))
    assert torch.equal(a, b), "the same generator seed must give the same tokens (draw every random number from it)"
    # 256 positions of a spread distribution: two different seeds agreeing everywhere has
    # probability far below 1e-100.
    assert not torch.equal(a, c), "different generator seeds gave identical tokens"


def test_masked_tokens_are_never_drawn(submission):
    g = torch.Generator().manual_seed(4164)
    rows, length, vocab = 2, 300, 10
    logits = torch.randn(rows, length, vocab, generator=g)
    masked = torch.rand(rows, length, vocab, generator=g) < 0.5
    masked[..., 0] = False  # at least one token stays allowed everywhere
    logits = logits.masked_fill(masked, float("-inf"))
    for t in (1.3, 0.0):
        out = _tokens(submission.sample_tokens(logits, t, Generator(3)), (rows, length), "sampled tokens")
        assert not bool(masked.gather(-1, out.unsqueeze(-1)).any()), \
            "a token whose logit is -inf was drawn"


def test_sharp_logits_do_not_overflow(submission):
    g = torch.Generator().manual_seed(4165)
    rows, length, vocab = 2, 50, 12
    logits = torch.randn(rows, length, vocab, generator=g) * 3
    winner = torch.randint(vocab, (rows, length), generator=g)
    logits.scatter_add_(-1, winner.unsqueeze(-1), torch.full((rows, length, 1), 200.0))
    out = _tokens(submission.sample_tokens(logits, 0.4, Generator(5)), (rows, length), "sampled tokens")
    # Every other token is at least e^-400 times less likely: the draw is certain.
    assert torch.equal(out, winner), "very large logits at low temperature did not give the dominant token"
