"""A correct alternative for 415, written from the statement: a Python list of every canvas since
the last reset, of which the last k are stacked and compared; entropies in float32 with
torch.where instead of a clamp."""
from __future__ import annotations

import torch


class StableAndConfident:
    def __init__(self, stability_threshold, confidence_threshold):
        self.k = int(stability_threshold)
        self.threshold = float(confidence_threshold)
        self.canvases = []

    def reset(self):
        self.canvases = []

    def __call__(self, argmax_canvas, logits):
        batch = argmax_canvas.shape[0]
        if self.k == 0:
            stable = torch.ones(batch, dtype=torch.bool)
        elif len(self.canvases) < self.k:
            stable = torch.zeros(batch, dtype=torch.bool)
        else:
            last = torch.stack(self.canvases[-self.k:])           # (k, B, L)
            stable = torch.eq(last, argmax_canvas.unsqueeze(0)).flatten(2).all(-1).all(0)
        self.canvases.append(argmax_canvas.clone())
        log_p = torch.log_softmax(logits.float(), dim=-1)
        p = torch.exp(log_p)
        terms = torch.where(p > 0, -p * log_p, torch.zeros_like(p))
        confident = terms.sum(-1).mean(-1) < self.threshold
        return stable & confident
