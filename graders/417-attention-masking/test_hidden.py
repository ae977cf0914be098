"""Hidden tests of 417-attention-masking (decoder, encoder and block-diffusion training masks)."""
from __future__ import annotations

import torch

from runner.testing import assert_close, assert_shape_dtype


# ----------------------------------------------------------------------------------------------
# helpers

def prefix_masks(seed: int, batch: int, prefix_length: int) -> torch.Tensor:
    """(B, P) bool: row 0 without padding, then left padding, scattered pads and right pads."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, prefix_length, generator=gen) > 0.3
    positions = torch.arange(prefix_length)
    mask[0] = True
    if batch > 1:
        mask[1] = positions >= prefix_length // 3                    # left padding only
    if batch > 2:
        mask[2] = positions < prefix_length - 2                      # pads at the end (after EOS)
    return mask


def image_row(spec: str) -> tuple[list[bool], list[bool]]:
    """'p' pad, 't' text, digits image tokens (a change of digit starts a new image only if a
    non-image token separates them; adjacent digits merge into one run)."""
    valid = [c != "p" for c in spec]
    image = [c.isdigit() for c in spec]
    return valid, image


def image_batch(*specs: str) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [image_row(s) for s in specs]
    return (torch.tensor([r[0] for r in rows], dtype=torch.bool),
            torch.tensor([r[1] for r in rows], dtype=torch.bool))


def image_ids(image: torch.Tensor) -> torch.Tensor:
    """Image index of each token (-1 for text), computed here independently with a loop."""
    ids = torch.full(image.shape, -1, dtype=torch.long)
    for b in range(image.shape[0]):
        count, previous = -1, False
        for s in range(image.shape[1]):
            if image[b, s] and not previous:
                count += 1
            if image[b, s]:
                ids[b, s] = count
            previous = bool(image[b, s])
    return ids


DECODER_SLIDING_CASES = [  # (seed, batch, P, L, W)
    (10, 5, 9, 4, 4),
    (11, 4, 12, 3, 2),
    (12, 4, 7, 5, 7),     # window equal to the prefix length
    (13, 3, 6, 4, 9),     # window longer than the prefix
    (14, 4, 10, 9, 3),    # canvas longer than the window
    (15, 3, 16, 6, 11),
]


def decoder_sliding_results(submission, reference):
    out = []
    for seed, batch, p, c, w in DECODER_SLIDING_CASES:
        prefix = prefix_masks(seed, batch, p)
        got = submission.decoder_attention_mask(prefix, c, w)
        want = reference.decoder_attention_mask(prefix, c, w)
        assert_shape_dtype(got, (batch, c, p + c), torch.bool, what="the sliding-layer decoder mask")
        out.append((prefix, p, c, w, got, want))
    return out


# ----------------------------------------------------------------------------------------------
# decoder

def test_decoder_shape_and_dtype(submission):
    prefix = prefix_masks(0, 3, 5)
    out = submission.decoder_attention_mask(prefix, 4)
    assert_shape_dtype(out, (3, 4, 9), torch.bool, what="the full-layer decoder mask")
    out = submission.decoder_attention_mask(prefix, 4, 3)
    assert_shape_dtype(out, (3, 4, 9), torch.bool, what="the sliding-layer decoder mask")
    out = submission.decoder_attention_mask(torch.ones(2, 0, dtype=torch.bool), 3)
    assert_shape_dtype(out, (2, 3, 3), torch.bool, what="the decoder mask with an empty prefix")
    assert bool(out.all()), "with an empty prefix the canvas queries must see the whole canvas"
    out = submission.decoder_attention_mask(torch.ones(2, 0, dtype=torch.bool), 3, 4)
    assert_shape_dtype(out, (2, 3, 3), torch.bool, what="the sliding-layer decoder mask with an empty prefix")
    assert bool(out.all()), "with an empty prefix the canvas queries must see the whole canvas"


def test_decoder_canvas_is_fully_bidirectional(submission):
    """Every canvas query sees every canvas key, on full and sliding layers (even when L > W)."""
    prefix = prefix_masks(1, 4, 6)
    full = submission.decoder_attention_mask(prefix, 7)
    assert_shape_dtype(full, (4, 7, 13), torch.bool, what="the full-layer decoder mask")
    canvas = full[:, :, 6:]
    earlier = torch.tril(torch.ones(7, 7, dtype=torch.bool))
    assert bool(canvas[:, earlier].all()), "a canvas query cannot see an earlier canvas token"
    assert bool(canvas.all()), \
        "a canvas query cannot see a later canvas token: the decoder is bidirectional over the canvas"
    sliding = submission.decoder_attention_mask(prefix, 7, 3)
    assert_shape_dtype(sliding, (4, 7, 13), torch.bool, what="the sliding-layer decoder mask")
    assert bool(sliding[:, :, 6:].all()), \
        "a sliding layer hides part of the canvas: the window never applies to canvas keys"


def test_decoder_padding_is_never_seen(submission):
    prefix = prefix_masks(2, 5, 8)
    for window in (None, 3, 20):
        out = submission.decoder_attention_mask(prefix, 3, window)
        assert_shape_dtype(out, (5, 3, 11), torch.bool, what="the decoder mask")
        pads = (~prefix)[:, None, :].expand(5, 3, 8)
        assert not bool(out[:, :, :8][pads].any()), "a canvas query can see a padding prefix key"


def test_decoder_full_layer(submission, reference):
    """Full layer: exactly the real prefix keys and the whole canvas."""
    for seed, batch, p, c in [(3, 5, 9, 4), (4, 3, 1, 2), (5, 4, 14, 6)]:
        prefix = prefix_masks(seed, batch, p)
        got = submission.decoder_attention_mask(prefix, c)
        assert_shape_dtype(got, (batch, c, p + c), torch.bool, what="the full-layer decoder mask")
        seen_prefix = got[:, :, :p]
        real = prefix[:, None, :].expand(batch, c, p)
        assert bool(seen_prefix[real].all()), "a full-attention layer hides a real prefix key"
        assert_close(got, reference.decoder_attention_mask(prefix, c), rtol=0, atol=0,
                     what="the full-layer decoder mask")


def test_decoder_window_is_the_same_for_every_canvas_query(submission, reference):
    """The release keeps the last W - 1 prefix keys in the sliding cache; all canvas queries read
    all of them, so the window does not slide with the query's position in the canvas."""
    for prefix, p, c, w, got, want in decoder_sliding_results(submission, reference):
        rows_equal = bool((got[:, :, :p] == got[:, :1, :p]).all())
        assert rows_equal, "on a sliding layer, different canvas queries see different prefix keys"


def test_decoder_sliding_window_keeps_exactly_its_prefix_keys(submission, reference):
    for prefix, p, c, w, got, want in decoder_sliding_results(submission, reference):
        got_p, want_p = got[:, :, :p], want[:, :, :p]
        assert not bool((got_p & ~want_p & prefix[:, None, :]).any()), \
            "a sliding layer shows a real prefix key that lies outside its window"
        assert not bool((want_p & ~got_p).any()), \
            "a sliding layer hides a real prefix key that lies inside its window"
        assert_close(got, want, rtol=0, atol=0, what="the sliding-layer decoder mask")


# ----------------------------------------------------------------------------------------------
# encoder

def test_encoder_text_only_is_causal_over_real_keys(submission, reference):
    gen = torch.Generator().manual_seed(20)
    batch, length = 5, 9
    valid = torch.ones(batch, length, dtype=torch.bool)
    valid[1, :3] = False                         # left padding
    valid[2, 6:] = False                         # right padding
    valid[3] = torch.rand(length, generator=gen) > 0.3
    valid[4, :8] = False
    got = submission.encoder_attention_mask(valid)
    assert_shape_dtype(got, (batch, length, length), torch.bool, what="the encoder mask")
    future = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
    assert not bool(got[:, future].any()), "without images, a query sees a later token"
    assert not bool(got[(~valid)[:, None, :].expand(batch, length, length)].any()), \
        "a padding key is visible"
    assert_close(got, reference.encoder_attention_mask(valid), rtol=0, atol=0,
                 what="the text-only encoder mask")
    # a 0/1 integer attention mask means the same
    got_int = submission.encoder_attention_mask(valid.long())
    assert_close(got_int, reference.encoder_attention_mask(valid), rtol=0, atol=0,
                 what="the encoder mask for a 0/1 integer attention_mask")


IMAGE_SPECS = (
    "tt000t1111tt",
    "ppt00tt11t22",
    "t0000000tttt",
    "tttttttttttt",
    "pppt000tt0tt",
    "0t1t2t333ttp",
)


def test_encoder_image_tokens_see_their_whole_image(submission):
    valid, image = image_batch(*IMAGE_SPECS)
    got = submission.encoder_attention_mask(valid, image)
    b, s = valid.shape
    assert_shape_dtype(got, (b, s, s), torch.bool, what="the encoder mask with images")
    ids = image_ids(image)
    same = (ids[:, :, None] == ids[:, None, :]) & (ids[:, :, None] >= 0)
    assert bool(got[same].all()), "an image token cannot see every token of its own image"


def test_encoder_separate_images_stay_separate(submission):
    valid, image = image_batch(*IMAGE_SPECS)
    got = submission.encoder_attention_mask(valid, image)
    b, s = valid.shape
    assert_shape_dtype(got, (b, s, s), torch.bool, what="the encoder mask with images")
    ids = image_ids(image)
    later = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)[None]
    other_image = (ids[:, :, None] != ids[:, None, :]) & (ids[:, :, None] >= 0) & (ids[:, None, :] >= 0)
    assert not bool(got[later & other_image].any()), "an image token sees a later, different image"


def test_encoder_text_never_sees_the_future(submission):
    valid, image = image_batch(*IMAGE_SPECS)
    got = submission.encoder_attention_mask(valid, image)
    b, s = valid.shape
    assert_shape_dtype(got, (b, s, s), torch.bool, what="the encoder mask with images")
    later = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)[None]
    text_query = (~image)[:, :, None]
    assert not bool(got[later & text_query].any()), "a text token sees a later token"
    image_query = image[:, :, None] & ~image[:, None, :]
    assert not bool(got[later & image_query].any()), "an image token sees later text"


def test_encoder_padded_query_rows(submission, reference):
    """Padding removes keys only: a left-pad row is all False, a right-pad row sees the real
    tokens before it."""
    valid, image = image_batch("ppt00tt", "t00tppp", "pp1ttpp")
    got = submission.encoder_attention_mask(valid, image)
    assert_shape_dtype(got, (3, 7, 7), torch.bool, what="the encoder mask with images")
    assert not bool(got[(~valid)[:, None, :].expand(3, 7, 7)].any()), "a padding key is visible"
    want = reference.encoder_attention_mask(valid, image)
    pad_rows = ~valid
    assert bool((got[pad_rows] == want[pad_rows]).all()), \
        "a padded query's row does not follow the convention (only keys are masked)"
    assert_close(got, want, rtol=0, atol=0, what="the encoder mask with padding")


def test_encoder_random_prompts(submission, reference):
    gen = torch.Generator().manual_seed(21)
    batch, length = 8, 16
    image = torch.zeros(batch, length, dtype=torch.bool)
    for b in range(batch):
        pos = 0
        while pos < length:
            pos += int(torch.randint(0, 4, (1,), generator=gen))
            span = int(torch.randint(1, 5, (1,), generator=gen))
            image[b, pos:pos + span] = True
            pos += span
    valid = torch.ones(batch, length, dtype=torch.bool)
    for b in range(batch):
        cut = int(torch.randint(0, 5, (1,), generator=gen))
        if b % 2:
            valid[b, :cut] = False
        else:
            valid[b, length - cut:] = False
    image &= valid
    got = submission.encoder_attention_mask(valid, image)
    assert_close(got, reference.encoder_attention_mask(valid, image), rtol=0, atol=0,
                 what="the encoder mask on random prompts with images")


# ----------------------------------------------------------------------------------------------
# block-diffusion training mask

TRAINING_SHAPES = [(1, 1), (1, 3), (2, 1), (3, 2), (4, 3)]


def block_layout(n: int, c: int):
    t = torch.arange(2 * n * c)
    clean = t >= n * c
    block = (t % (n * c)) // c
    return clean[:, None], clean[None, :], block[:, None], block[None, :]


def test_training_mask_noisy_queries(submission):
    for n, c in TRAINING_SHAPES:
        got = submission.block_diffusion_training_mask(n, c)
        assert_shape_dtype(got, (2 * n * c, 2 * n * c), torch.bool, what="the training mask")
        qc, kc, qb, kb = block_layout(n, c)
        noisy_q = ~qc
        assert bool(got[noisy_q & ~kc & (qb == kb)].all()), "a noisy canvas cannot see all of itself"
        assert not bool(got[noisy_q & ~kc & (qb != kb)].any()), "a noisy canvas sees another noisy canvas"
        assert not bool(got[noisy_q & kc & (qb == kb)].any()), "a noisy canvas sees its own clean copy"
        assert not bool(got[noisy_q & kc & (kb > qb)].any()), "a noisy canvas sees a later clean canvas"
        assert bool(got[noisy_q & kc & (kb < qb)].all()), "a noisy canvas misses an earlier clean canvas"


def test_training_mask_clean_queries(submission):
    for n, c in TRAINING_SHAPES:
        got = submission.block_diffusion_training_mask(n, c)
        assert_shape_dtype(got, (2 * n * c, 2 * n * c), torch.bool, what="the training mask")
        qc, kc, qb, kb = block_layout(n, c)
        assert not bool(got[qc & ~kc].any()), "a clean token sees a noisy token"
        assert bool(got[qc & kc & (qb == kb)].all()), \
            "a clean token cannot see its whole clean canvas (attention inside a canvas is bidirectional)"
        assert not bool(got[qc & kc & (kb > qb)].any()), "a clean canvas sees a later clean canvas"
        assert bool(got[qc & kc & (kb < qb)].all()), "a clean canvas misses an earlier clean canvas"


def test_training_mask_matches_reference(submission, reference):
    for n, c in TRAINING_SHAPES + [(5, 4), (2, 6)]:
        got = submission.block_diffusion_training_mask(n, c)
        assert_close(got, reference.block_diffusion_training_mask(n, c), rtol=0, atol=0,
                     what="the training mask")
