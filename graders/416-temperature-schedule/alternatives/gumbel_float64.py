"""A correct alternative: Gumbel-max sampling in float64, everything upcast before dividing."""
from __future__ import annotations

import math

import torch


def temperature(cur_step: int, num_steps: int, t_min: float = 0.4, t_max: float = 0.8) -> float:
    if isinstance(cur_step, bool) or isinstance(num_steps, bool):
        raise ValueError("step counts must be integers")
    if int(num_steps) != num_steps or int(cur_step) != cur_step:
        raise ValueError("step counts must be integers")
    if num_steps < 1 or cur_step < 1 or cur_step > num_steps:
        raise ValueError("cur_step must lie in [1, num_steps] and num_steps must be >= 1")
    return t_min + (t_max - t_min) * (float(cur_step) / float(num_steps))


def sample_tokens(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    if temperature == 0:
        return torch.argmax(logits, dim=-1).long()
    z = logits.to(torch.float64) / float(temperature)
    # One uniform per (b, l, v), kept strictly inside (0, 1) so that the Gumbel noise is finite.
    tiny = torch.finfo(torch.float64).tiny
    u = torch.rand(z.shape, generator=generator, dtype=torch.float64).clamp_(min=tiny, max=1.0 - 2.0 ** -53)
    gumbel = -torch.log(-torch.log(u))
    return torch.argmax(z + gumbel, dim=-1).to(torch.int64)
