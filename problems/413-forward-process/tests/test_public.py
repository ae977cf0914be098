"""Public tests of 413-forward-process: run them on your own solution."""
import math

import torch

from runner.testing import Generator, assert_close, assert_shape_dtype


def test_noise_levels_in_range(submission):
    t = submission.sample_noise_level(64, 0.25, 0.5, generator=Generator(0))
    assert_shape_dtype(t, (64,), torch.float32, what="the noise levels")
    assert bool(((t >= 0.25 - 1e-6) & (t <= 0.5 + 1e-6)).all()), "a noise level lies outside [t_min, t_max]"
    assert len(set(t.tolist())) > 32, "the examples should get different noise levels"


def test_corrupt_canvas_keeps_pads(submission):
    tokens = torch.tensor([[1, 2, 3, 4, 0, 0], [4, 3, 2, 1, 4, 3]])
    valid = torch.tensor([[True, True, True, True, False, False], [True] * 6])
    noisy, resampled = submission.corrupt_canvas(tokens, torch.tensor([1.0, 0.0]), 5, valid,
                                                 generator=Generator(0))
    assert_shape_dtype(noisy, (2, 6), torch.int64, what="noisy_tokens")
    assert_shape_dtype(resampled, (2, 6), torch.bool, what="resampled_mask")
    assert_close(resampled, valid & torch.tensor([[True], [False]]), rtol=0, atol=0,
                 what="resampled_mask with t = 1 (row 0) and t = 0 (row 1)")
    assert_close(noisy[:, 4:], tokens[:, 4:], rtol=0, atol=0, what="the pad positions of row 0")
    assert_close(noisy[1], tokens[1], rtol=0, atol=0, what="row 1 (t = 0)")
    assert bool(((noisy >= 0) & (noisy < 5)).all()), "a token is outside [0, vocab_size)"


def test_weights_and_loss_worked_example(submission):
    w = submission.loss_weight(torch.tensor([0.5, 0.9, 0.99]), "reweighted-ce", clip=20.0)
    assert_close(w, torch.tensor([2.0, 10.0, 20.0]), rtol=1e-5, atol=1e-6, what="reweighted-ce weights")
    assert_close(submission.loss_weight(torch.tensor([0.5, 0.9])), torch.ones(2), rtol=0, atol=0,
                 what="base-sft weights")
    clean = torch.tensor([[1, 2, 3], [0, 1, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    logits = torch.zeros(2, 3, 4)
    logits[1, 0, 0] = 100.0
    loss = submission.diffusion_loss(logits, clean, valid, torch.tensor([1.0, 3.0]))
    assert_shape_dtype(loss, (), torch.float32, what="the loss")
    assert_close(loss, torch.tensor(1.25 * math.log(4)), rtol=1e-5, atol=1e-6, what="the loss")
