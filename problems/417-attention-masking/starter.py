"""Canvas attention masks (problem 417): DiffusionGemma's decoder, encoder and training masks.

Every function returns a torch.bool mask where True means "this query may attend to this key".
"""
from __future__ import annotations

import torch


def decoder_attention_mask(
    prefix_mask: torch.Tensor,
    canvas_length: int,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """Mask of the decoder's canvas queries over the keys [cached prefix (P) ; canvas (L)].

    prefix_mask: (B, P) torch.bool, True for a real cached prefix token, False for padding
        (P may be 0).
    canvas_length: int L >= 1, the number of canvas tokens (the queries).
    sliding_window: None for a full-attention layer, or an int W >= 2 for a sliding-window layer.
        Prefix positions are 0 .. P-1 and canvas query i sits at position P + i; a sliding layer
        keeps only the prefix keys at positions >= P - W + 1 (the W - 1 positions just before the
        canvas), for every canvas query alike.
    Returns: (B, L, P + L) torch.bool; [b, i, j] says whether canvas query i of row b may attend
        to key j (j < P: prefix position j; j >= P: canvas position j - P).
    """
    raise NotImplementedError


def encoder_attention_mask(
    attention_mask: torch.Tensor,
    image_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mask of the causal encoder over its own S tokens, with bidirectional images.

    attention_mask: (B, S) torch.bool (0/1 integers also accepted), True for real tokens, False
        for padding.
    image_mask: (B, S) torch.bool or None, True for image tokens; each maximal run of consecutive
        True entries in a row is one image.
    Returns: (B, S, S) torch.bool; [b, i, j] is True iff key j is a real token and (j <= i, or i
        and j are tokens of the same image). Padding only removes keys: a pad query's row follows
        the same rule.
    """
    raise NotImplementedError


def block_diffusion_training_mask(num_canvases: int, canvas_length: int) -> torch.Tensor:
    """Block-diffusion training mask over the layout [x_t ; x_0] of C canvases of L tokens.

    num_canvases: int C >= 1. canvas_length: int L >= 1.
    Tokens 0 .. C*L-1 are the noisy canvases x_t (canvas b holds tokens b*L .. b*L+L-1); tokens
    C*L .. 2*C*L-1 are the clean tokens x_0 in the same canvas order.
    Returns: (2*C*L, 2*C*L) torch.bool (no batch dimension): a noisy canvas sees itself and the
        clean canvases strictly before it; a clean canvas sees the clean canvases up to and
        including itself; clean tokens never see noisy ones.
    """
    raise NotImplementedError
