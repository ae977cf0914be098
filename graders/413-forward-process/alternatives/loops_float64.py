"""A correct alternative for 413, written from the statement: plain Python loops, one coin and
(only when it comes up) one fresh token per position, drawn in that order; the loss in float64
with math.log / math.exp, one position at a time."""
from __future__ import annotations

import math

import torch


def sample_noise_level(batch_size, t_min=1e-3, t_max=1 - 1e-3, generator=None):
    levels = []
    for _ in range(batch_size):
        u = float(torch.rand(1, generator=generator, dtype=torch.float64))
        levels.append(min(max(t_min + (t_max - t_min) * u, t_min), t_max))
    return torch.tensor(levels, dtype=torch.float32)


def corrupt_canvas(tokens, t, vocab_size, valid_mask=None, generator=None):
    batch, length = tokens.shape
    noisy = tokens.clone()
    resampled = torch.zeros(batch, length, dtype=torch.bool)
    for b in range(batch):
        p = float(t[b])
        for l in range(length):
            if valid_mask is not None and not bool(valid_mask[b, l]):
                continue
            if float(torch.rand(1, generator=generator)) < p:
                resampled[b, l] = True
                noisy[b, l] = int(torch.randint(vocab_size, (1,), generator=generator))
    return noisy, resampled


def loss_weight(t, kind="base-sft", clip=None):
    if kind == "base-sft":
        return torch.ones(t.shape, dtype=torch.float32)
    if kind == "reweighted-ce":
        out = torch.empty(t.shape, dtype=torch.float64)
        flat_t, flat_out = t.reshape(-1), out.view(-1)
        for i in range(flat_t.numel()):
            w = 1.0 / (1.0 - float(flat_t[i]))
            flat_out[i] = w if clip is None else min(w, clip)
        return out
    raise ValueError("kind must be 'base-sft' or 'reweighted-ce'")


def diffusion_loss(logits, clean_tokens, valid_mask, weights, resampled_mask=None):
    batch, length, _ = logits.shape
    z = logits.double().tolist()
    total = 0.0
    for b in range(batch):
        ce_sum, count = 0.0, 0
        for l in range(length):
            if not bool(valid_mask[b, l]):
                continue
            row = z[b][l]
            m = max(row)
            log_norm = m + math.log(sum(math.exp(x - m) for x in row))
            ce_sum += log_norm - row[int(clean_tokens[b, l])]
            count += 1
        if count:
            total += float(weights[b]) * ce_sum / count
    return torch.tensor(total / batch, dtype=torch.float32)
