"""Adaptive early stopping (problem 415): DiffusionGemma's stable-and-confident stopping rule."""
from __future__ import annotations

import torch


class StableAndConfident:
    """Decides, after each denoising step, which batch rows may stop denoising their canvas.

    A row stops when it is stable (its argmax canvas equals each of the argmax canvases given on
    the last `stability_threshold` earlier calls) and confident (the mean over the canvas of the
    per-token entropy, in nats, of softmax(logits) is strictly below `confidence_threshold`).
    """

    def __init__(self, stability_threshold: int, confidence_threshold: float) -> None:
        """stability_threshold: int >= 0, how many earlier argmax canvases must equal the current one
        (0: always stable). confidence_threshold: float, strict upper bound on the mean entropy (nats).
        The history of argmax canvases starts empty."""
        raise NotImplementedError

    def __call__(self, argmax_canvas: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """One denoising step's verdict.

        argmax_canvas: (B, L) int64, the argmax of this step's processed logits (token ids >= 0).
        logits: (B, L, V) float, the processed (temperature-scaled) logits; may contain -inf.
        Returns: (B,) torch.bool, True for rows that should stop. Compares with the history first,
        then records argmax_canvas in it.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all earlier argmax canvases (the sampler calls this before each new canvas)."""
        raise NotImplementedError
