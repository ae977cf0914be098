"""Problem 414: Entropy-bounded denoising (DiffusionGemma's EB-sampler).

Implement one denoising step's acceptance logic: per-position token entropies, the
entropy-bounded acceptance mask, and the next canvas (accepted tokens kept, every other
position renoised with a fresh uniform token).
"""
from __future__ import annotations

import torch


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy, in nats, of softmax(logits) over the last axis.

    logits: (B, L, V) float32, bfloat16 or float16; may contain -inf (a token that cannot be
        drawn) and entries as large as 1e4 in magnitude. Compute in float32 (or float64).
    Returns: (B, L) float32, never NaN (every row of logits has at least one finite entry).
    """
    raise NotImplementedError


def entropy_bound_accept(logits: torch.Tensor, bound: float) -> torch.Tensor:
    """The EB-sampler acceptance mask.

    logits: (B, L, V) float, the processed (temperature-scaled) logits of one denoising step.
    bound: float >= 0, the entropy bound (0.1 in the release).
    Returns: (B, L) torch.bool, True at the positions whose sampled token is accepted. Per row:
        sort the entropies ascending and accept the k-th smallest while
        (sum of the k smallest) - (the k-th smallest) <= bound.
    """
    raise NotImplementedError


def accept_and_renoise(
    current_canvas: torch.Tensor,
    denoiser_canvas: torch.Tensor,
    accepted: torch.Tensor,
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The canvas the next denoising step starts from.

    current_canvas: (B, L) int64, the canvas this step's decoder read.
    denoiser_canvas: (B, L) int64, the tokens sampled from this step's logits.
    accepted: (B, L) torch.bool, the acceptance mask.
    vocab_size: int >= 1.
    generator: the torch.Generator every random number must come from.
    Returns: (B, L) int64: denoiser_canvas where accepted; elsewhere a fresh token drawn
        uniformly from [0, vocab_size), independently per position and per call.
    """
    raise NotImplementedError
