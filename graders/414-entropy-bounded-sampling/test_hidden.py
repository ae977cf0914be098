"""Hidden tests of 414-entropy-bounded-sampling (token_entropy, entropy_bound_accept,
accept_and_renoise)."""
from __future__ import annotations

import math

import torch

from runner.testing import Generator, assert_close, assert_shape_dtype, binomial_bound

INF = float("inf")
V = 8  # vocabulary of the hand-made acceptance cases
# Test data come from trusted generators seeded with DATA_SEED + k; the generators handed to the
# solver are seeded below 1000, so no solver draw can reproduce the data whatever its order.
DATA_SEED = 414_000


# ----------------------------------------------------------------------------------- helpers
def _peak_entropy(a: float, vocab: int) -> float:
    """Entropy (nats) of softmax([a, 0, ..., 0]) over `vocab` tokens, in float64."""
    p1 = 1.0 / (1.0 + (vocab - 1) * math.exp(-a))
    q = (1.0 - p1) / (vocab - 1)
    h = -p1 * math.log(p1)
    if q > 0:
        h -= (vocab - 1) * q * math.log(q)
    return h


def _peak_for(h: float, vocab: int) -> float:
    """The peak a >= 0 such that softmax([a, 0, ..., 0]) has entropy h (0 < h < ln vocab)."""
    lo, hi = 0.0, 80.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if _peak_entropy(mid, vocab) > h:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def logits_with_entropies(rows: list[list[float]], vocab: int = V) -> torch.Tensor:
    """(B, L, vocab) float32 logits whose position (b, l) has entropy rows[b][l] (nats).

    Entropy 0 is a single finite logit with -inf elsewhere. The peak token moves around."""
    out = torch.zeros(len(rows), len(rows[0]), vocab)
    for b, row in enumerate(rows):
        for l, h in enumerate(row):
            hot = (3 * l + b) % vocab
            if h == 0.0:
                out[b, l] = -INF
                out[b, l, hot] = 1.5
            else:
                out[b, l, hot] = _peak_for(h, vocab)
    return out


def mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def eb_margins_ok(entropy: torch.Tensor, bound: float, eps: float = 1e-4) -> bool:
    """True when no decision of the EB rule is within eps of flipping (a test-data sanity check)."""
    h, _ = torch.sort(entropy.double(), dim=-1)
    before = torch.cumsum(h, dim=-1) - h
    if bool(((before - bound).abs() < eps).any()):
        return False
    count = (before <= bound).sum(-1)
    for b in range(h.shape[0]):
        k = int(count[b])
        if k < h.shape[1] and float(h[b, k] - h[b, k - 1]) < eps:
            return False
    return True


# -------------------------------------------------------------------------------- token_entropy
def test_entropy_shape_dtype_and_values(submission, reference, problem):
    gen = torch.Generator().manual_seed(DATA_SEED + 414)
    scale = torch.tensor([0.1, 0.7, 2.0, 5.0, 10.0])[:, None, None]
    logits = torch.randn(5, 9, 13, generator=gen) * scale
    got = submission.token_entropy(logits)
    assert_shape_dtype(got, (5, 9), torch.float32, what="token_entropy output")
    assert_close(got, reference.token_entropy(logits), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="token entropies of random logits")


def test_entropy_is_in_nats(submission, problem):
    """Uniform over V tokens: ln V. Two equal tokens: ln 2. One sure token: 0."""
    logits = torch.zeros(1, 4, 16)
    logits[0, 1, :8] = 50.0
    logits[0, 2, :2] = 50.0
    logits[0, 3, 5] = 50.0
    got = submission.token_entropy(logits)
    want = torch.tensor([[math.log(16), math.log(8), math.log(2), 0.0]])
    assert_close(got, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="entropies of uniform and one-hot distributions (they must be in nats)")


def test_entropy_with_minus_inf_logits(submission, reference, problem):
    gen = torch.Generator().manual_seed(DATA_SEED + 7)
    logits = torch.randn(3, 8, 10, generator=gen) * 3.0
    ruled_out = torch.rand(3, 8, 10, generator=gen) < 0.4
    ruled_out[..., 0] = False                  # every row keeps at least one finite logit
    ruled_out[1, 2, 1:] = True                 # only one finite logit: entropy 0
    ruled_out[2, 5, 2:] = True                 # two finite logits
    logits = logits.masked_fill(ruled_out, -INF)
    got = submission.token_entropy(logits)
    assert_shape_dtype(got, (3, 8), torch.float32, what="token_entropy output")
    assert not bool(torch.isnan(got).any()), "token_entropy returned NaN where some logits are -inf"
    assert bool(torch.isfinite(got).all()), "token_entropy returned an infinite value"
    assert_close(got, reference.token_entropy(logits), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="token entropies with -inf logits")


def test_entropy_with_huge_logits(submission, reference, problem):
    """Logits of magnitude 1e4, at the problem's tolerance: the stable formula (log-softmax first)
    is within 3e-7 of the float64 entropy here; logsumexp(z) - sum(p * z) in float32 is off by
    5e-5 to 2e-3, outside the tolerance at 14 of the 18 positions."""
    gen = torch.Generator().manual_seed(DATA_SEED + 11)
    logits = torch.randn(3, 6, 12, generator=gen) * 1e4
    logits[0, 0] = 3e4                               # uniform at a huge level: ln 12
    logits[0, 1] = -2e4
    logits[0, 1, :2] = 2e4                           # two tied huge maxima: ln 2
    logits[1, 0] = torch.linspace(9990.0, 10000.0, 12)   # a broad distribution far from 0
    logits[1, 1:] = torch.randn(5, 12, generator=gen) * 2.0 - 1e4
    logits[2] = torch.randn(6, 12, generator=gen) * 3.0 + 1e4
    got = submission.token_entropy(logits)
    assert_shape_dtype(got, (3, 6), torch.float32, what="token_entropy output")
    assert bool(torch.isfinite(got).all()), "token_entropy is not finite for logits of magnitude 1e4"
    assert_close(got, reference.token_entropy(logits), rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="token entropies of logits of magnitude 1e4 (subtract no two large numbers)")


def test_entropy_with_underflowing_probabilities(submission, reference, problem):
    """Finite logits 150 to 450 below the maximum: their probabilities (e^-150 and less) underflow
    to exactly 0 in float32 and must contribute 0, not NaN."""
    gen = torch.Generator().manual_seed(DATA_SEED + 13)
    logits = torch.randn(3, 7, 10, generator=gen)
    far = torch.rand(3, 7, 10, generator=gen) < 0.5
    far[..., 0] = False                                  # a few tokens stay near the maximum
    logits = torch.where(far, logits - 150.0 - 300.0 * torch.rand(3, 7, 10, generator=gen), logits)
    logits[1, 3, 1:] = -500.0                            # a single token near 0: entropy 0
    got = submission.token_entropy(logits)
    assert_shape_dtype(got, (3, 7), torch.float32, what="token_entropy output")
    assert not bool(torch.isnan(got).any()), "token_entropy returned NaN where probabilities underflow to 0"
    assert_close(got, reference.token_entropy(logits), rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="token entropies when some probabilities underflow to 0")


def test_entropy_of_half_precision_logits(submission, reference, problem):
    gen = torch.Generator().manual_seed(DATA_SEED + 5)
    base = torch.randn(2, 7, 24, generator=gen) * torch.tensor([1.5, 6.0])[:, None, None]
    for dtype in (torch.bfloat16, torch.float16):
        logits = base.to(dtype)
        got = submission.token_entropy(logits)
        assert_shape_dtype(got, (2, 7), torch.float32, what=f"token_entropy output for {dtype} logits")
        assert_close(got, reference.token_entropy(logits), rtol=problem.tolerance.rtol,
                     atol=problem.tolerance.atol,
                     what=f"token entropies of {dtype} logits (compute in float32)")


# ------------------------------------------------------------------------- entropy_bound_accept
def test_accept_matches_on_random_logits(submission, reference):
    gen = torch.Generator().manual_seed(DATA_SEED + 2024)
    scale = torch.tensor([0.8, 2.5, 4.0, 7.0, 12.0, 3.0])[:, None, None]
    logits = torch.randn(6, 16, 12, generator=gen) * scale
    entropy = reference.token_entropy(logits)
    for bound in (0.1, 0.5, 2.0):
        assert eb_margins_ok(entropy, bound), "test data error: a decision is too close to call"
        got = submission.entropy_bound_accept(logits, bound)
        assert_shape_dtype(got, (6, 16), torch.bool, what="accepted mask")
        assert_close(got, reference.entropy_bound_accept(logits, bound), rtol=0, atol=0,
                     what="accepted mask of random logits")


def test_token_that_crosses_the_bound_is_accepted(submission):
    """The rule compares the sum of the entropies *before* the k-th one with the bound."""
    rows = [
        [0.9, 0.05, 0.6, 0.08, 0.3, 1.2],        # 0.05 + 0.08 crosses 0.1; both accepted
        [0.7, 0.4, 1.1, 0.5, 1.3, 0.9],          # even the lowest entropy exceeds the bound
        [0.01, 0.5, 0.02, 0.2, 0.035, 0.03],     # 0.01 + 0.02 + 0.03 + 0.035 < 0.1: 0.2 still in
    ]
    got = submission.entropy_bound_accept(logits_with_entropies(rows), 0.1)
    want = mask([[0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0], [1, 0, 1, 1, 1, 1]])
    assert_shape_dtype(got, (3, 6), torch.bool, what="accepted mask")
    assert_close(got, want, rtol=0, atol=0,
                 what="accepted mask (a token is accepted when the entropies accepted before it sum "
                      "to at most the bound)")


def test_lowest_entropies_at_their_own_positions(submission):
    """The accepted positions are the least uncertain ones, wherever they sit in the row."""
    rows = [
        [1.4, 1.1, 0.9, 0.6, 0.03, 0.01, 1.8, 0.04],
        [0.02, 1.7, 1.5, 0.06, 1.3, 1.0, 0.8, 0.7],
    ]
    got = submission.entropy_bound_accept(logits_with_entropies(rows), 0.1)
    want = mask([[0, 0, 0, 1, 1, 1, 0, 1], [1, 0, 0, 1, 0, 0, 0, 1]])
    assert_shape_dtype(got, (2, 8), torch.bool, what="accepted mask")
    wrong_side = bool((got & ~want).any()) and not bool((got & want).any())
    assert not wrong_side, "the accepted positions are the most uncertain ones, not the least"
    assert_close(got, want, rtol=0, atol=0,
                 what="accepted mask (decisions must land on the positions they were made for)")


def test_at_least_one_token_per_row(submission):
    rows = [
        [1.6, 0.9, 1.2, 0.6, 2.0],
        [0.3, 0.25, 1.9, 1.0, 0.5],
        [1.1, 1.3, 1.7, 1.5, 0.45],
    ]
    logits = logits_with_entropies(rows)
    for bound in (1e-3, 0.1):
        got = submission.entropy_bound_accept(logits, bound)
        assert_shape_dtype(got, (3, 5), torch.bool, what="accepted mask")
        assert bool(got.any(-1).all()), "a row accepted no token at all"
        assert_close(got, mask([[0, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]), rtol=0, atol=0,
                     what="accepted mask when every entropy exceeds the bound")


def test_bound_zero_and_certain_tokens(submission):
    """Tokens of entropy exactly 0 add nothing to the sum, so with bound 0 they are all
    accepted, and so is the next one."""
    rows = [
        [0.0, 0.3, 0.0, 0.2, 0.9, 0.0],
        [0.8, 0.5, 0.6, 1.0, 0.7, 1.2],
    ]
    got = submission.entropy_bound_accept(logits_with_entropies(rows), 0.0)
    assert_shape_dtype(got, (2, 6), torch.bool, what="accepted mask")
    assert bool(got.any(-1).all()), "bound 0: a row accepted no token at all"
    assert_close(got, mask([[1, 0, 1, 1, 0, 1], [0, 1, 0, 0, 0, 0]]), rtol=0, atol=0,
                 what="accepted mask with bound 0 (every token of entropy exactly 0, and the next one)")


def test_rows_decide_independently(submission):
    rows = [
        [0.03, 0.35, 0.05, 0.6, 0.04, 0.5],      # three accepted
        [0.8, 1.3, 0.9, 1.1, 1.2, 1.0],          # only the lowest
        [0.001, 0.002, 0.003, 0.004, 0.005, 0.006],  # all accepted
    ]
    got = submission.entropy_bound_accept(logits_with_entropies(rows), 0.1)
    want = mask([[1, 0, 1, 0, 1, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    assert_shape_dtype(got, (3, 6), torch.bool, what="accepted mask")
    assert_close(got, want, rtol=0, atol=0,
                 what="accepted mask of a batch (each row applies the bound on its own)")


def test_accept_with_minus_inf_logits(submission):
    """Positions with -inf logits are not certain for that: two or three equally likely finite
    tokens have entropy ln 2 or ln 3, and only a single finite token has entropy 0."""
    rows = [
        [0.5, 0.02, 0.0, 0.04, 0.3, 0.05, 1.0],
        [0.03, 0.6, 0.01, 0.4, 0.0, 0.9, 0.02],
    ]
    logits = logits_with_entropies(rows)
    # Replace the positions of entropy 0.5, 0.3 (row 0) and 0.6, 0.4 (row 1) by -inf logits with
    # two or three finite, equal ones: entropies ln 3 = 1.099 and ln 2 = 0.693.
    for b, l, k in [(0, 0, 3), (0, 4, 2), (1, 1, 2), (1, 3, 3)]:
        logits[b, l] = -INF
        logits[b, l, :k] = 0.75
    # Row 0 sorted: 0, 0.02, 0.04, 0.05 | 0.693, 1.0, 1.099 (sums before them: 0, 0, 0.02, 0.06 | 0.11).
    # Row 1 sorted: 0, 0.01, 0.02, 0.03 | 0.693, 0.9, 1.099 (sums before them: 0, 0, 0.01, 0.03 | 0.06):
    # 0.693 is the crossing token there, and the -inf position holding it is accepted.
    got = submission.entropy_bound_accept(logits, 0.1)
    assert_shape_dtype(got, (2, 7), torch.bool, what="accepted mask")
    want = mask([[0, 1, 1, 1, 0, 1, 0], [1, 1, 1, 0, 1, 0, 1]])
    assert_close(got, want, rtol=0, atol=0,
                 what="accepted mask where some logits are -inf (a -inf logit adds 0 to the entropy, "
                      "the other tokens still count)")


# --------------------------------------------------------------------------- accept_and_renoise
def _renoise_inputs(seed: int, batch: int = 6, length: int = 400, vocab: int = 5):
    gen = torch.Generator().manual_seed(DATA_SEED + seed)
    current = torch.randint(0, vocab, (batch, length), generator=gen)
    denoiser = torch.randint(0, vocab, (batch, length), generator=gen)
    accepted = torch.rand(batch, length, generator=gen) < 0.3
    accepted[0] = True      # a fully accepted row
    accepted[1] = False     # a row with nothing accepted
    return current, denoiser, accepted


def test_accepted_positions_take_the_sampled_token(submission):
    current, denoiser, accepted = _renoise_inputs(1)
    out = submission.accept_and_renoise(current, denoiser, accepted, 5, generator=Generator(3))
    assert_shape_dtype(out, tuple(current.shape), torch.int64, what="next canvas")
    assert torch.equal(out[accepted], denoiser[accepted]), \
        "an accepted position does not hold the denoiser's token"
    assert bool(((out >= 0) & (out < 5)).all()), "the next canvas holds a token outside [0, vocab_size)"


def test_renoised_positions_are_fresh_uniform_tokens(submission):
    vocab = 5
    current, denoiser, accepted = _renoise_inputs(2, vocab=vocab)
    out = submission.accept_and_renoise(current, denoiser, accepted, vocab, generator=Generator(17))
    assert_shape_dtype(out, tuple(current.shape), torch.int64, what="next canvas")
    noise = out[~accepted]
    n = noise.numel()
    assert bool(((noise >= 0) & (noise < vocab)).all()), "a renoised token is outside [0, vocab_size)"
    # Each check below wrongly fails a correct solution with probability < 1e-6.
    k = binomial_bound(n, 1 / vocab)
    counts = torch.bincount(noise, minlength=vocab)
    assert bool(((counts.double() - n / vocab).abs() <= k).all()), \
        "renoised tokens are not uniform over [0, vocab_size)"
    same_as_current = int((out == current)[~accepted].sum())
    assert abs(same_as_current - n / vocab) <= k, \
        "renoised positions do not hold the current canvas's token as often as a fresh uniform draw " \
        "would (1 in vocab_size): draw them anew, neither copy nor avoid it"
    same_as_denoiser = int((out == denoiser)[~accepted].sum())
    assert abs(same_as_denoiser - n / vocab) <= k, \
        "positions that were not accepted do not hold the denoiser's token as rarely as a fresh " \
        "uniform draw would"


def test_renoised_tokens_are_independent(submission):
    """Fresh tokens are independent per position and per batch row: two of them agree with
    probability 1 / vocab. Disjoint pairs make each count binomial; each check wrongly fails a
    correct solution with probability below 1e-6."""
    vocab, batch, length = 4, 200, 60
    current = torch.zeros(batch, length, dtype=torch.long)
    accepted = torch.zeros(batch, length, dtype=torch.bool)
    out = _next_canvas(submission, current, current, accepted, vocab, generator=Generator(19))
    rows_agree = int((out[0::2] == out[1::2]).sum())
    pairs = batch // 2 * length
    assert abs(rows_agree - pairs / vocab) <= binomial_bound(pairs, 1 / vocab), \
        "the fresh tokens of different batch rows at the same position do not agree as often as " \
        "independent draws, uniform over every id of the vocabulary, do"
    cols_agree = int((out[:, 0::2] == out[:, 1::2]).sum())
    pairs = batch * (length // 2)
    assert abs(cols_agree - pairs / vocab) <= binomial_bound(pairs, 1 / vocab), \
        "the fresh tokens of neighbouring positions do not agree as often as independent draws, " \
        "uniform over every id of the vocabulary, do"


def _next_canvas(submission, current, *args, **kwargs) -> torch.Tensor:
    """accept_and_renoise's answer, once it is an int64 tensor shaped like the current canvas."""
    out = submission.accept_and_renoise(current, *args, **kwargs)
    assert_shape_dtype(out, tuple(current.shape), torch.int64, what="next canvas")
    return out


def test_renoising_follows_the_generator(submission):
    current, denoiser, accepted = _renoise_inputs(3, batch=3, length=64, vocab=50)
    first = _next_canvas(submission, current, denoiser, accepted, 50, generator=Generator(21))
    again = _next_canvas(submission, current, denoiser, accepted, 50, generator=Generator(21))
    assert torch.equal(first, again), "the same generator seed gave a different canvas"
    other = _next_canvas(submission, current, denoiser, accepted, 50, generator=Generator(22))
    # About 150 renoised positions over 50 tokens: equal by chance with probability ~50**-150.
    assert not torch.equal(first, other), "a different generator seed gave the same canvas"
    gen = Generator(23)
    step1 = _next_canvas(submission, current, denoiser, accepted, 50, generator=gen)
    step2 = _next_canvas(submission, current, denoiser, accepted, 50, generator=gen)
    assert not torch.equal(step1, step2), "two successive steps drew the same noise"
