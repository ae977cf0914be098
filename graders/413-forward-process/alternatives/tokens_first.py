"""A correct alternative for 413, written from the statement: the fresh tokens of the whole canvas
are drawn FIRST, then the coins, with torch.bernoulli; noise levels with Tensor.uniform_; the loss
from log_softmax + gather, computed in float64."""
from __future__ import annotations

import torch


def sample_noise_level(batch_size, t_min=1e-3, t_max=1 - 1e-3, generator=None):
    return torch.empty(batch_size, dtype=torch.float32).uniform_(t_min, t_max, generator=generator)


def corrupt_canvas(tokens, t, vocab_size, valid_mask=None, generator=None):
    fresh = torch.randint(0, vocab_size, tokens.shape, generator=generator)
    probs = t.to(torch.float32).view(-1, 1).expand(tokens.shape).contiguous()
    coin = torch.bernoulli(probs, generator=generator).bool()
    if valid_mask is not None:
        coin = coin & valid_mask
    return torch.where(coin, fresh, tokens), coin


def loss_weight(t, kind="base-sft", clip=None):
    if kind not in ("base-sft", "reweighted-ce"):
        raise ValueError(f"unknown kind {kind}")
    t = t.double()
    if kind == "base-sft":
        return torch.ones_like(t)
    w = (1.0 - t).reciprocal()
    return w if clip is None else torch.minimum(w, torch.tensor(float(clip), dtype=w.dtype))


def diffusion_loss(logits, clean_tokens, valid_mask, weights, resampled_mask=None):
    log_p = torch.log_softmax(logits.double(), dim=-1)
    ce = -log_p.gather(-1, clean_tokens.unsqueeze(-1)).squeeze(-1)
    valid = valid_mask.double()
    n = valid.sum(-1)
    per_example = torch.where(n > 0, (ce * valid).sum(-1) / n.clamp(min=1.0), torch.zeros_like(n))
    return (per_example * weights.double()).sum().div(logits.shape[0]).float()
