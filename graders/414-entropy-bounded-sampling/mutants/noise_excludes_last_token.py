"""Reference solution of 414-entropy-bounded-sampling.

One denoising step of DiffusionGemma's entropy-bounded (EB) sampler, after the decoder has
produced its temperature-scaled logits and a denoiser canvas has been sampled from them:

1. `token_entropy`: the entropy, in nats, of the categorical distribution at every position;
2. `entropy_bound_accept`: which positions keep their sampled token (the EB rule);
3. `accept_and_renoise`: the next canvas, with fresh uniform noise everywhere else.
"""
from __future__ import annotations

import torch


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of softmax(logits) over the last axis.

    logits: (B, L, V) float32 / bfloat16 / float16; may hold -inf (ruled-out tokens) and
    values of any magnitude. Returns (B, L) float32.
    """
    z = logits.float()  # always compute in float32, whatever the input precision
    # log_softmax subtracts the row maximum before exponentiating: no overflow for huge logits.
    log_p = torch.log_softmax(z, dim=-1)
    p = log_p.exp()
    # A token with p == 0 (a -inf logit, or an underflow) has log_p == -inf and would give
    # 0 * -inf = NaN. Its true contribution is lim p log p = 0, so clamp log_p to a finite
    # value first: 0 * (finite) == 0.
    log_p = log_p.clamp(min=torch.finfo(log_p.dtype).min)
    # (Adding 0.0 turns the -0.0 of a certain position into a plain 0.0; it changes nothing else.)
    return -(p * log_p).sum(dim=-1) + 0.0


def entropy_bound_accept(logits: torch.Tensor, bound: float) -> torch.Tensor:
    """The EB-sampler acceptance mask.

    logits: (B, L, V) float (the processed, temperature-scaled logits); bound: float >= 0.
    Returns (B, L) bool: True where the sampled token is accepted. Every row decides for itself.
    """
    entropy = token_entropy(logits)                                   # (B, L)
    # Per row, visit positions from the most to the least certain.
    sorted_entropy, order = torch.sort(entropy, dim=-1)               # ascending
    cumulative = torch.cumsum(sorted_entropy, dim=-1)
    # Sorted ascending, the k-th entropy is also the maximum of the first k, so
    # cumsum_k - entropy_k = (sum of the first k) - (their max): the EB upper bound on the
    # mutual information among the first k tokens. It is 0 for k = 1, so the lowest-entropy
    # token is always accepted, and the token whose own entropy crosses the bound still is.
    accepted_sorted = (cumulative - sorted_entropy) <= bound         # (B, L), in sorted order
    # Put the decisions back at the positions they belong to: accepted[b, order[b, k]] =
    # accepted_sorted[b, k].
    return torch.zeros_like(accepted_sorted).scatter(-1, order, accepted_sorted)


def accept_and_renoise(
    current_canvas: torch.Tensor,
    denoiser_canvas: torch.Tensor,
    accepted: torch.Tensor,
    vocab_size: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The next canvas of the denoising loop.

    current_canvas, denoiser_canvas: (B, L) int64 token ids; accepted: (B, L) bool.
    Returns (B, L) int64: denoiser_canvas where accepted, a fresh token drawn uniformly from
    [0, vocab_size) everywhere else. The current canvas's tokens are never kept: the released
    sampler first writes the accepted tokens over it, then overwrites every other position.
    """
    # MISTAKE: randint's high is already exclusive, so the last token is never drawn
    noise = torch.randint(0, vocab_size - 1, tuple(current_canvas.shape), generator=generator,
                          dtype=torch.long, device=current_canvas.device)
    return torch.where(accepted, denoiser_canvas.long(), noise)
