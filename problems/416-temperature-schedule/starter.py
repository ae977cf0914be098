"""Problem 416: Temperature schedule and sampling (DiffusionGemma).

Implement the linear temperature schedule of DiffusionGemma's denoising loop and the per-position
token draw from the temperature-scaled logits.
"""
from __future__ import annotations

import torch


def temperature(cur_step: int, num_steps: int, t_min: float = 0.4, t_max: float = 0.8) -> float:
    """Temperature of one denoising step.

    cur_step: int, the number of denoising steps that remain, counting DOWN: num_steps at the
        first step, 1 at the last.
    num_steps: int >= 1, the number of denoising steps N.
    t_min, t_max: floats, the ends of the linear schedule.
    Returns a Python float: t_min + (t_max - t_min) * cur_step / num_steps.
    Raises ValueError when num_steps < 1 or cur_step is outside [1, num_steps].
    """
    raise NotImplementedError


def sample_tokens(
    logits: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one token per canvas position from softmax(logits / temperature).

    logits: float32 or bfloat16 tensor of shape (B, L, V).
    temperature: float >= 0; 0 means greedy (argmax over V).
    generator: the torch.Generator every random number must come from.
    Returns an int64 tensor of shape (B, L); positions are drawn independently.
    """
    raise NotImplementedError
