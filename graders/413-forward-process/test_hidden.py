"""Hidden tests for problem 413: the uniform-state forward process and the training loss.

Statistical checks compare counts with their binomial expectation through the two-sided Chernoff
bound P(|X/n - p| at least this far) <= 2 exp(-n KL(X/n || p)). Each test splits an error budget
ALPHA = 1e-6 over all the counts it checks (union bound), so a correct solution fails a given test
with probability below 1e-6; since the seeds are fixed, a correct solution that passes once passes
every time.
"""
from __future__ import annotations

import math

import torch

from runner.testing import Generator, assert_close, assert_shape_dtype

ALPHA = 1e-6

# Test data (clean tokens, masks, logits) come from trusted generators seeded with DATA_SEED + k;
# the generators handed to the solver are seeded below 1000. No test hands the solver a generator
# in the state that made its data: a solver who draws in the same order as the data was made
# would otherwise reproduce it (the order of the draws is the solver's choice).
DATA_SEED = 413_000


# ----------------------------------------------------------------------------- helpers

def _kl(q: float, p: float) -> float:
    """KL divergence between Bernoulli(q) and Bernoulli(p), 0 < p < 1."""
    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)
    return term(q, p) + term(1 - q, 1 - p)


def _plausible(count: int, n: int, p: float, alpha: float) -> bool:
    """False when a Binomial(n, p) count this far from n p has probability below alpha."""
    if p <= 0.0:
        return count == 0
    if p >= 1.0:
        return count == n
    return n * _kl(count / n, p) <= math.log(2 / alpha)


def _raises_value_error(call) -> bool:
    """True when the solver's call raised ValueError (it crosses the sandbox as an error whose
    message starts with the exception's type name)."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the sandbox wraps the solver's exception
        if isinstance(exc, ValueError) or str(exc).startswith("ValueError"):
            return True
        raise  # any other exception is the solver's error, reported as such
    return False


def _scatter_rows(valid: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The same number of valid positions per row, at random places (pads anywhere in the row)."""
    order = torch.argsort(torch.rand(valid.shape, generator=g), dim=1)
    return torch.gather(valid, 1, order)


def _canvas(seed: int, batch: int, length: int, vocab: int, pad_share: float, scattered: bool = False):
    """Random clean tokens and a valid mask with up to pad_share * length pads per row: a suffix,
    or (scattered) at random places in the row."""
    g = torch.Generator().manual_seed(DATA_SEED + seed)
    tokens = torch.randint(0, vocab, (batch, length), generator=g)
    n_valid = length - (torch.rand(batch, generator=g) * pad_share * length).long()
    valid = torch.arange(length)[None, :] < n_valid[:, None]
    return tokens, _scatter_rows(valid, g) if scattered else valid


def _loss_inputs(seed: int, batch: int, length: int, vocab: int, scattered: bool = False):
    """Logits, clean tokens, valid mask (row lengths from full down to 1; pads a suffix, or at
    random places) and weights; the logits at pad positions strongly favour a wrong token, so
    scoring a pad shows."""
    g = torch.Generator().manual_seed(DATA_SEED + seed)
    logits = 2.0 * torch.randn(batch, length, vocab, generator=g)
    clean = torch.randint(0, vocab, (batch, length), generator=g)
    n_valid = torch.linspace(length, 1, batch).round().long()
    valid = torch.arange(length)[None, :] < n_valid[:, None]
    if scattered:
        valid = _scatter_rows(valid, g)
    wrong = (clean + 1) % vocab
    pad_logits = 12.0 * torch.nn.functional.one_hot(wrong, vocab).float()
    logits = torch.where(valid[..., None], logits, pad_logits)
    weights = 0.5 + 4.0 * torch.rand(batch, generator=g)
    return logits, clean, valid, weights


def _noise_levels(submission, n: int, *args, **kwargs) -> torch.Tensor:
    """sample_noise_level's answer, once it is a float32 tensor of shape (n,)."""
    t = submission.sample_noise_level(n, *args, **kwargs)
    assert_shape_dtype(t, (n,), torch.float32, what="the noise levels")
    return t


def _corrupt(submission, tokens, *args, **kwargs):
    """corrupt_canvas's answer, once it is a pair of tensors shaped like `tokens` (int64, bool)."""
    out = submission.corrupt_canvas(tokens, *args, **kwargs)
    assert isinstance(out, (tuple, list)) and len(out) == 2, \
        "corrupt_canvas must return the pair (noisy_tokens, resampled_mask)"
    noisy, resampled = out
    assert_shape_dtype(noisy, tuple(tokens.shape), torch.int64, what="noisy_tokens")
    assert_shape_dtype(resampled, tuple(tokens.shape), torch.bool, what="resampled_mask")
    return noisy, resampled


# ----------------------------------------------------------------------------- sample_noise_level

def test_noise_level_shape_dtype_and_range(submission):
    t = submission.sample_noise_level(4000, 0.3, 0.45, generator=Generator(11))
    assert_shape_dtype(t, (4000,), torch.float32, what="the noise levels")
    assert bool(((t >= 0.3 - 1e-6) & (t <= 0.45 + 1e-6)).all()), "a noise level lies outside [t_min, t_max]"
    # 20000 draws: a range of [0, 1] instead of the defaults puts one outside [1e-3, 1 - 1e-3]
    # except with probability 0.998 ** 20000 < 1e-17.
    t = submission.sample_noise_level(20000, generator=Generator(12))
    assert_shape_dtype(t, (20000,), torch.float32, what="the noise levels with the default range")
    assert bool(((t >= 1e-3 - 1e-6) & (t <= 1 - 1e-3 + 1e-6)).all()), \
        "with the defaults, a noise level lies outside [1e-3, 1 - 1e-3]"
    t = submission.sample_noise_level(5, 0.7, 0.7, generator=Generator(13))
    assert_close(t, torch.full((5,), 0.7), rtol=0, atol=1e-6, what="noise levels with t_min == t_max")


def test_noise_level_bounds_may_be_zero_and_one(submission):
    # 0 <= t_min <= t_max <= 1: both ends of the unit interval are allowed bounds.
    t = _noise_levels(submission, 2000, 0.0, 1.0, generator=Generator(14))
    assert bool(((t >= 0.0) & (t <= 1.0)).all()), "with t_min = 0 and t_max = 1, a noise level lies outside [0, 1]"
    t = _noise_levels(submission, 5, 0.0, 0.0, generator=Generator(15))
    assert_close(t, torch.zeros(5), rtol=0, atol=1e-6, what="noise levels with t_min == t_max == 0")
    t = _noise_levels(submission, 5, 1.0, 1.0, generator=Generator(16))
    assert_close(t, torch.ones(5), rtol=0, atol=1e-6, what="noise levels with t_min == t_max == 1")


def test_noise_level_one_uniform_draw_per_example(submission):
    n, lo, hi = 4000, 0.3, 0.45
    t = submission.sample_noise_level(n, lo, hi, generator=Generator(21))
    assert_shape_dtype(t, (n,), torch.float32, what="the noise levels")
    assert len(set(t.tolist())) >= n - 100, "the examples do not get independent noise levels"
    # Four equal bins of [lo, hi]: each should hold a quarter of the draws.
    bins = ((t.double() - lo) / (hi - lo) * 4).floor().clamp(0, 3).long()
    counts = torch.bincount(bins, minlength=4)
    for k in range(4):
        assert _plausible(int(counts[k]), n, 0.25, ALPHA / 4), \
            "the noise levels are not spread uniformly over [t_min, t_max]"


def test_noise_level_follows_the_generator(submission):
    a = _noise_levels(submission, 64, generator=Generator(31))
    b = _noise_levels(submission, 64, generator=Generator(31))
    c = _noise_levels(submission, 64, generator=Generator(32))
    assert_close(a, b, rtol=0, atol=0, what="two calls with the same seed")
    assert not torch.equal(a, c), "two different seeds gave the same noise levels"


# ----------------------------------------------------------------------------- corrupt_canvas

def test_corrupt_leaves_pads_alone(submission):
    tokens, valid = _canvas(41, 3, 600, 7, pad_share=0.8, scattered=True)
    t = torch.tensor([1.0, 0.6, 0.3])
    noisy, resampled = _corrupt(submission, tokens, t, 7, valid, generator=Generator(41))
    pads = ~valid
    assert bool((noisy[pads] == tokens[pads]).all()), "pad positions were changed"
    assert not bool(resampled[pads].any()), "resampled_mask marks pad positions"
    assert bool(((noisy >= 0) & (noisy < 7)).all()), "a token lies outside [0, vocab_size)"
    assert bool(resampled[0][valid[0]].all()), "with t = 1 not every valid position was resampled"
    # valid_mask=None: every position counts as valid.
    noisy, resampled = _corrupt(submission, tokens, torch.tensor([1.0, 0.0, 1.0]), 7, generator=Generator(42))
    assert_close(resampled, torch.tensor([[True], [False], [True]]).expand(3, 600), rtol=0, atol=0,
                 what="resampled_mask with valid_mask=None and t = (1, 0, 1)")
    assert_close(noisy[1], tokens[1], rtol=0, atol=0, what="the row with t = 0")


def test_corrupt_frequency_matches_t_per_example(submission):
    t = torch.tensor([0.0, 0.05, 0.3, 0.6, 0.9, 1.0])
    tokens, valid = _canvas(51, 6, 4000, 1000, pad_share=0.3)
    noisy, resampled = _corrupt(submission, tokens, t, 1000, valid, generator=Generator(51))
    changed = noisy != tokens
    assert not bool((changed & ~resampled).any()), "a token changed at a position not marked as resampled"
    for b in range(6):
        n = int(valid[b].sum())
        k = int(resampled[b].sum())
        assert _plausible(k, n, float(t[b]), ALPHA / 6), \
            f"example {b}: the share of resampled positions does not match its own noise level t[{b}]"


def test_mask_marks_resampled_positions_not_changed_ones(submission):
    # Vocabulary of 2: a resampled position draws its own token back half of the time.
    t = torch.tensor([0.8, 0.5])
    tokens, valid = _canvas(61, 2, 4000, 2, pad_share=0.0)
    noisy, resampled = _corrupt(submission, tokens, t, 2, valid, generator=Generator(61))
    changed = noisy != tokens
    assert not bool((changed & ~resampled).any()), "a token changed at a position not marked as resampled"
    for b in range(2):
        n = int(valid[b].sum())
        assert _plausible(int(resampled[b].sum()), n, float(t[b]), ALPHA / 4), \
            "the mask does not mark every resampled position (a resample may draw its own token back)"
        m = int(resampled[b].sum())
        same = int((resampled[b] & ~changed[b]).sum())
        assert _plausible(same, m, 0.5, ALPHA / 4), \
            "resampled tokens do not draw the original token back as often as a uniform draw would"


def test_fresh_tokens_uniform_over_whole_vocabulary(submission):
    # t = 1: every position is a fresh draw. Row 0 holds only id 0, row 1 only the last id.
    vocab, length = 6, 3000
    tokens = torch.tensor([[0], [vocab - 1]]).expand(2, length).contiguous()
    noisy, resampled = _corrupt(submission, tokens, torch.ones(2), vocab, generator=Generator(71))
    assert bool(resampled.all()), "with t = 1 every position must be resampled"
    for b in range(2):
        counts = torch.bincount(noisy[b].clamp(0, vocab - 1), minlength=vocab)
        for v in range(vocab):
            assert _plausible(int(counts[v]), length, 1 / vocab, ALPHA / (2 * vocab)), \
                "the fresh tokens are not uniform over all vocab_size ids (the original id included)"


def test_fresh_tokens_uniform_when_t_below_one(submission):
    # t < 1: the resampled positions must hold uniform tokens too, not only when t = 1 (drawing
    # the token from the coin's own uniform number, e.g. floor(u * vocab_size) given u < t, gives
    # uniform tokens at t = 1 only).
    vocab, length = 6, 6000
    t = torch.tensor([0.3, 0.6])
    tokens, valid = _canvas(75, 2, length, vocab, pad_share=0.0)
    noisy, resampled = _corrupt(submission, tokens, t, vocab, valid, generator=Generator(75))
    for b in range(2):
        m = int(resampled[b].sum())
        assert _plausible(m, length, float(t[b]), ALPHA / 14), \
            "the share of resampled positions does not match the noise level"
        counts = torch.bincount(noisy[b][resampled[b]].clamp(0, vocab - 1), minlength=vocab)
        for v in range(vocab):
            assert _plausible(int(counts[v]), m, 1 / vocab, ALPHA / 14), \
                "with t < 1, the resampled positions do not hold tokens uniform over all vocab_size ids"


def test_corrupt_draws_are_independent_per_position(submission):
    """Every position has its own coin and its own fresh token: no count fixed in advance, no coin
    or token shared between the rows of a batch or between neighbouring positions. Each of the
    five counts below is checked at ALPHA / 5 (disjoint pairs, so every count is binomial)."""
    batch, length = 2000, 16
    tokens = torch.zeros(batch, length, dtype=torch.long)
    _, resampled = _corrupt(submission, tokens, torch.full((batch,), 0.5), 1000,
                            generator=Generator(77))
    rows_agree = int((resampled[0::2] == resampled[1::2]).sum())
    assert _plausible(rows_agree, batch // 2 * length, 0.5, ALPHA / 5), \
        "examples of the same noise level share their resampling coins"
    cols_agree = int((resampled[:, 0::2] == resampled[:, 1::2]).sum())
    assert _plausible(cols_agree, batch * (length // 2), 0.5, ALPHA / 5), \
        "neighbouring positions do not get independent resampling coins"
    # A row of 16 independent fair coins shows exactly 8 heads with probability C(16, 8) / 2 ** 16.
    per_row = resampled.sum(dim=1)
    assert _plausible(int((per_row == length // 2).sum()), batch, math.comb(16, 8) / 2 ** 16, ALPHA / 5), \
        "the number of resampled positions of an example does not vary as it does with an " \
        "independent coin per position (is it fixed in advance?)"
    # t = 1: every position is a fresh token; two of them agree with probability 1 / vocab.
    vocab, batch, length = 4, 400, 40
    tokens = torch.zeros(batch, length, dtype=torch.long)
    noisy, _ = _corrupt(submission, tokens, torch.ones(batch), vocab, generator=Generator(78))
    rows_agree = int((noisy[0::2] == noisy[1::2]).sum())
    assert _plausible(rows_agree, batch // 2 * length, 1 / vocab, ALPHA / 5), \
        "the fresh tokens of different examples at the same position do not agree as rarely as " \
        "independent uniform draws do"
    cols_agree = int((noisy[:, 0::2] == noisy[:, 1::2]).sum())
    assert _plausible(cols_agree, batch * (length // 2), 1 / vocab, ALPHA / 5), \
        "the fresh tokens of neighbouring positions do not agree as rarely as independent uniform " \
        "draws do"


def test_corrupt_vocabulary_of_one(submission):
    # vocab_size = 1: every id is 0 and every fresh token is 0 too, but resampling still happens.
    tokens = torch.zeros(2, 50, dtype=torch.long)
    noisy, resampled = _corrupt(submission, tokens, torch.tensor([1.0, 0.0]), 1, generator=Generator(79))
    assert bool((noisy == 0).all()), "with vocab_size = 1 every token must be id 0"
    assert bool(resampled[0].all()) and not bool(resampled[1].any()), \
        "with vocab_size = 1, t = 1 must still resample (and mark) every position, t = 0 none"


def test_corrupt_follows_the_generator(submission):
    tokens, valid = _canvas(81, 2, 300, 50, pad_share=0.2)
    t = torch.tensor([0.5, 0.7])
    a = _corrupt(submission, tokens, t, 50, valid, generator=Generator(81))
    b = _corrupt(submission, tokens, t, 50, valid, generator=Generator(81))
    c = _corrupt(submission, tokens, t, 50, valid, generator=Generator(82))
    assert_close(a[0], b[0], rtol=0, atol=0, what="noisy_tokens of two calls with the same seed")
    assert_close(a[1], b[1], rtol=0, atol=0, what="resampled_mask of two calls with the same seed")
    assert not (torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])), \
        "two different seeds gave the same corruption"


# ----------------------------------------------------------------------------- loss_weight

def test_loss_weight_values(submission, reference, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    t = torch.linspace(1e-3, 1 - 1e-3, 41)
    base = submission.loss_weight(t, "base-sft")
    assert_close(base, torch.ones(41), what="base-sft weights", **tol)
    assert_close(submission.loss_weight(t), torch.ones(41), what="the default kind's weights", **tol)
    assert_close(submission.loss_weight(t, "base-sft", 5.0), torch.ones(41),
                 what="base-sft weights (a clip does not change them)", **tol)
    assert_close(submission.loss_weight(t, "base-sft", 0.5), torch.ones(41),
                 what="base-sft weights (a clip is not used, even one below 1)", **tol)
    assert_close(submission.loss_weight(t, "reweighted-ce"), reference.loss_weight(t, "reweighted-ce"),
                 what="reweighted-ce weights without a clip", **tol)
    assert_close(submission.loss_weight(t, "reweighted-ce", 5.0),
                 reference.loss_weight(t, "reweighted-ce", 5.0), what="reweighted-ce weights with a clip", **tol)


def test_loss_weight_unknown_kind_raises(submission, reference, problem):
    t = torch.tensor([0.2, 0.4])
    # A known kind answers first, so a stub that raises for every kind earns nothing here.
    assert_close(submission.loss_weight(t, "reweighted-ce"), reference.loss_weight(t, "reweighted-ce"),
                 rtol=problem.tolerance.rtol, atol=problem.tolerance.atol, what="reweighted-ce weights")
    # Unknown kinds on both sides of the known ones in string order ("" and "base" sort before
    # "base-sft", "sft" after "reweighted-ce"): only an exact match is a known kind.
    for kind in ("mdlm", "reweighted", "", "base", "sft", "uniform"):
        assert _raises_value_error(lambda: submission.loss_weight(t, kind)), \
            "an unknown kind must raise ValueError"


# ----------------------------------------------------------------------------- diffusion_loss

def test_loss_matches_reference(submission, reference, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    for seed, (batch, length, vocab), scattered in [(91, (6, 20, 11), False), (92, (3, 7, 5), False),
                                                    (93, (5, 12, 6), True)]:
        logits, clean, valid, weights = _loss_inputs(seed, batch, length, vocab, scattered)
        loss = submission.diffusion_loss(logits, clean, valid, weights)
        assert_shape_dtype(loss, (), torch.float32, what="the loss")
        assert_close(loss, reference.diffusion_loss(logits, clean, valid, weights),
                     what="the loss of a batch with rows of different lengths and weights"
                          + (" (pads inside the rows)" if scattered else ""), **tol)


def test_loss_weights_apply_per_example(submission, reference, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    logits, clean, valid, _ = _loss_inputs(101, 4, 12, 9)
    for weights in (torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 3.0]),
                    torch.tensor([1.0, 2.0, 5.0, 10.0])):
        assert_close(submission.diffusion_loss(logits, clean, valid, weights),
                     reference.diffusion_loss(logits, clean, valid, weights),
                     what="the loss when only some examples are weighted", **tol)


def test_loss_scores_every_valid_position(submission, reference, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    logits, clean, valid, weights = _loss_inputs(111, 5, 16, 7)
    g = torch.Generator().manual_seed(DATA_SEED + 112)
    resampled = (torch.rand(5, 16, generator=g) < 0.4) & valid
    expected = reference.diffusion_loss(logits, clean, valid, weights)
    assert_close(submission.diffusion_loss(logits, clean, valid, weights, resampled), expected,
                 what="the loss when resampled_mask is passed (every valid position counts)", **tol)


def test_loss_example_without_valid_positions(submission, reference, problem):
    tol = dict(rtol=problem.tolerance.rtol, atol=problem.tolerance.atol)
    logits, clean, valid, weights = _loss_inputs(121, 4, 10, 6)
    valid[2] = False
    loss = submission.diffusion_loss(logits, clean, valid, weights)
    assert_shape_dtype(loss, (), torch.float32, what="the loss")
    assert math.isfinite(float(loss)), "the loss is not finite when an example has no valid position"
    assert_close(loss, reference.diffusion_loss(logits, clean, valid, weights),
                 what="the loss when an example has no valid position", **tol)
