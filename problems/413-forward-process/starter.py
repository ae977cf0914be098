"""The forward (noising) process (problem 413): DiffusionGemma's uniform-state corruption of a
training canvas, its noise levels, its loss weights and its training loss."""
from __future__ import annotations

import torch


def sample_noise_level(
    batch_size: int,
    t_min: float = 1e-3,
    t_max: float = 1 - 1e-3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one noise level t per example, uniformly in [t_min, t_max].

    batch_size: int >= 0. 0 <= t_min <= t_max <= 1.
    generator: draw every random number from it (torch.rand(..., generator=generator)).
    Returns: torch.float32 tensor of shape (batch_size,).
    """
    raise NotImplementedError


def corrupt_canvas(
    tokens: torch.Tensor,
    t: torch.Tensor,
    vocab_size: int,
    valid_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform-state noise: resample each valid token with probability t[b].

    tokens: (B, L) torch.int64, the clean canvas, ids in [0, vocab_size).
    t: (B,) float, the noise level of each example (0 <= t <= 1).
    vocab_size: int, the number V of token ids; a resampled token is uniform over [0, V).
    valid_mask: (B, L) torch.bool, False at pad positions; None means every position is valid.
    generator: draw every random number from it.
    Returns (noisy_tokens, resampled_mask):
        noisy_tokens: (B, L) torch.int64, the corrupted canvas (pads unchanged);
        resampled_mask: (B, L) torch.bool, True where a fresh token was drawn (even if it equals
        the original token), never True at a pad.
    """
    raise NotImplementedError


def loss_weight(t: torch.Tensor, kind: str = "base-sft", clip: float | None = None) -> torch.Tensor:
    """Per-example loss weight.

    t: (B,) float noise levels. kind: "base-sft" (weight 1) or "reweighted-ce" (weight 1/(1-t),
    at most `clip` when clip is not None). Any other kind: raise ValueError.
    Returns: floating-point tensor of the same shape as t.
    """
    raise NotImplementedError


def diffusion_loss(
    logits: torch.Tensor,
    clean_tokens: torch.Tensor,
    valid_mask: torch.Tensor,
    weights: torch.Tensor,
    resampled_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The weighted denoising cross-entropy of one training batch.

    logits: (B, L, V) float, the decoder's logits on the noisy canvas.
    clean_tokens: (B, L) torch.int64, the clean canvas, ids in [0, V) (pads included).
    valid_mask: (B, L) torch.bool, False at pad positions.
    weights: (B,) float, one loss weight per example (from loss_weight).
    resampled_mask: (B, L) torch.bool or None, the mask corrupt_canvas returned (see the statement
        for what the loss does with it).
    Returns: a 0-d torch.float32 tensor: the mean over the batch of weights[b] times example b's
    mean cross-entropy (nats) over its valid positions; an example with no valid position gives 0.
    """
    raise NotImplementedError
