"""A correct alternative for 415, written from the statement: instead of storing k canvases it
keeps the previous canvas and, per row, the length of the run of identical consecutive canvases.
"Equal to each of the last k earlier canvases" is "the run ending now has at least k + 1 calls".
Entropies with torch.special.entr in float64."""
from __future__ import annotations

import torch


class StableAndConfident:
    def __init__(self, stability_threshold, confidence_threshold):
        self.k = stability_threshold
        self.c = confidence_threshold
        self.reset()

    def reset(self):
        self.previous = None
        self.repeats = None        # per row: how many earlier consecutive calls equal the current canvas

    def __call__(self, argmax_canvas, logits):
        if self.previous is None:
            self.repeats = torch.zeros(argmax_canvas.shape[0], dtype=torch.long)
        else:
            same = (argmax_canvas == self.previous).all(dim=1)
            self.repeats = torch.where(same, self.repeats + 1, torch.zeros_like(self.repeats))
        self.previous = argmax_canvas.clone()
        stable = self.repeats >= self.k
        p = torch.softmax(logits.double(), dim=-1)
        mean_entropy = torch.special.entr(p).sum(dim=-1).mean(dim=-1)
        return stable & (mean_entropy < self.c)
