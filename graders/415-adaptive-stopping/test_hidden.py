"""Hidden tests of 415-adaptive-stopping (StableAndConfident)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from runner.testing import assert_close, assert_shape_dtype

V = 16  # vocabulary size of the hand-made cases


def sure(canvas: torch.Tensor, gap: float = 20.0) -> torch.Tensor:
    """Logits (B, L, V) whose argmax is `canvas`, with a tiny entropy (about 7e-7 nats a token)."""
    return gap * F.one_hot(canvas, V).float()


def unsure(canvas: torch.Tensor) -> torch.Tensor:
    """Logits (B, L, V) whose argmax is `canvas` but whose entropy is about 2 nats a token."""
    return 0.5 * F.one_hot(canvas, V).float()


def tokens(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.long)


def decide(stopper, canvas: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The stopper's decision, once it is a bool tensor with one entry per batch row."""
    out = stopper(canvas, logits)
    assert_shape_dtype(out, (canvas.shape[0],), torch.bool, what="the stop decision")
    return out


def drive(stopper, calls) -> list:
    """Feed (argmax_canvas, logits) pairs, or the string "reset", to a stopper; collect outputs."""
    outs = []
    for call in calls:
        if isinstance(call, str):
            stopper.reset()
        else:
            outs.append(decide(stopper, *call))
    return outs


def expect(outs, expected: list[list[bool]], what: str) -> None:
    assert len(outs) == len(expected)
    for i, (got, want) in enumerate(zip(outs, expected)):
        assert_close(got, torch.tensor(want), rtol=0, atol=0, what=f"{what}, call {i + 1}")


def test_returns_one_bool_per_row(submission):
    canvas = tokens([1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12])
    stopper = submission.StableAndConfident(1, 0.005)
    out = stopper(canvas, sure(canvas))
    assert_shape_dtype(out, (3,), torch.bool, what="the stop decision")
    out = stopper(canvas, sure(canvas))
    assert_shape_dtype(out, (3,), torch.bool, what="the stop decision on the second call")


def test_first_calls_are_never_stable(submission):
    """With threshold k, the first k calls have fewer than k earlier canvases: never stable."""
    canvas = tokens([3, 1, 4, 1, 5], [9, 2, 6, 5, 3])
    logits = sure(canvas)
    one = submission.StableAndConfident(1, 0.005)
    outs = drive(one, [(canvas, logits)] * 3)
    assert not bool(outs[0].any()), "threshold 1: a row stopped on the very first call"
    assert bool(outs[1].all()) and bool(outs[2].all()), \
        "threshold 1: a repeated, confident canvas did not stop on the second call"
    three = submission.StableAndConfident(3, 0.005)
    outs = drive(three, [(canvas, logits)] * 5)
    assert not any(bool(o.any()) for o in outs[:3]), \
        "threshold 3: a row stopped before three earlier canvases had been seen"
    assert bool(outs[3].all()) and bool(outs[4].all()), \
        "threshold 3: a canvas repeated on four calls did not stop"
    # Token id 0 is a token like any other (the pad token of a finished answer, say): a canvas of
    # zeros has no earlier canvas to equal on the first call either.
    zeros = tokens([0, 0, 0, 0, 0], [0, 0, 0, 0, 0])
    for k in (1, 2):
        outs = drive(submission.StableAndConfident(k, 0.005), [(zeros, sure(zeros))] * (k + 1))
        assert not any(bool(o.any()) for o in outs[:k]), \
            f"threshold {k}: a canvas of token id 0 stopped before {k} earlier canvases had been seen"
        assert bool(outs[k].all()), f"threshold {k}: a repeated, confident canvas of token id 0 did not stop"


def test_stable_means_equal_to_each_of_the_last_k(submission, reference):
    a, b, c = [1, 2, 3, 4], [1, 2, 3, 7], [8, 2, 3, 4]
    # one row per pattern, five calls
    patterns = [
        [a, b, b, b, b],
        [a, a, a, a, a],
        [a, b, a, a, a],
        [a, b, a, b, a],
        [a, a, b, b, b],
        [c, a, a, b, a],
    ]
    for k in (2, 3):
        calls = []
        for t in range(5):
            canvas = tokens(*[p[t] for p in patterns])
            calls.append((canvas, sure(canvas)))
        got = drive(submission.StableAndConfident(k, 0.005), calls)
        want = drive(reference.StableAndConfident(k, 0.005), calls)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, rtol=0, atol=0,
                         what=f"threshold {k}: stop decision of call {i + 1} (the current canvas must equal "
                              f"every one of the last {k} earlier canvases)")


def test_whole_row_must_repeat(submission):
    """A canvas that changed at a single position is not stable."""
    first = tokens([4, 4, 4, 4, 4, 4], [1, 2, 3, 4, 5, 6])
    second = tokens([4, 4, 4, 9, 4, 4], [1, 2, 3, 4, 5, 6])
    third = tokens([4, 4, 4, 4, 4, 4], [1, 2, 3, 4, 5, 7])
    stopper = submission.StableAndConfident(1, 0.005)
    outs = drive(stopper, [(first, sure(first)), (second, sure(second)), (third, sure(third))])
    expect(outs, [[False, False], [False, True], [False, False]],
           "a row is stable only when every position repeats")


def test_threshold_zero_is_always_stable(submission):
    calls = []
    for t in range(3):
        canvas = tokens([t, t + 1, t + 2], [7 - t, 3, t], [5, 5, 5])
        logits = torch.cat([sure(canvas[:2]), unsure(canvas[2:])])
        calls.append((canvas, logits))
    outs = drive(submission.StableAndConfident(0, 0.005), calls)
    expect(outs, [[True, True, False]] * 3,
           "threshold 0: stability always holds, so a confident row stops at once")


def test_uses_the_given_argmax_canvas(submission):
    """The stopper compares the argmax canvases it is given; it must not derive its own canvas
    from the logits (which the sampler may have processed, and a sample of which keeps changing)."""
    fixed = tokens([2, 7, 1, 8, 2, 8])
    calls_a, calls_b = [], []
    for t in range(3):
        moving = (fixed + 3 * (t + 1)) % V
        # row given the same argmax canvas each call, with logits whose argmax moves
        calls_a.append((fixed, sure(moving)))
        # row given a moving argmax canvas, with logits whose argmax stays put
        calls_b.append((moving, sure(fixed)))
    canvas = [torch.cat([a[0], b[0]]) for a, b in zip(calls_a, calls_b)]
    logits = [torch.cat([a[1], b[1]]) for a, b in zip(calls_a, calls_b)]
    outs = drive(submission.StableAndConfident(1, 0.005), list(zip(canvas, logits)))
    assert not bool(outs[1][1]) and not bool(outs[2][1]), \
        "a row whose given argmax canvas changes every call was judged stable"
    assert bool(outs[1][0]) and bool(outs[2][0]), \
        "a row whose given argmax canvas repeats (confident logits) did not stop"


def test_rows_decide_independently(submission):
    stable = [1, 2, 3, 4]
    moving = [[5, 6, 7, 8], [5, 6, 7, 9]]
    calls = []
    for t in range(2):
        canvas = tokens(stable, stable, moving[t], moving[t])
        logits = torch.cat([sure(canvas[:1]), unsure(canvas[1:2]), sure(canvas[2:3]), unsure(canvas[3:])])
        calls.append((canvas, logits))
    outs = drive(submission.StableAndConfident(1, 0.005), calls)
    expect(outs, [[False] * 4, [True, False, False, False]],
           "each row must be stable AND confident on its own (rows do not share a decision)")


def test_confidence_is_strictly_below_the_threshold(submission):
    canvas = tokens([1, 2, 3], [4, 5, 6])
    logits = sure(canvas, gap=200.0)  # every probability but the top one underflows: entropy 0
    calls = [(canvas, logits)] * 2
    outs = drive(submission.StableAndConfident(1, 0.0), calls)
    expect(outs, [[False, False]] * 2, "a mean entropy equal to the confidence threshold is not confident")
    outs = drive(submission.StableAndConfident(1, 1e-3), calls)
    expect(outs, [[False, False], [True, True]], "a zero-entropy repeated canvas should stop")


def test_confidence_averages_entropy_over_the_canvas(submission):
    L = 8
    base = torch.arange(L)[None].repeat(3, 1)
    # row 0: seven sure positions and one flat one (mean about 0.35 nats, max about 2.77)
    # row 1: every position moderately unsure (mean entropy about 0.9 nats)
    # row 2: every position sure
    logits = sure(base)
    logits[0, 5] = 0.0
    logits[1] = 2.0 * F.one_hot(base[1], V).float()
    calls = [(base, logits)] * 2
    outs = drive(submission.StableAndConfident(1, 0.5), calls)
    expect(outs, [[False] * 3, [True, False, True]],
           "confidence must use the mean over the canvas of the per-token entropy")


def test_entropy_is_in_nats(submission):
    canvas = tokens([3, 3, 3, 3], [6, 6, 6, 6])
    # Row 0: two equally likely tokens at every position, the others about e^-30 each (not 0, so
    # a formula that makes NaN of 0 * log 0 fails the underflow test, not this one): ln 2 = 0.693
    # nats (1 bit), plus about 4e-11. Row 1: sure.
    logits = torch.full((2, 4, V), -30.0)
    logits[0, :, 3] = 0.0
    logits[0, :, 11] = 0.0
    logits[1] = sure(canvas[1:])[0]
    outs = drive(submission.StableAndConfident(1, 0.85), [(canvas, logits)] * 2)
    expect(outs, [[False, False], [True, True]], "entropy should be measured in nats (natural log)")


def test_confidence_is_per_row(submission):
    canvas = tokens([1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12])
    logits = torch.cat([sure(canvas[:1]), torch.zeros(1, 4, V), sure(canvas[2:])])
    outs = drive(submission.StableAndConfident(1, 0.5), [(canvas, logits)] * 2)
    expect(outs, [[False] * 3, [True, False, True]],
           "each row's confidence must use that row's own mean entropy")


def test_underflowing_and_masked_probabilities(submission):
    """At low temperature most probabilities underflow to 0, and logits processors may set -inf:
    such tokens contribute nothing to the entropy (p log p -> 0); the result must not be NaN."""
    canvas = tokens([1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12])
    logits = sure(canvas, gap=300.0)  # the top probability is exactly 1, the rest exactly 0
    logits[1] = torch.where(F.one_hot(canvas[1], V).bool(), 0.0, float("-inf"))  # one finite logit
    logits[2, :, 13:] = float("-inf")  # some masked tokens on a sure row
    outs = drive(submission.StableAndConfident(1, 0.005), [(canvas, logits)] * 2)
    expect(outs, [[False] * 3, [True] * 3],
           "rows whose other probabilities are exactly zero (underflow or -inf logits) are fully confident")


def test_minus_inf_logits_on_unsure_rows(submission):
    """-inf logits add nothing to the entropy, but the finite ones still count: a row whose few
    finite logits are equal is not confident (ln 2 or ln 4 nats a position), whatever the -inf
    entries around them."""
    canvas = tokens([1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12])
    allowed = torch.zeros(3, 4, V, dtype=torch.bool)
    allowed[0, :, :2] = True                    # two equally likely tokens: ln 2 = 0.69 nats
    allowed[1, :, 4:8] = True                   # four: ln 4 = 1.39 nats
    allowed[2] = F.one_hot(canvas[2], V).bool()  # one: 0 nats
    logits = torch.where(allowed, 0.0, float("-inf"))
    outs = drive(submission.StableAndConfident(1, 0.5), [(canvas, logits)] * 2)
    expect(outs, [[False] * 3, [False, False, True]],
           "rows with -inf logits: the entropy of their finite logits still counts")


def test_history_is_kept_whatever_the_confidence(submission):
    """Every call records its argmax canvas, confident or not: a canvas seen on an unsure call
    counts as an earlier canvas of the next call."""
    canvas = tokens([4, 1, 4, 1], [2, 7, 1, 8])
    unsure_then_sure = [(canvas, unsure(canvas)), (canvas, sure(canvas)), (canvas, unsure(canvas)),
                        (canvas, sure(canvas))]
    outs = drive(submission.StableAndConfident(1, 0.005), unsure_then_sure)
    expect(outs, [[False, False], [True, True], [False, False], [True, True]],
           "threshold 1, a canvas repeated while the confidence comes and goes")
    outs = drive(submission.StableAndConfident(2, 0.005), unsure_then_sure + [(canvas, sure(canvas))])
    expect(outs, [[False, False], [False, False], [False, False], [True, True], [True, True]],
           "threshold 2, a canvas repeated while the confidence comes and goes")


def test_reset_clears_the_history(submission):
    a = tokens([1, 2, 3], [4, 5, 6])
    b = tokens([7, 8, 9, 10, 11], [1, 1, 1, 1, 1], [2, 2, 2, 2, 2])  # a new batch and canvas size
    stopper = submission.StableAndConfident(1, 0.005)
    outs = drive(stopper, [(a, sure(a)), "reset", (a, sure(a)), (a, sure(a)), "reset", (b, sure(b)), (b, sure(b))])
    assert not bool(outs[1].any()), "after reset(), a row stopped on the first call (the history was kept)"
    assert bool(outs[2].all()), "after reset(), a repeated confident canvas did not stop on the second call"
    assert not bool(outs[3].any()), "after reset(), the first call with a new canvas shape stopped"
    assert bool(outs[4].all()), "after reset(), canvases of a new shape are not handled"


def test_instances_keep_separate_histories(submission):
    a = tokens([1, 2, 3], [4, 5, 6])
    first = submission.StableAndConfident(1, 0.005)
    second = submission.StableAndConfident(1, 0.005)
    decide(first, a, sure(a))
    out = decide(second, a, sure(a))
    assert not bool(out.any()), "a new stopper already had a history (state shared between instances?)"
    assert bool(decide(first, a, sure(a)).all()), "a stopper lost its history when another was used"


def _random_calls(gen: torch.Generator, n_calls: int, batch: int, length: int, vocab: int):
    calls = []
    canvas = torch.randint(0, vocab, (batch, length), generator=gen)
    older = canvas.clone()
    for _ in range(n_calls):
        u = torch.rand(batch, generator=gen)[:, None]
        fresh = torch.randint(0, vocab, (batch, length), generator=gen)
        nudged = canvas.clone()
        pos = torch.randint(0, length, (batch,), generator=gen)
        nudged[torch.arange(batch), pos] = (nudged[torch.arange(batch), pos] + 1) % vocab
        new = torch.where(u < 0.55, canvas, torch.where(u < 0.7, older, torch.where(u < 0.85, nudged, fresh)))
        older, canvas = canvas, new
        gap = torch.rand(batch, 1, 1, generator=gen) * 22.0
        logits = torch.randn(batch, length, vocab, generator=gen) + gap * F.one_hot(canvas, vocab)
        calls.append((canvas.clone(), logits))
    return calls


def _threshold_with_margin(calls) -> float:
    """A confidence threshold near the median mean-entropy, at least 1e-3 away from every value."""
    values = torch.cat([torch.special.entr(torch.softmax(lg.double(), -1)).sum(-1).mean(-1)
                        for item in calls if not isinstance(item, str) for lg in [item[1]]])
    values = torch.sort(values).values
    gaps = values[1:] - values[:-1]
    mid = len(values) // 2
    for offset in range(len(gaps)):
        for i in (mid + offset, mid - offset):
            if 0 <= i < len(gaps) and gaps[i] > 2e-3:
                return float((values[i] + values[i + 1]) / 2)
    return float(values[-1]) + 1.0


def test_matches_the_rule_on_random_sequences(submission, reference):
    gen = torch.Generator().manual_seed(415)
    for k in (0, 1, 2, 3):
        calls = _random_calls(gen, 7, 6, 5, 12) + ["reset"] + _random_calls(gen, 6, 6, 5, 12)
        c = _threshold_with_margin(calls)
        got = drive(submission.StableAndConfident(k, c), calls)
        want = drive(reference.StableAndConfident(k, c), calls)
        stops = sum(int(w.sum()) for w in want)
        assert stops > 0  # the sequence exercises stopping
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, rtol=0, atol=0, what=f"threshold {k}, random sequence, call {i + 1}")
