"""Reference solution: DiffusionGemma's linear temperature schedule and token sampling.

At every denoising step DiffusionGemma divides the decoder's logits by a temperature that falls
linearly from `t_max` (first step) towards `t_min` (last step), then draws one token per canvas
position from the softmax of the scaled logits. The release does this with a float32 softmax and
`torch.multinomial`; this reference does the same, and treats temperature 0 as greedy decoding.
"""
from __future__ import annotations

import operator

import torch


def temperature(cur_step: int, num_steps: int, t_min: float = 0.4, t_max: float = 0.8) -> float:
    """Temperature of one denoising step.

    `cur_step` counts the steps that remain: it is `num_steps` at the first denoising step and 1 at
    the last one, as in the release's loop `for cur_step in reversed(range(1, num_steps + 1))`.
    The schedule is  T = t_min + (t_max - t_min) * cur_step / num_steps,  so the first step runs at
    t_max and the last at t_min + (t_max - t_min) / num_steps (one slice above t_min, never t_min).
    """
    # Step counts are integers (a 0-d integer tensor or a numpy int works too; a float does not).
    try:
        cur_step, num_steps = operator.index(cur_step), operator.index(num_steps)
    except TypeError:
        raise ValueError("cur_step and num_steps must be integers") from None
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    if not 1 <= cur_step <= num_steps:
        raise ValueError(f"cur_step must lie in [1, {num_steps}], got {cur_step}")
    # The fraction of the denoising that is still to come: 1 at the first step, 1/N at the last.
    remaining = cur_step / num_steps
    return float(t_min + (t_max - t_min) * remaining)


def sample_tokens(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per position from softmax(logits / temperature).

    logits: float32 or bfloat16, shape (B, L, V). temperature: a float >= 0; 0 means argmax.
    Returns int64 token ids of shape (B, L). Every position is drawn independently, and every
    random number comes from `generator`.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, L, V), got {tuple(logits.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    batch, length, vocab = logits.shape

    # Temperature 0 is the limit T -> 0 of softmax(logits / T): all mass on the largest logit.
    # Dividing by zero instead would give inf/NaN probabilities.
    if temperature == 0:
        return logits.argmax(dim=-1)

    # As the release: divide in the logits' own dtype (its temperature processor returns
    # `scores / T`), then a float32 softmax (`softmax(..., dtype=float32)`).
    scaled = logits / temperature
    # torch.softmax subtracts the row maximum first, so very sharp logits cannot overflow exp().
    probs = torch.softmax(scaled, dim=-1, dtype=torch.float32)

    # torch.multinomial takes a 2-D (rows, categories) tensor: one row per canvas position, one
    # draw per row, then back to (B, L). Rows are sampled independently.
    draws = torch.multinomial(probs.reshape(batch * length, vocab), num_samples=1, generator=generator)
    return draws.view(batch, length)
