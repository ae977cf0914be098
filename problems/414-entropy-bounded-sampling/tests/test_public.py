"""Public tests of 414-entropy-bounded-sampling: run them on your own solution."""
import math

import torch

from runner.testing import Generator, assert_close, assert_shape_dtype

INF = float("inf")


def peaked(rows, vocab=8):
    """(B, L, vocab) logits: position (b, l) is softmax([a, 0, ..., 0]) with the peak a = rows[b][l]."""
    out = torch.zeros(len(rows), len(rows[0]), vocab)
    for b, row in enumerate(rows):
        for l, a in enumerate(row):
            out[b, l, (b + l) % vocab] = a
    return out


def test_worked_example(submission, problem):
    logits = torch.tensor([
        [[0.0, 0.0, 0.0, 0.0], [8.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, -INF, -INF, -INF]],
        [[1.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [1.5, 0.0, 0.0, 0.0], [2.5, 0.0, 0.0, 0.0]],
    ])
    entropy = submission.token_entropy(logits)
    assert_shape_dtype(entropy, (2, 4), torch.float32, what="token_entropy output")
    assert_close(entropy[0, 0], math.log(4), rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="entropy of a uniform distribution over 4 tokens (nats)")
    assert_close(entropy[0, 3], 0.0, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="entropy of a position with a single finite logit")
    accepted = submission.entropy_bound_accept(logits, 0.1)
    assert_shape_dtype(accepted, (2, 4), torch.bool, what="accepted mask")
    assert_close(accepted, torch.tensor([[False, True, True, True], [False, False, False, True]]),
                 rtol=0, atol=0, what="accepted mask of the worked example")


def test_crossing_token_is_accepted(submission):
    # Entropies (nats), V = 8:  peak 12 -> 0.0006,  5.75 -> 0.148,  5.5 -> 0.181,  2 -> 1.639,  0 -> ln 8.
    logits = peaked([
        [0.0, 5.5, 12.0, 2.0, 5.75],  # 0.0006 and 0.148 are in (the sum before 0.148 is 0.0006),
                                      # 0.181 is out (the sum before it is 0.149 > 0.1)
        [2.0, 0.0, 2.0, 0.0, 5.5],    # only 0.181, the lowest, although it exceeds the bound
    ])
    accepted = submission.entropy_bound_accept(logits, 0.1)
    assert_close(accepted, torch.tensor([[False, False, True, False, True],
                                         [False, False, False, False, True]]),
                 rtol=0, atol=0, what="accepted mask with bound 0.1")


def test_accept_and_renoise(submission):
    gen = torch.Generator().manual_seed(0)
    current = torch.randint(0, 10, (3, 50), generator=gen)
    denoiser = torch.randint(0, 10, (3, 50), generator=gen)
    accepted = torch.rand(3, 50, generator=gen) < 0.5
    out = submission.accept_and_renoise(current, denoiser, accepted, 10, generator=Generator(1))
    assert_shape_dtype(out, (3, 50), torch.int64, what="next canvas")
    assert torch.equal(out[accepted], denoiser[accepted]), "accepted positions must hold the denoiser's token"
    assert bool(((out >= 0) & (out < 10)).all()), "every token must be in [0, vocab_size)"
    again = submission.accept_and_renoise(current, denoiser, accepted, 10, generator=Generator(1))
    assert_shape_dtype(again, (3, 50), torch.int64, what="next canvas of the second call")
    assert torch.equal(out, again), "the same generator seed must give the same canvas"
