"""A correct alternative for 414, written from the statement: entropies in float64 as
logsumexp(z) - sum(p z), which float64 resolves to about 1e-12 even at |z| = 1e4; acceptance with
argsort and a float64 cumulative sum; noise from torch.rand, floor(u * vocab_size)."""
from __future__ import annotations

import torch


def token_entropy(logits):
    z = logits.to(torch.float64)
    p = torch.softmax(z, dim=-1)
    zf = torch.where(p > 0, z, torch.zeros_like(z))
    return (torch.logsumexp(z, dim=-1) - (p * zf).sum(dim=-1)).clamp(min=0.0).to(torch.float32)


def entropy_bound_accept(logits, bound):
    h = token_entropy(logits).to(torch.float64)
    order = torch.argsort(h, dim=-1)
    sorted_h = torch.gather(h, -1, order)
    exclusive = torch.cumsum(sorted_h, dim=-1) - sorted_h
    keep = exclusive <= bound
    out = torch.zeros_like(keep)
    rows = torch.arange(h.shape[0])[:, None].expand_as(order)
    out[rows, order] = keep
    return out


def accept_and_renoise(current_canvas, denoiser_canvas, accepted, vocab_size, generator=None):
    u = torch.rand(current_canvas.shape, generator=generator, dtype=torch.float64)
    noise = (u * vocab_size).floor().long().clamp(0, vocab_size - 1)
    return torch.where(accepted, denoiser_canvas.long(), noise)
