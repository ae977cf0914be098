"""Hidden tests of 181-qk-norm-attention (one Gemma 4 self-attention layer, no RoPE)."""
from __future__ import annotations

import numpy as np
import pytest

from runner.testing import assert_close, assert_shape_dtype, rng

SLIDING, FULL = "sliding_attention", "full_attention"


# ----------------------------------------------------------------------------------------------
# helpers

def make_config(heads=4, kv_heads=2, head_dim=8, global_head_dim=16, global_kv_heads=1,
                k_eq_v=True, window=4, eps=1e-6) -> dict:
    return dict(num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
                global_head_dim=global_head_dim, num_global_key_value_heads=global_kv_heads,
                attention_k_eq_v=k_eq_v, sliding_window=window, rms_norm_eps=eps)


def layer_dims(config: dict, layer_type: str) -> tuple[int, int, bool]:
    """(d, K, k_eq_v) from the statement's rule, written out here independently."""
    if layer_type == SLIDING:
        return config["head_dim"], config["num_key_value_heads"], False
    if config["attention_k_eq_v"]:
        kv = config["num_global_key_value_heads"]
        return config["global_head_dim"], kv if kv is not None else config["num_key_value_heads"], True
    return config["global_head_dim"], config["num_key_value_heads"], False


def make_weights(seed: int, config: dict, layer_type: str, hidden: int, unit_scales=False) -> dict:
    gen = rng(seed)
    d, kv, k_eq_v = layer_dims(config, layer_type)
    h = config["num_attention_heads"]

    def proj(rows, cols):
        return (gen.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    weights = {
        "q_proj": proj(h * d, hidden),
        "k_proj": proj(kv * d, hidden),
        "v_proj": None if k_eq_v else proj(kv * d, hidden),
        "o_proj": proj(hidden, h * d),
        "q_norm": gen.uniform(0.3, 1.8, d).astype(np.float32),
        "k_norm": gen.uniform(0.3, 1.8, d).astype(np.float32),
    }
    if unit_scales:
        weights["q_norm"] = np.ones(d, dtype=np.float32)
        weights["k_norm"] = np.ones(d, dtype=np.float32)
    return weights


def hidden_states(seed: int, batch: int, seq_len: int, hidden: int, scale: float = 1.0) -> np.ndarray:
    return (scale * rng(seed).standard_normal((batch, seq_len, hidden))).astype(np.float32)


def run(submission, x, weights, layer_type, config):
    out = submission.gemma4_attention(x, weights, layer_type, config)
    assert_shape_dtype(out, x.shape, np.float32, what="the attention output")
    return out


def check_against_reference(submission, reference, problem, x, weights, layer_type, config, what):
    got = run(submission, x, weights, layer_type, config)
    want = reference.gemma4_attention(x, weights, layer_type, config)
    assert_close(got, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol, what=what)
    return got


# ----------------------------------------------------------------------------------------------
# shape and dtype

def test_output_shape_and_dtype(submission):
    config = make_config()
    for layer_type in (SLIDING, FULL):
        x = hidden_states(1, 2, 5, 12)            # D = 12 differs from H*d (32 and 64)
        weights = make_weights(2, config, layer_type, 12)
        out = submission.gemma4_attention(x, weights, layer_type, config)
        assert_shape_dtype(out, (2, 5, 12), np.float32, what="the attention output")
        assert bool(np.isfinite(out).all()), "the output has NaN or infinite entries"


# ----------------------------------------------------------------------------------------------
# whole layers against the reference

SLIDING_CASES = [  # (seed, batch, seq_len, hidden, config)
    (10, 2, 9, 16, make_config(window=4)),
    (11, 1, 12, 24, make_config(heads=6, kv_heads=3, window=3)),
    (12, 3, 7, 16, make_config(heads=4, kv_heads=1, head_dim=4, window=2)),
    (13, 2, 10, 20, make_config(heads=2, kv_heads=2, head_dim=16, window=6)),
]


@pytest.mark.points(2)
def test_sliding_layers(submission, reference, problem):
    for seed, batch, seq_len, hidden, config in SLIDING_CASES:
        x = hidden_states(seed, batch, seq_len, hidden)
        weights = make_weights(seed + 100, config, SLIDING, hidden)
        check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                                "a sliding layer's output")


@pytest.mark.points(2)
def test_full_layers_with_shared_keys_and_values(submission, reference, problem):
    """attention_k_eq_v: wider global head, fewer global key/value heads, no v_proj."""
    for seed, batch, seq_len, hidden, config in [
        (20, 2, 9, 16, make_config(window=3)),
        (21, 1, 11, 24, make_config(heads=6, kv_heads=3, global_kv_heads=2, global_head_dim=12)),
        (22, 2, 6, 16, make_config(heads=4, kv_heads=2, global_kv_heads=4, global_head_dim=8)),
    ]:
        x = hidden_states(seed, batch, seq_len, hidden)
        weights = make_weights(seed + 100, config, FULL, hidden)
        assert weights["v_proj"] is None
        check_against_reference(submission, reference, problem, x, weights, FULL, config,
                                "a full layer's output when keys double as values")


def test_full_layer_k_eq_v_without_a_global_kv_count(submission, reference, problem):
    """attention_k_eq_v with num_global_key_value_heads None: K falls back to num_key_value_heads."""
    config = make_config(heads=4, kv_heads=2, global_kv_heads=None, global_head_dim=12)
    x = hidden_states(25, 2, 8, 16)
    weights = make_weights(125, config, FULL, 16)
    check_against_reference(submission, reference, problem, x, weights, FULL, config,
                            "a full layer's output when num_global_key_value_heads is None")


def test_full_layer_with_its_own_value_projection(submission, reference, problem):
    """attention_k_eq_v false: the global head size still applies, but the key/value head count is
    num_key_value_heads (num_global_key_value_heads is ignored) and v_proj is given."""
    config = make_config(heads=4, kv_heads=2, global_kv_heads=1, global_head_dim=12, k_eq_v=False)
    x = hidden_states(26, 2, 8, 16)
    weights = make_weights(126, config, FULL, 16)
    assert weights["v_proj"] is not None
    check_against_reference(submission, reference, problem, x, weights, FULL, config,
                            "a full layer's output without attention_k_eq_v")


def test_sliding_layer_of_a_k_eq_v_model_keeps_its_value_projection(submission, reference, problem):
    config = make_config(k_eq_v=True, window=3)
    x = hidden_states(27, 2, 8, 16)
    weights = make_weights(127, config, SLIDING, 16)
    assert weights["v_proj"] is not None
    check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                            "a sliding layer's output in a model with attention_k_eq_v")


# ----------------------------------------------------------------------------------------------
# the parts one at a time

def test_values_are_normalised_without_a_scale(submission, problem):
    """With q_proj = 0 every score is 0, so each query averages the normalised values of the keys
    it sees: the output isolates the value norm (and the mask) from the scores."""
    config = make_config(heads=2, kv_heads=1, head_dim=4, window=3)
    hidden = 8
    x = hidden_states(30, 2, 6, hidden)
    weights = make_weights(130, config, SLIDING, hidden)
    weights["q_proj"] = np.zeros_like(weights["q_proj"])
    weights["o_proj"] = np.eye(hidden, dtype=np.float32)
    out = run(submission, x, weights, SLIDING, config)
    v = x @ weights["v_proj"].T
    v = v / np.sqrt(np.mean(v.astype(np.float64) ** 2, axis=-1, keepdims=True) + 1e-6)
    want = np.zeros((2, 6, 4))
    for i in range(6):
        want[:, i] = v[:, max(0, i - 2):i + 1].mean(axis=1)
    want = np.concatenate([want, want], axis=-1).astype(np.float32)
    assert_close(out, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="the output when all scores are equal (values through their norm only)")


def test_keys_as_values_take_the_plain_norm(submission, problem):
    """Full layer with attention_k_eq_v and q_proj = 0: the output averages rms(raw keys), with no
    k_norm scale on them."""
    config = make_config(heads=2, kv_heads=2, global_kv_heads=1, global_head_dim=4)
    hidden = 8
    x = hidden_states(31, 2, 5, hidden)
    weights = make_weights(131, config, FULL, hidden)
    weights["q_proj"] = np.zeros_like(weights["q_proj"])
    weights["o_proj"] = np.eye(hidden, dtype=np.float32)
    out = run(submission, x, weights, FULL, config)
    v = (x @ weights["k_proj"].T).astype(np.float64)
    v = v / np.sqrt(np.mean(v ** 2, axis=-1, keepdims=True) + 1e-6)
    want = np.cumsum(v, axis=1) / np.arange(1, 6)[None, :, None]
    want = np.concatenate([want, want], axis=-1).astype(np.float32)
    assert_close(out, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="the output when keys double as values and all scores are equal")


def test_learned_norm_scales(submission, reference, problem):
    """Unit q_norm/k_norm scales must match first; then scales away from 1."""
    config = make_config(heads=4, kv_heads=2, window=5)
    x = hidden_states(32, 2, 8, 16)
    unit = make_weights(132, config, SLIDING, 16, unit_scales=True)
    check_against_reference(submission, reference, problem, x, unit, SLIDING, config,
                            "the output with unit norm scales")
    scaled = make_weights(132, config, SLIDING, 16)
    check_against_reference(submission, reference, problem, x, scaled, SLIDING, config,
                            "the output with learned q_norm/k_norm scales (unit scales were right)")


def test_score_scale_is_one(submission, reference, problem):
    """One head, wide enough that a 1/sqrt(d) factor changes the softmax a lot."""
    config = make_config(heads=1, kv_heads=1, head_dim=32, window=8)
    x = hidden_states(33, 1, 8, 16)
    weights = make_weights(133, config, SLIDING, 16, unit_scales=True)
    check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                            "the attention output of a single wide head (check the softmax scale)")


def test_small_activations(submission, reference, problem):
    """Activations so small that mean(x^2) is near eps: where eps enters the norm matters."""
    config = make_config(heads=2, kv_heads=1, head_dim=8, window=4, eps=1e-6)
    x = hidden_states(34, 2, 7, 16, scale=1e-3)
    weights = make_weights(134, config, SLIDING, 16)
    check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                            "the output for very small activations")
    config = make_config(heads=2, kv_heads=1, head_dim=8, window=4, eps=1e-2)
    x = hidden_states(35, 2, 7, 16)
    weights = make_weights(135, config, SLIDING, 16)
    check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                            "the output with a large rms_norm_eps")


def test_grouped_query_heads(submission, reference, problem):
    """Query head h reads key/value head h // (H // K): 8 query heads over 2 key/value heads."""
    config = make_config(heads=8, kv_heads=2, head_dim=4, window=6)
    x = hidden_states(36, 2, 6, 16)
    weights = make_weights(136, config, SLIDING, 16)
    check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                            "the output of 8 query heads sharing 2 key/value heads")


def test_large_scores_do_not_overflow(submission, reference, problem):
    """Norm scales of 4 on a 16-wide head: scores reach the hundreds, past float32's exp range."""
    config = make_config(heads=2, kv_heads=1, head_dim=16, window=5)
    x = hidden_states(37, 2, 8, 16)
    weights = make_weights(137, config, SLIDING, 16)
    weights["q_norm"] = np.full(16, 4.0, dtype=np.float32)
    weights["k_norm"] = np.full(16, 4.0, dtype=np.float32)
    weights["k_proj"] = weights["q_proj"][:16].copy()     # keys aligned with queries: large scores
    out = run(submission, x, weights, SLIDING, config)
    assert bool(np.isfinite(out).all()), "large attention scores make the output NaN or infinite"
    assert_close(out, reference.gemma4_attention(x, weights, SLIDING, config), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="the output when the attention scores are large")


# ----------------------------------------------------------------------------------------------
# masks, as properties of the output

def perturbed(x: np.ndarray, positions, seed: int) -> np.ndarray:
    y = x.copy()
    y[:, positions] = rng(seed).standard_normal(y[:, positions].shape).astype(np.float32)
    return y


def test_causal(submission):
    """No output changes when only later tokens change, on either layer type."""
    config = make_config(window=3)
    x = hidden_states(40, 2, 9, 16)
    for layer_type in (SLIDING, FULL):
        weights = make_weights(140, config, layer_type, 16)
        base = run(submission, x, weights, layer_type, config)
        later = run(submission, perturbed(x, slice(5, 9), 240), weights, layer_type, config)
        assert np.allclose(base[:, :5], later[:, :5], rtol=1e-5, atol=1e-6), \
            "an output depends on a later token (the mask is not causal)"


@pytest.mark.points(2)
def test_sliding_window_reach(submission):
    """On a sliding layer with window W, query i sees keys i-W+1 .. i: it changes when token
    i-W+1 changes and does not change when any earlier token does."""
    seq_len = 10
    for window in (1, 2, 3, 5):
        config = make_config(window=window)
        x = hidden_states(41 + window, 2, seq_len, 16)
        weights = make_weights(141 + window, config, SLIDING, 16)
        base = run(submission, x, weights, SLIDING, config)
        last = seq_len - 1
        oldest = last - window + 1
        if oldest > 0:
            before = run(submission, perturbed(x, slice(0, oldest), 300 + window), weights, SLIDING, config)
            assert np.allclose(base[:, last], before[:, last], rtol=1e-5, atol=1e-6), \
                "a sliding layer's query sees a token outside its window"
        edge = run(submission, perturbed(x, [oldest], 400 + window), weights, SLIDING, config)
        assert not np.allclose(base[:, last], edge[:, last], rtol=1e-4, atol=1e-4), \
            "a sliding layer's query does not see the oldest token of its window"


def test_full_layer_sees_the_whole_past(submission):
    """A full layer has no window: the last query depends on the first token, even when the
    sequence is much longer than sliding_window."""
    config = make_config(window=2)
    x = hidden_states(50, 2, 10, 16)
    for k_eq_v in (True, False):
        config["attention_k_eq_v"] = k_eq_v
        weights = make_weights(150, config, FULL, 16)
        base = run(submission, x, weights, FULL, config)
        first = run(submission, perturbed(x, [0], 250), weights, FULL, config)
        assert not np.allclose(base[:, -1], first[:, -1], rtol=1e-4, atol=1e-4), \
            "a full layer's last query does not see the first token"


def test_window_longer_than_the_sequence(submission, reference, problem):
    """W >= S: a sliding layer sees the whole causal past, like a full layer of the same shape."""
    config = make_config(heads=4, kv_heads=2, head_dim=8, global_head_dim=8, k_eq_v=False, window=7)
    x = hidden_states(51, 2, 7, 16)
    weights = make_weights(151, config, SLIDING, 16)
    sliding = check_against_reference(submission, reference, problem, x, weights, SLIDING, config,
                                      "a sliding layer whose window covers the sequence")
    full = run(submission, x, weights, FULL, config)
    assert_close(full, sliding, rtol=1e-5, atol=1e-6,
                 what="a full layer against a sliding layer whose window covers the sequence")
