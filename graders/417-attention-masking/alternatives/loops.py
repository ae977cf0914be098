"""A correct alternative: every mask entry decided by plain Python loops over the rule."""
from __future__ import annotations

import torch


def decoder_attention_mask(prefix_mask, canvas_length, sliding_window=None):
    rows = prefix_mask.tolist()
    batch = len(rows)
    p = prefix_mask.shape[1]
    out = []
    for b in range(batch):
        row = []
        for j in range(p):
            seen = bool(rows[b][j])
            if sliding_window is not None and j < p - sliding_window + 1:
                seen = False
            row.append(seen)
        row += [True] * canvas_length
        out.append([list(row) for _ in range(canvas_length)])
    return torch.tensor(out, dtype=torch.bool).reshape(batch, canvas_length, p + canvas_length)


def encoder_attention_mask(attention_mask, image_mask=None):
    valid = [[bool(v) for v in row] for row in attention_mask.tolist()]
    batch, length = attention_mask.shape
    images = [[False] * length for _ in range(batch)] if image_mask is None else \
        [[bool(v) for v in row] for row in image_mask.tolist()]
    out = []
    for b in range(batch):
        # image number of each token, -1 for text
        ids, current, previous = [], -1, False
        for s in range(length):
            if images[b][s] and not previous:
                current += 1
            ids.append(current if images[b][s] else -1)
            previous = images[b][s]
        grid = []
        for i in range(length):
            grid.append([valid[b][j] and (j <= i or (ids[i] >= 0 and ids[i] == ids[j])) for j in range(length)])
        out.append(grid)
    return torch.tensor(out, dtype=torch.bool).reshape(batch, length, length)


def block_diffusion_training_mask(num_canvases, canvas_length):
    n = num_canvases * canvas_length
    out = [[False] * (2 * n) for _ in range(2 * n)]
    for q in range(2 * n):
        q_clean, q_block = q >= n, (q % n) // canvas_length
        for k in range(2 * n):
            k_clean, k_block = k >= n, (k % n) // canvas_length
            if not q_clean and not k_clean:
                out[q][k] = q_block == k_block
            elif not q_clean and k_clean:
                out[q][k] = k_block < q_block
            elif q_clean and k_clean:
                out[q][k] = k_block <= q_block
    return torch.tensor(out, dtype=torch.bool).reshape(2 * n, 2 * n)
