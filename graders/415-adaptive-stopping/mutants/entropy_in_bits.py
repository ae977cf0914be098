"""Reference solution: adaptive early stopping of a DiffusionGemma canvas (stable AND confident).

After every denoising step the sampler asks, for each batch row, whether the row may stop
denoising its current canvas. A row stops when

* it is *stable*: its argmax canvas is identical to each of the argmax canvases it had on the
  last `stability_threshold` calls (the current call is not part of that history), and
* it is *confident*: the mean over canvas positions of the entropy (in nats) of
  softmax(logits) is strictly below `confidence_threshold`.

The state (the history of argmax canvases) lives in the object and is cleared by `reset()`,
which the sampler calls before it starts a new canvas.
"""
from __future__ import annotations

import math

import torch


def mean_token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean over canvas positions of the entropy (nats) of softmax(logits).

    logits: (B, L, V) float. Returns (B,) in the dtype of `logits`.

    Terms whose probability is exactly 0 (a logit of -inf, or a probability that underflowed)
    contribute 0, the limit of p log p as p -> 0. Computing log-probabilities with log_softmax
    and clamping -inf to the most negative finite number keeps 0 * log 0 from becoming NaN.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    log_p = log_p.clamp(min=torch.finfo(log_p.dtype).min)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)  # (B, L), nats
    return entropy.mean(dim=-1) / math.log(2)  # MISTAKE: bits  # (B,): mean over the canvas of each row


class StableAndConfident:
    """Per-row stopping rule of DiffusionGemma's denoising loop.

    stability_threshold: how many previous argmax canvases the current one must equal (0: the
        stability condition always holds).
    confidence_threshold: a row is confident when its mean token entropy (nats) is strictly
        below this value (0.005 in the released generation config).
    """

    def __init__(self, stability_threshold: int, confidence_threshold: float) -> None:
        self.stability_threshold = int(stability_threshold)
        self.confidence_threshold = float(confidence_threshold)
        # (stability_threshold, B, L) int64 once the first call has told us B and L.
        self.history: torch.Tensor | None = None

    def __call__(self, argmax_canvas: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """argmax_canvas: (B, L) int64, logits: (B, L, V) float -> (B,) bool, True = stop."""
        batch_size, canvas_length = argmax_canvas.shape

        # 1. Stability.
        if self.stability_threshold == 0:
            stable = torch.ones(batch_size, dtype=torch.bool, device=argmax_canvas.device)
        else:
            if self.history is None:
                # Pre-fill with -1, a value no token id takes: until k real canvases have been
                # seen, some slot of the history differs from any canvas, so the row is unstable.
                self.history = torch.full(
                    (self.stability_threshold, batch_size, canvas_length), -1,
                    dtype=argmax_canvas.dtype, device=argmax_canvas.device,
                )
            # Compare with the history BEFORE adding the current canvas to it: equal at every
            # position (all over L) to every one of the k stored canvases (all over k).
            stable = (self.history == argmax_canvas[None]).all(dim=-1).all(dim=0)
            # Drop the oldest canvas, append the current one as the newest.
            self.history = torch.cat([self.history[1:], argmax_canvas[None].clone()], dim=0)

        # 2. Confidence: per row, mean entropy over the canvas, strict inequality.
        confident = mean_token_entropy(logits) < self.confidence_threshold

        return stable & confident

    def reset(self) -> None:
        """Forget every stored canvas (called before each new canvas)."""
        self.history = None
