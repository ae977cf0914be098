"""Hidden tests of 183-partial-rotary-embedding (Gemma 4's rotary embeddings per layer type)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from runner.testing import assert_close, assert_shape_dtype, rng

SLIDING, FULL = "sliding_attention", "full_attention"

DEFAULTS = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}
# Other bases and proportions: nothing about the layer types may be hard-wired.
OTHER = {
    SLIDING: {"rope_type": "default", "rope_theta": 50_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 300_000.0},
}
WITH_FACTOR = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0, "factor": 8.0},
}
# Full layers with plain RoPE (a leftover partial_rotary_factor it must ignore), sliding layers
# with proportional RoPE: the rope type decides, not the layer's name.
FULL_IS_DEFAULT = {
    SLIDING: {"rope_type": "proportional", "partial_rotary_factor": 0.5, "rope_theta": 10_000.0},
    FULL: {"rope_type": "default", "rope_theta": 1_000_000.0, "partial_rotary_factor": 0.25},
}
NO_PARTIAL_KEY = {
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "rope_theta": 1_000_000.0},
}
ODD_PROPORTION = {  # 0.35 * 16 / 2 = 2.8 pairs: rounds down to 2; 0.35 * 40 / 2 = 7
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.35, "rope_theta": 1_000_000.0},
}
DEFAULT_WITH_STRAY_KEYS = {  # "default" RoPE ignores keys it does not use
    SLIDING: {"rope_type": "default", "rope_theta": 10_000.0, "partial_rotary_factor": 0.5, "factor": 4.0},
    FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
}


def rotated_pairs(head_dim: int, params: dict) -> int:
    if params["rope_type"] == "default":
        return head_dim // 2
    return math.floor(params.get("partial_rotary_factor", 1.0) * head_dim / 2)


def frequencies(submission, reference, head_dim, layer_type, config, what):
    got = submission.rope_frequencies(head_dim, layer_type, config)
    want = reference.rope_frequencies(head_dim, layer_type, config)
    assert_shape_dtype(got, (head_dim // 2,), np.float32, what=what)
    return got, want


def close_freq(got, want, what):
    assert_close(got, want, rtol=1e-6, atol=0.0, what=what)


def rope_tolerance(x_dtype, positions) -> dict:
    top = float(np.max(positions)) if positions.size else 0.0
    if x_dtype == np.float16:
        return dict(rtol=1e-2, atol=1e-2 + 5e-7 * top)
    return dict(rtol=1e-5, atol=2e-5 + 5e-7 * top)


def heads(seed: int, batch: int, seq: int, n_heads: int, head_dim: int, dtype=np.float32) -> np.ndarray:
    return rng(seed).standard_normal((batch, seq, n_heads, head_dim)).astype(dtype)


def check_rope(submission, reference, x, positions, layer_type, config, what):
    got = submission.apply_rope(x, positions, layer_type, config)
    assert_close(got, reference.apply_rope(x, positions, layer_type, config), what=what,
                 **rope_tolerance(x.dtype, positions))
    return got


# ----------------------------------------------------------------------------------------------
# frequencies

def test_frequencies_shape_and_dtype(submission):
    for head_dim in (2, 8, 32, 512):
        for layer_type in (SLIDING, FULL):
            for config in (None, OTHER):
                out = submission.rope_frequencies(head_dim, layer_type, config)
                assert_shape_dtype(out, (head_dim // 2,), np.float32, what="rope_frequencies")


def test_sliding_frequencies(submission, reference):
    for head_dim in (2, 8, 16, 64, 256):
        got, want = frequencies(submission, reference, head_dim, SLIDING, None, "sliding-layer frequencies")
        close_freq(got, want, what="sliding-layer frequencies with the default config")
        got, want = frequencies(submission, reference, head_dim, SLIDING, OTHER, "sliding-layer frequencies")
        close_freq(got, want, what="sliding-layer frequencies with another rope_theta")


@pytest.mark.points(2)
def test_full_frequencies(submission, reference):
    for head_dim in (8, 16, 32, 64, 512):
        got, want = frequencies(submission, reference, head_dim, FULL, None, "full-layer frequencies")
        close_freq(got, want, what="full-layer frequencies with the default config")


def test_full_frequencies_only_first_pairs_turn(submission):
    """Proportional RoPE: pairs 0 .. k-1 turn (positive frequencies), pairs k .. D/2-1 are exactly 0."""
    for head_dim, config in [(32, None), (64, None), (512, None), (16, OTHER), (40, ODD_PROPORTION)]:
        got = submission.rope_frequencies(head_dim, FULL, config)
        assert_shape_dtype(got, (head_dim // 2,), np.float32, what="full-layer frequencies")
        k = rotated_pairs(head_dim, (DEFAULTS if config is None else config)[FULL])
        assert np.all(got[:k] > 0), "on a full layer, a pair that should turn has no positive frequency"
        assert not np.any(got[k:]), "on a full layer, a pair that should stay still has a nonzero frequency"


def test_proportional_exponents_use_the_full_head_dim(submission, reference):
    """The turning pairs keep the frequencies they would have in a full RoPE of the whole head."""
    for head_dim, config in [(32, None), (512, None), (24, OTHER)]:
        got, want = frequencies(submission, reference, head_dim, FULL, config, "full-layer frequencies")
        k = rotated_pairs(head_dim, (DEFAULTS if config is None else config)[FULL])
        close_freq(got[:k], want[:k], what="the frequencies of the turning pairs of a full layer")


def test_custom_bases_and_proportion(submission, reference):
    for head_dim in (16, 48):
        for layer_type in (SLIDING, FULL):
            got, want = frequencies(submission, reference, head_dim, layer_type, OTHER, "rope_frequencies")
            close_freq(got, want, what="frequencies with a config other than the defaults")


def test_factor_divides_proportional_frequencies(submission, reference):
    got, want = frequencies(submission, reference, 64, FULL, WITH_FACTOR, "full-layer frequencies")
    close_freq(got, want, what="full-layer frequencies with a scaling factor")


def test_rope_type_decides_not_layer_name(submission, reference):
    got, want = frequencies(submission, reference, 32, FULL, FULL_IS_DEFAULT, "full-layer frequencies")
    close_freq(got, want, what="a full layer whose rope_type is \"default\"")
    got, want = frequencies(submission, reference, 32, SLIDING, FULL_IS_DEFAULT, "sliding-layer frequencies")
    close_freq(got, want, what="a sliding layer whose rope_type is \"proportional\"")


def test_partial_factor_defaults_to_one(submission, reference):
    got, want = frequencies(submission, reference, 32, FULL, NO_PARTIAL_KEY, "full-layer frequencies")
    close_freq(got, want, what="proportional RoPE without a partial_rotary_factor")


def test_turning_pairs_round_down(submission, reference):
    for head_dim in (16, 40, 20):
        got, want = frequencies(submission, reference, head_dim, FULL, ODD_PROPORTION, "full-layer frequencies")
        close_freq(got, want, what="proportional RoPE whose share of pairs is not a whole number")


def test_default_type_ignores_other_keys(submission, reference):
    got, want = frequencies(submission, reference, 32, SLIDING, DEFAULT_WITH_STRAY_KEYS, "sliding-layer frequencies")
    close_freq(got, want, what="\"default\" RoPE given keys it does not use")


def test_none_means_the_gemma4_defaults(submission):
    for head_dim in (16, 64):
        for layer_type in (SLIDING, FULL):
            implicit = submission.rope_frequencies(head_dim, layer_type, None)
            explicit = submission.rope_frequencies(head_dim, layer_type, DEFAULTS)
            assert_shape_dtype(implicit, (head_dim // 2,), np.float32, what="rope_frequencies with config=None")
            assert_close(implicit, explicit, rtol=0, atol=0,
                         what="config=None and the explicit Gemma 4 defaults give different frequencies")


# ----------------------------------------------------------------------------------------------
# rotation

def test_apply_shape_and_dtype(submission):
    positions = np.arange(10).reshape(2, 5)
    for layer_type, head_dim in ((SLIDING, 16), (FULL, 32)):
        for dtype in (np.float32, np.float16):
            x = heads(1, 2, 5, 3, head_dim, dtype)
            out = submission.apply_rope(x, positions, layer_type, None)
            assert_shape_dtype(out, x.shape, dtype, what="apply_rope")


@pytest.mark.points(2)
def test_apply_sliding(submission, reference):
    for seed, (b, s, h, d) in [(10, (2, 9, 3, 16)), (11, (1, 33, 2, 64)), (12, (3, 4, 1, 8))]:
        x = heads(seed, b, s, h, d)
        positions = rng(seed + 50).integers(0, 1024, size=(b, s))
        check_rope(submission, reference, x, positions, SLIDING, None, what="apply_rope on a sliding layer")


@pytest.mark.points(2)
def test_apply_full(submission, reference):
    for seed, (b, s, h, d) in [(20, (2, 9, 3, 32)), (21, (1, 17, 2, 128)), (22, (3, 5, 1, 16))]:
        x = heads(seed, b, s, h, d)
        positions = rng(seed + 50).integers(0, 1024, size=(b, s))
        check_rope(submission, reference, x, positions, FULL, None, what="apply_rope on a full layer")


def test_apply_other_configs(submission, reference):
    x = heads(30, 2, 6, 2, 40)
    positions = rng(31).integers(0, 512, size=(2, 6))
    for config in (OTHER, WITH_FACTOR, FULL_IS_DEFAULT, ODD_PROPORTION):
        for layer_type in (SLIDING, FULL):
            check_rope(submission, reference, x, positions, layer_type, config,
                       what="apply_rope with a config other than the defaults")


def test_still_dimensions_pass_through(submission):
    """On a full layer the pairs with frequency 0 come out exactly as they went in."""
    for head_dim, config in [(32, None), (64, OTHER)]:
        x = heads(40, 2, 7, 2, head_dim)
        positions = rng(41).integers(1, 1024, size=(2, 7))
        out = submission.apply_rope(x, positions, FULL, config)
        assert_shape_dtype(out, x.shape, np.float32, what="apply_rope on a full layer")
        half = head_dim // 2
        k = rotated_pairs(head_dim, (DEFAULTS if config is None else config)[FULL])
        still = np.r_[k:half, half + k:head_dim]
        assert np.array_equal(out[..., still], x[..., still]), \
            "on a full layer, dimensions whose pair has frequency 0 were changed"
        turning = np.r_[0:k, half:half + k]
        assert not np.allclose(out[..., turning], x[..., turning], atol=1e-3), \
            "on a full layer, the dimensions that should turn did not move"


def test_pairs_are_first_half_with_second_half(submission):
    """A vector with one nonzero dimension i only spreads to dimension i +- D/2."""
    head_dim = 16
    x = np.zeros((1, head_dim, 1, head_dim), dtype=np.float32)
    for i in range(head_dim):
        x[0, i, 0, i] = 1.0
    positions = np.full((1, head_dim), 100)
    out = submission.apply_rope(x, positions, SLIDING, None)
    assert_shape_dtype(out, x.shape, np.float32, what="apply_rope of one-hot vectors")
    for i in range(head_dim):
        partner = (i + head_dim // 2) % head_dim
        others = np.delete(out[0, i, 0], [i, partner])
        assert np.all(np.abs(others) < 1e-6), \
            "a dimension was rotated together with a dimension other than its rotate-half partner"
        assert abs(out[0, i, 0, partner]) > 1e-3, "a dimension did not turn with its rotate-half partner"


def test_rotation_direction(submission, reference):
    """Pair (x_i, x_{i+D/2}) = (1, 0) at position 1 goes to (cos a, sin a), counter-clockwise."""
    x = np.zeros((1, 1, 1, 8), dtype=np.float32)
    x[..., 0] = 1.0
    out = submission.apply_rope(x, np.array([[1]]), SLIDING, None)
    assert_shape_dtype(out, x.shape, np.float32, what="apply_rope of a unit vector")
    assert out[0, 0, 0, 4] > 0, "the pairs turn in the wrong direction"
    check_rope(submission, reference, x, np.array([[1]]), SLIDING, None, what="apply_rope of a unit vector")


def test_position_zero_is_identity(submission):
    for layer_type, head_dim in ((SLIDING, 16), (FULL, 32)):
        x = heads(50, 2, 4, 3, head_dim)
        out = submission.apply_rope(x, np.zeros((2, 4), dtype=np.int64), layer_type, None)
        assert_shape_dtype(out, x.shape, np.float32, what="apply_rope at position 0")
        assert_close(out, x, rtol=1e-6, atol=1e-6, what="apply_rope at position 0 should change nothing")


def test_positions_are_taken_as_given(submission, reference):
    """Offsets (a continued cache), left padding and gaps: the angle uses each token's own position."""
    x = heads(60, 3, 6, 2, 16)
    positions = np.array([[100, 101, 102, 103, 104, 105],
                          [0, 0, 0, 0, 1, 2],
                          [7, 3, 50, 2, 900, 11]])
    for layer_type, head_dim in ((SLIDING, 16), (FULL, 16)):
        check_rope(submission, reference, x, positions, layer_type, None,
                   what="apply_rope at positions that are not 0, 1, 2, ...")


def test_relative_positions(submission):
    """Scores between rotated queries and keys depend on the distance between positions only."""
    q, k = heads(70, 1, 1, 1, 32), heads(71, 1, 1, 1, 32)
    scores = []
    for shift in (0, 37, 200):
        rq = submission.apply_rope(q, np.array([[shift + 9]]), SLIDING, None)
        rk = submission.apply_rope(k, np.array([[shift + 2]]), SLIDING, None)
        assert_shape_dtype(rq, q.shape, np.float32, what="apply_rope of a query")
        assert_shape_dtype(rk, k.shape, np.float32, what="apply_rope of a key")
        scores.append(float(np.sum(rq.astype(np.float64) * rk)))
    assert np.allclose(scores, scores[0], rtol=0, atol=2e-3), \
        "a query-key score changes when both positions shift by the same amount"
    rotated = submission.apply_rope(q, np.array([[123]]), FULL, None)
    assert_shape_dtype(rotated, q.shape, np.float32, what="apply_rope of a query")
    assert np.isclose(np.linalg.norm(rotated), np.linalg.norm(q), rtol=1e-5), "apply_rope changes a vector's length"


def test_long_context_positions(submission, reference):
    """Positions up to max_position_embeddings - 1 = 131071."""
    for layer_type, head_dim in ((SLIDING, 32), (FULL, 64)):
        x = heads(80, 2, 8, 2, head_dim)
        positions = rng(81).integers(60_000, 131_072, size=(2, 8))
        positions[0, 0] = 131_071
        check_rope(submission, reference, x, positions, layer_type, None, what="apply_rope at long-context positions")


def test_float16_input(submission, reference):
    for layer_type, head_dim in ((SLIDING, 32), (FULL, 64)):
        x = heads(90, 2, 12, 2, head_dim, np.float16)
        positions = rng(91).integers(0, 8192, size=(2, 12))
        check_rope(submission, reference, x, positions, layer_type, None, what="apply_rope of float16 heads")
