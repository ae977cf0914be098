"""Public tests of 417-attention-masking: the statement's small cases, checked exactly."""
from __future__ import annotations

import torch

from runner.testing import assert_close, assert_shape_dtype


def test_decoder_mask_small_case(submission):
    prefix_mask = torch.tensor([[False, True, True, True, True],
                                [True, True, True, False, True]])
    full = submission.decoder_attention_mask(prefix_mask, 2)
    assert_shape_dtype(full, (2, 2, 7), torch.bool, what="the full-layer decoder mask")
    want_full = torch.tensor([[0, 1, 1, 1, 1, 1, 1],
                              [1, 1, 1, 0, 1, 1, 1]]).bool()[:, None, :].expand(2, 2, 7)
    assert_close(full, want_full, rtol=0, atol=0, what="the full-layer decoder mask")
    sliding = submission.decoder_attention_mask(prefix_mask, 2, 3)
    want_sliding = torch.tensor([[0, 0, 0, 1, 1, 1, 1],
                                 [0, 0, 0, 0, 1, 1, 1]]).bool()[:, None, :].expand(2, 2, 7)
    assert_close(sliding, want_sliding, rtol=0, atol=0, what="the sliding-layer decoder mask (W = 3)")


def test_encoder_mask_small_case(submission):
    attention_mask = torch.tensor([[False, True, True, True, True, True]])
    image_mask = torch.tensor([[False, True, True, False, True, True]])
    got = submission.encoder_attention_mask(attention_mask, image_mask)
    want = torch.tensor([[[0, 0, 0, 0, 0, 0],
                          [0, 1, 1, 0, 0, 0],
                          [0, 1, 1, 0, 0, 0],
                          [0, 1, 1, 1, 0, 0],
                          [0, 1, 1, 1, 1, 1],
                          [0, 1, 1, 1, 1, 1]]]).bool()
    assert_close(got, want, rtol=0, atol=0, what="the encoder mask with two images")
    causal = submission.encoder_attention_mask(attention_mask)
    assert_close(causal, want & torch.tril(torch.ones(6, 6, dtype=torch.bool)), rtol=0, atol=0,
                 what="the encoder mask without images")


def test_training_mask_small_case(submission):
    got = submission.block_diffusion_training_mask(2, 1)
    want = torch.tensor([[1, 0, 0, 0],
                         [0, 1, 1, 0],
                         [0, 0, 1, 0],
                         [0, 0, 1, 1]]).bool()
    assert_close(got, want, rtol=0, atol=0, what="the training mask for 2 canvases of 1 token")
