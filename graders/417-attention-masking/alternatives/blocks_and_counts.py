"""A correct alternative: the decoder row by slicing, images found by counting the text between two
tokens, the training mask assembled from Kronecker blocks."""
from __future__ import annotations

import torch


def decoder_attention_mask(prefix_mask, canvas_length, sliding_window=None):
    prefix = prefix_mask.to(torch.bool)
    batch, p = prefix.shape
    keep = prefix.clone()
    if sliding_window is not None:
        first = max(p - (sliding_window - 1), 0)   # the first prefix position inside the window
        keep[:, :first] = False
    row = torch.cat([keep, torch.ones(batch, canvas_length, dtype=torch.bool)], dim=1)
    return row.unsqueeze(1).repeat(1, canvas_length, 1)


def encoder_attention_mask(attention_mask, image_mask=None):
    valid = attention_mask != 0
    batch, length = valid.shape
    i = torch.arange(length).view(length, 1)
    j = torch.arange(length).view(1, length)
    allowed = (j <= i).unsqueeze(0).repeat(batch, 1, 1)
    if image_mask is not None:
        image = image_mask.to(torch.bool)
        # Two image tokens belong to the same image iff no text token lies between them:
        # the number of text tokens up to each position is then the same.
        text_so_far = torch.cumsum((~image).long(), dim=1)
        same = (text_so_far.unsqueeze(2) == text_so_far.unsqueeze(1)) & image.unsqueeze(2) & image.unsqueeze(1)
        allowed = allowed | same
    return allowed & valid.unsqueeze(1)


def block_diffusion_training_mask(num_canvases, canvas_length):
    c = num_canvases
    ones = torch.ones(canvas_length, canvas_length, dtype=torch.long)
    eye = torch.eye(c, dtype=torch.long)
    strictly_lower = torch.tril(torch.ones(c, c, dtype=torch.long), diagonal=-1)
    lower = torch.tril(torch.ones(c, c, dtype=torch.long))
    top = torch.cat([torch.kron(eye, ones), torch.kron(strictly_lower, ones)], dim=1)
    bottom = torch.cat([torch.zeros(c * canvas_length, c * canvas_length, dtype=torch.long),
                        torch.kron(lower, ones)], dim=1)
    return torch.cat([top, bottom], dim=0) > 0
