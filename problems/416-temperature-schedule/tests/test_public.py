"""Public tests for problem 416: temperature schedule and sampling."""
import torch

from runner.testing import Generator, assert_close, assert_shape_dtype


def test_default_schedule_endpoints(submission, problem):
    tol = problem.tolerance
    # 48 steps, 0.4 -> 0.8: the first step (cur_step = 48) runs at t_max ...
    assert_close(submission.temperature(48, 48), 0.8, rtol=tol.rtol, atol=tol.atol,
                 what="temperature at the first of 48 steps")
    # ... and the last (cur_step = 1) one slice of 0.4 / 48 above t_min.
    assert_close(submission.temperature(1, 48), 0.4 + 0.4 / 48, rtol=tol.rtol, atol=tol.atol,
                 what="temperature at the last of 48 steps")


def test_zero_temperature_is_argmax(submission):
    logits = torch.tensor([[[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]],
                           [[-1.0, -2.0, -0.5], [4.0, 4.5, -3.0]]])
    out = submission.sample_tokens(logits, 0.0, Generator(0))
    assert_shape_dtype(out, (2, 2), torch.int64, what="tokens at temperature 0")
    assert torch.equal(out, torch.tensor([[0, 1], [2, 1]])), "temperature 0 must pick the largest logit"


def test_same_seed_gives_same_tokens(submission):
    torch.manual_seed(0)
    logits = torch.randn(2, 16, 8)
    a = submission.sample_tokens(logits, 0.8, Generator(11))
    b = submission.sample_tokens(logits, 0.8, Generator(11))
    assert_shape_dtype(a, (2, 16), torch.int64, what="sampled tokens")
    assert_shape_dtype(b, (2, 16), torch.int64, what="sampled tokens of the second call")
    assert torch.equal(a, b), "the same generator seed must give the same tokens"
