"""Canvas attention masks (problem 417): reference solution.

Three boolean attention masks of DiffusionGemma, True meaning "this query may attend to this key":

* `decoder_attention_mask`: the denoiser's canvas queries over [cached prefix ; canvas] keys,
* `encoder_attention_mask`: the causal encoder's mask with bidirectional image spans,
* `block_diffusion_training_mask`: the block-diffusion training layout [x_t ; x_0].
"""
from __future__ import annotations

import torch


def decoder_attention_mask(
    prefix_mask: torch.Tensor,
    canvas_length: int,
    sliding_window: int | None = None,
) -> torch.Tensor:
    """Mask of the decoder's canvas queries over the keys [prefix (P) ; canvas (L)].

    prefix_mask: (B, P) bool, True for a real cached prefix token, False for padding.
    canvas_length: L >= 1.
    sliding_window: None for a full-attention layer, or W >= 2 for a sliding-window layer.
    Returns (B, L, P + L) torch.bool.
    """
    prefix_mask = prefix_mask.bool()
    batch, prefix_length = prefix_mask.shape

    # Which prefix keys exist for this layer. A full layer keeps the whole prefix. A sliding layer
    # keeps only the W - 1 prefix positions right before the canvas (absolute positions
    # P - W + 1 .. P - 1): the keys that the first canvas position P would see under a causal window
    # of size W. Every canvas query reads the same cached keys, so the window does not move with i.
    visible_prefix = prefix_mask
    if sliding_window is not None:
        positions = torch.arange(prefix_length, device=prefix_mask.device)
        in_window = positions >= prefix_length - sliding_window + 1
        visible_prefix = visible_prefix & in_window

    # The canvas is always seen in full, in both directions (no causal triangle, no window).
    canvas_keys = torch.ones(batch, canvas_length, dtype=torch.bool, device=prefix_mask.device)
    keys = torch.cat([visible_prefix, canvas_keys], dim=1)  # (B, P + L)

    # Every canvas query has the same row: broadcast the key pattern over the L queries.
    return keys[:, None, :].expand(batch, canvas_length, prefix_length + canvas_length).clone()


def image_span_ids(image_mask: torch.Tensor) -> torch.Tensor:
    """(B, S) int64: for an image token the index of its image (0, 1, ... in each row), -1 for text.

    An image is a maximal run of consecutive True entries of image_mask.
    """
    image_mask = image_mask.bool()
    previous = torch.zeros_like(image_mask)
    previous[:, 1:] = image_mask[:, :-1]
    starts = image_mask & ~previous                     # first token of each run
    ids = torch.cumsum(starts.long(), dim=1) - 1        # run counter, valid on image tokens
    return torch.where(image_mask, ids, torch.full_like(ids, -1))


def encoder_attention_mask(
    attention_mask: torch.Tensor,
    image_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mask of the encoder (prefill of the prompt) over its own tokens.

    attention_mask: (B, S) bool (or 0/1 integers), True for real tokens, False for padding.
    image_mask: (B, S) bool or None, True for image tokens; a maximal run of True is one image.
    Returns (B, S, S) torch.bool: entry [b, i, j] says whether query i may attend to key j.
    """
    valid = attention_mask.bool()
    batch, length = valid.shape
    positions = torch.arange(length, device=valid.device)

    # Causal part: key j at or before query i.
    allowed = (positions[None, :] <= positions[:, None]).expand(batch, length, length)

    # Bidirectional part: query and key belong to the same image (text tokens have id -1).
    if image_mask is not None:
        ids = image_span_ids(image_mask)
        same_image = (ids[:, :, None] == ids[:, None, :]) & (ids[:, :, None] >= 0)
        allowed = allowed | same_image

    # Padding removes keys only. A pad query keeps its row (the release does not blank it): a
    # left-pad query sees no valid key at or before it, so its row is all False.
    return allowed & valid[:, None, :]


def block_diffusion_training_mask(num_canvases: int, canvas_length: int) -> torch.Tensor:
    """Training mask over the layout [x_t (C*L noisy tokens) ; x_0 (C*L clean tokens)].

    Returns (2*C*L, 2*C*L) torch.bool.
    """
    n = num_canvases * canvas_length
    index = torch.arange(2 * n)
    is_clean = index >= n                       # second half: clean tokens x_0
    block = (index % n) // canvas_length        # canvas number of every token, in both halves

    q_clean, k_clean = is_clean[:, None], is_clean[None, :]
    q_block, k_block = block[:, None], block[None, :]

    # noisy -> noisy: only its own canvas, bidirectionally (block diagonal)
    noisy_noisy = ~q_clean & ~k_clean & (q_block == k_block)
    # noisy -> clean: the clean tokens of strictly earlier canvases (offset block causal)
    noisy_clean = ~q_clean & k_clean & (k_block < q_block)
    # clean -> clean: its own canvas and earlier ones (block causal); clean never sees noisy
    clean_clean = q_clean & k_clean & (k_block <= q_block)
    return noisy_noisy | noisy_clean | clean_clean
