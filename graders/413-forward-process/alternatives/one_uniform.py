"""A correct alternative for 413, written from the statement: one uniform number u per position
decides both the coin (u < t) and, rescaled as u / t (uniform on [0, 1) given the coin), the fresh
token; cross-entropy as logsumexp minus the clean logit; noise levels mapped in float64."""
from __future__ import annotations

import torch


def sample_noise_level(batch_size, t_min=1e-3, t_max=1 - 1e-3, generator=None):
    u = torch.rand(batch_size, generator=generator, dtype=torch.float64)
    return (t_min + (t_max - t_min) * u).clamp(t_min, t_max).float()


def corrupt_canvas(tokens, t, vocab_size, valid_mask=None, generator=None):
    u = torch.rand(tokens.shape, generator=generator, dtype=torch.float64)
    tt = t.double()[:, None]
    coin = u < tt
    if valid_mask is not None:
        coin &= valid_mask.bool()
    fresh = torch.floor(u / tt.clamp(min=1e-300) * vocab_size).clamp(0, vocab_size - 1).long()
    noisy = tokens.clone()
    noisy[coin] = fresh[coin]
    return noisy, coin


def loss_weight(t, kind="base-sft", clip=None):
    if kind == "reweighted-ce":
        w = 1 / (1 - t.float())
        return w.clamp(max=clip) if clip is not None else w
    if kind == "base-sft":
        return torch.ones_like(t.float())
    raise ValueError(kind)


def diffusion_loss(logits, clean_tokens, valid_mask, weights, resampled_mask=None):
    z = logits.float()
    ce = torch.logsumexp(z, dim=-1) - z.gather(-1, clean_tokens[..., None])[..., 0]
    ce = ce.masked_fill(~valid_mask, 0.0)
    n = valid_mask.sum(dim=1)
    per_example = ce.sum(dim=1) / torch.clamp(n, min=1)
    return (weights.float() * per_example).mean()
