"""Full multi-canvas inference (problem 418): DiffusionGemma's whole sampler on the real model."""
from __future__ import annotations

import math

import torch


def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 256,
    max_denoising_steps: int = 48,
    t_max: float = 0.8,
    t_min: float = 0.4,
    entropy_bound: float = 0.1,
    stability_threshold: int = 1,
    confidence_threshold: float = 0.005,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate with DiffusionGemma's block-diffusion sampler.

    model: a transformers DiffusionGemmaForBlockDiffusion in eval mode (eos and pad ids in
        model.generation_config; canvas length L = model.config.canvas_length).
    input_ids: (B, P) int64 prompts, left-padded. attention_mask: (B, P) bool or 0/1, False at
        pads (None: no padding).
    max_new_tokens: at most ceil(max_new_tokens / L) canvases are generated.
    max_denoising_steps: N, the most decoder passes per canvas; the temperature of step
        cur_step = N, ..., 1 is t_min + (t_max - t_min) * cur_step / N.
    entropy_bound, stability_threshold, confidence_threshold: acceptance and adaptive stopping.
    generator: a CPU torch.Generator; draw every random number from it.
    Returns (sequences, tokens_per_forward): sequences (B, P + C * L) int64, the prompt followed
    by the C committed canvases (pad after eos); tokens_per_forward (B,) float, non-pad generated
    tokens / decoder passes the row took part in.
    """
    raise NotImplementedError
