"""MUTANT (mean_t_for_whole_batch): corrupts every example with the batch's mean noise level.

Otherwise a copy of the reference solution: DiffusionGemma's uniform-state forward (noising) process and training loss.

Training a DiffusionGemma decoder on a clean canvas x_0 works like this:

1. draw one noise level t per example, uniform in [t_min, t_max] = [1e-3, 1 - 1e-3];
2. corrupt the canvas: every valid token is, with probability t, replaced by a token drawn
   uniformly from the WHOLE vocabulary (it may draw its own value back); pads are left alone;
3. run the decoder on the noisy canvas and score its logits against the clean canvas with
   cross-entropy at every valid position (the model cannot tell which positions were resampled,
   so it must predict all of them), averaged per example, weighted per example (1 for base SFT,
   1/(1-t) clipped for reweighted CE), then averaged over the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_noise_level(
    batch_size: int,
    t_min: float = 1e-3,
    t_max: float = 1 - 1e-3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One noise level per example, uniform in [t_min, t_max]: float32 tensor of shape (batch_size,)."""
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if not 0.0 <= t_min <= t_max <= 1.0:
        raise ValueError(f"need 0 <= t_min <= t_max <= 1, got t_min={t_min}, t_max={t_max}")
    # torch.rand draws from [0, 1); an affine map puts it into [t_min, t_max). One draw per example:
    # examples of the same batch see different amounts of noise.
    u = torch.rand(batch_size, generator=generator, dtype=torch.float32)
    t = t_min + (t_max - t_min) * u
    # Rounding of the affine map in float32 could land a hair outside the interval; clamp it back.
    return t.clamp(t_min, t_max)


def corrupt_canvas(
    tokens: torch.Tensor,
    t: torch.Tensor,
    vocab_size: int,
    valid_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform-state noise.

    tokens: (B, L) int64 clean token ids. t: (B,) float, example b's resampling probability.
    valid_mask: (B, L) bool, False at pads (None: everything is valid).
    Returns (noisy_tokens (B, L) int64, resampled_mask (B, L) bool). resampled_mask is True exactly
    where a fresh token was drawn, whether or not it happens to equal the original one.
    """
    if tokens.dim() != 2:
        raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
    batch, length = tokens.shape
    if t.shape != (batch,):
        raise ValueError(f"t must have shape ({batch},), got {tuple(t.shape)}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    if valid_mask is None:
        valid_mask = torch.ones(batch, length, dtype=torch.bool, device=tokens.device)

    # A Bernoulli(t_b) coin per position: u < t_b with u uniform in [0, 1). Broadcasting t over the
    # length keeps one noise level per example (t=0: never, t=1: always).
    u = torch.rand(batch, length, generator=generator, device=tokens.device)
    resampled = (u < t.to(u.dtype).mean()) & valid_mask.bool()

    # The replacement is uniform over ALL vocab_size ids (randint's `high` is exclusive), the
    # original id included: this is the uniform-state corruption kernel.
    fresh = torch.randint(0, vocab_size, (batch, length), generator=generator, device=tokens.device,
                          dtype=tokens.dtype)
    noisy = torch.where(resampled, fresh, tokens)
    return noisy, resampled


def loss_weight(t: torch.Tensor, kind: str = "base-sft", clip: float | None = None) -> torch.Tensor:
    """Per-example loss weight, same shape as t (floating point).

    "base-sft": 1 for every example. "reweighted-ce": 1 / (1 - t), at most `clip` when given.
    """
    t = torch.as_tensor(t)
    if not t.is_floating_point():
        t = t.float()
    if kind == "base-sft":
        return torch.ones_like(t)
    if kind == "reweighted-ce":
        # Noisier examples (t near 1) are harder; weight them up. At t -> 1 the weight blows up,
        # which is what the clip is for.
        w = 1.0 / (1.0 - t)
        if clip is not None:
            w = w.clamp(max=clip)
        return w
    raise ValueError(f"unknown loss weight kind {kind!r} (expected 'base-sft' or 'reweighted-ce')")


def diffusion_loss(
    logits: torch.Tensor,
    clean_tokens: torch.Tensor,
    valid_mask: torch.Tensor,
    weights: torch.Tensor,
    resampled_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted cross-entropy of the denoiser against the clean canvas; a 0-d float32 tensor.

    logits: (B, L, V) float. clean_tokens: (B, L) int64 in [0, V). valid_mask: (B, L) bool.
    weights: (B,) float. resampled_mask: (B, L) bool or None; it does NOT change the loss:
    every valid position is scored, resampled or not.

    loss = (1/B) * sum_b weights[b] * mean_{l valid in b} CE(logits[b, l], clean_tokens[b, l]),
    where an example without any valid position contributes 0 (and still counts in the 1/B).
    """
    del resampled_mask  # uniform-state training scores every valid position
    batch, length, vocab = logits.shape
    # Per-position cross-entropy in nats, in float32 whatever the logits' dtype.
    ce = F.cross_entropy(logits.float().reshape(batch * length, vocab),
                         clean_tokens.reshape(batch * length), reduction="none").view(batch, length)
    valid = valid_mask.bool()
    # Select rather than multiply, so that whatever sits at pad positions cannot leak in.
    ce_sum = torch.where(valid, ce, torch.zeros_like(ce)).sum(dim=1)
    count = valid.sum(dim=1)
    # Per-example mean; an example with no valid position gets 0 (0 / 1) instead of 0 / 0 = NaN.
    per_example = ce_sum / count.clamp(min=1).to(ce_sum.dtype)
    return (weights.to(per_example.dtype) * per_example).mean()
