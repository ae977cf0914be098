"""A correct alternative: one uniform per position, the CDF inverted row by row in float64.

The uniforms are drawn position-major ((L, B), then transposed): another drawing order than the
release's, which the statement allows."""
from __future__ import annotations

import math

import torch


def temperature(cur_step: int, num_steps: int, t_min: float = 0.4, t_max: float = 0.8) -> float:
    steps = int(num_steps)
    step = int(cur_step)
    if step != cur_step or steps != num_steps:
        raise ValueError("integers expected")
    if steps < 1:
        raise ValueError("num_steps must be positive")
    if step < 1 or step > steps:
        raise ValueError("cur_step out of range")
    span = t_max - t_min
    value = t_min
    value += span * step / steps
    return float(value)


def sample_tokens(logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    batch, length, vocab = logits.shape
    out = torch.empty(batch, length, dtype=torch.int64)
    if temperature == 0:
        for b in range(batch):
            out[b] = torch.argmax(logits[b], dim=-1)
        return out
    uniforms = torch.rand(length, batch, generator=generator, dtype=torch.float64).t()
    for b in range(batch):
        z = logits[b].double() / temperature                     # (L, V)
        z = z - z.max(dim=-1, keepdim=True).values               # no overflow in exp
        weights = torch.exp(z)                                    # exp(-inf) = 0
        cdf = torch.cumsum(weights, dim=-1)
        target = uniforms[b].unsqueeze(-1) * cdf[:, -1:]          # (L, 1)
        index = torch.searchsorted(cdf, target, right=True).squeeze(-1)
        index = index.clamp(max=vocab - 1)
        # A token of zero weight can only be hit at a boundary of the CDF: step back onto the
        # last token with weight.
        for l in torch.nonzero(weights[torch.arange(length), index] == 0).flatten().tolist():
            index[l] = int(torch.nonzero(weights[l] > 0).flatten()[-1])
        out[b] = index
    return out
