"""A correct alternative for 414, written from the statement: plain Python loops in float64
(entropy from the max-shifted exponentials, one position at a time), a Python sort per row, and
one torch.randint call per renoised position."""
from __future__ import annotations

import math

import torch


def _entropy(row):
    m = max(row)
    weights = [math.exp(x - m) if x != -math.inf else 0.0 for x in row]
    total = sum(weights)
    h = 0.0
    for w in weights:
        if w > 0.0:
            q = w / total
            h -= q * math.log(q)
    return max(h, 0.0)


def token_entropy(logits):
    z = logits.double().tolist()
    return torch.tensor([[_entropy(pos) for pos in row] for row in z], dtype=torch.float32)


def entropy_bound_accept(logits, bound):
    z = logits.double().tolist()
    batch, length = len(z), len(z[0])
    out = torch.zeros(batch, length, dtype=torch.bool)
    for b in range(batch):
        h = [_entropy(pos) for pos in z[b]]
        running = 0.0
        for l in sorted(range(length), key=lambda i: h[i]):
            if running <= bound:
                out[b, l] = True
            running += h[l]
    return out


def accept_and_renoise(current_canvas, denoiser_canvas, accepted, vocab_size, generator=None):
    batch, length = current_canvas.shape
    out = torch.empty(batch, length, dtype=torch.int64)
    for b in range(batch):
        for l in range(length):
            if bool(accepted[b, l]):
                out[b, l] = int(denoiser_canvas[b, l])
            else:
                out[b, l] = int(torch.randint(0, vocab_size, (1,), generator=generator))
    return out
