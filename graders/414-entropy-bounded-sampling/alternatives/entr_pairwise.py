"""A correct alternative for 414, written from the statement: entropies with torch.special.entr,
acceptance without a sort (for each position, the sum of the entropies ranked before it, ties
broken by position, from an L x L comparison), and noise drawn only for the rejected positions."""
from __future__ import annotations

import torch


def token_entropy(logits):
    p = torch.softmax(logits.to(torch.float32), dim=-1)
    return torch.special.entr(p).sum(dim=-1)


def entropy_bound_accept(logits, bound):
    h = token_entropy(logits).double()                     # (B, L)
    length = h.shape[-1]
    hi, hj = h[:, :, None], h[:, None, :]                  # position i against position j
    idx = torch.arange(length)
    before = (hj < hi) | ((hj == hi) & (idx[None, :] < idx[:, None])[None])
    sum_before = (before.double() * hj).sum(dim=-1)
    return sum_before <= bound


def accept_and_renoise(current_canvas, denoiser_canvas, accepted, vocab_size, generator=None):
    out = denoiser_canvas.clone().long()
    rejected = ~accepted
    out[rejected] = torch.randint(0, vocab_size, (int(rejected.sum()),), generator=generator)
    return out
