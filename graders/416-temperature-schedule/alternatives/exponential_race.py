"""A correct alternative: the exponential race (argmin of E_v / p_v) with float32 noise."""
from __future__ import annotations

import operator

import torch


def temperature(cur_step: int, num_steps: int, t_min: float = 0.4, t_max: float = 0.8) -> float:
    n = operator.index(num_steps)
    s = operator.index(cur_step)
    if not (n >= 1 and 1 <= s <= n):
        raise ValueError("bad step")
    # Interpolate from the top: the same line, written from t_max down.
    return float(t_max - (t_max - t_min) * (n - s) / n)


def sample_tokens(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    z = logits.float() / temperature
    # E_v ~ Exp(1); the smallest E_v * exp(-z_v) wins with probability softmax(z)_v.
    e = torch.empty(z.shape, dtype=torch.float32).exponential_(generator=generator)
    e = e.clamp_min(torch.finfo(torch.float32).tiny)  # an exact 0 would make -inf logits NaN
    key = z - torch.log(e)          # log of 1 / (E_v exp(-z_v)); -inf logits stay -inf
    return key.argmax(-1)
