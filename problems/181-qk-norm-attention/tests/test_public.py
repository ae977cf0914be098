"""Public tests of 181-qk-norm-attention: the statement's worked example, and small properties."""
from __future__ import annotations

import numpy as np

from runner.testing import assert_close, assert_shape_dtype, rng

EYE = np.eye(4, dtype=np.float32)
X = np.array([[[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, -1.0, 0.5], [2.0, -1.0, 0.0, 1.0]]], dtype=np.float32)
WEIGHTS = {
    "q_proj": EYE, "o_proj": EYE,
    "k_proj": np.array([[1, 1, 0, 0], [0, 0, 1, -1]], dtype=np.float32),
    "v_proj": np.array([[0, 1, 0, 1], [1, 0, -1, 0]], dtype=np.float32),
    "q_norm": np.array([1.0, 2.0], dtype=np.float32),
    "k_norm": np.array([1.0, 0.5], dtype=np.float32),
}
CONFIG = dict(num_attention_heads=2, num_key_value_heads=1, head_dim=2, global_head_dim=2,
              num_global_key_value_heads=1, attention_k_eq_v=False, sliding_window=2, rms_norm_eps=1e-6)


def test_worked_example_sliding(submission, problem):
    out = submission.gemma4_attention(X, WEIGHTS, "sliding_attention", CONFIG)
    want = np.array([[[-1.0, -1.0, -1.0, -1.0],
                      [-0.9399, -0.9507, -0.7449, -0.7909],
                      [0.5411, 1.1246, 0.5152, 1.1385]]], dtype=np.float32)
    assert_close(out, want, rtol=0, atol=6e-5, what="the worked example's sliding layer")


def test_worked_example_full(submission, problem):
    out = submission.gemma4_attention(X, WEIGHTS, "full_attention", CONFIG)
    want = np.array([[[-1.0, -1.0, -1.0, -1.0],
                      [-0.9399, -0.9507, -0.7449, -0.7909],
                      [0.4525, 1.0024, -0.9077, -0.8698]]], dtype=np.float32)
    assert_close(out, want, rtol=0, atol=6e-5, what="the worked example's full layer")


def test_first_token_output_is_its_own_normalised_value(submission):
    """The first token sees only itself: every head outputs rms(v_0), whatever q and k are."""
    gen = rng(5)
    x = gen.standard_normal((2, 4, 8), dtype=np.float32)
    weights = {
        "q_proj": gen.standard_normal((8, 8), dtype=np.float32),
        "k_proj": gen.standard_normal((4, 8), dtype=np.float32),
        "v_proj": gen.standard_normal((4, 8), dtype=np.float32),
        "o_proj": np.eye(8, dtype=np.float32),
        "q_norm": np.ones(4, dtype=np.float32), "k_norm": np.ones(4, dtype=np.float32),
    }
    config = dict(num_attention_heads=2, num_key_value_heads=1, head_dim=4, global_head_dim=4,
                  num_global_key_value_heads=None, attention_k_eq_v=False, sliding_window=3,
                  rms_norm_eps=1e-6)
    out = submission.gemma4_attention(x, weights, "sliding_attention", config)
    assert_shape_dtype(out, (2, 4, 8), np.float32, what="the attention output")
    v0 = x[:, 0] @ weights["v_proj"].T
    v0 = v0 / np.sqrt(np.mean(v0 ** 2, axis=-1, keepdims=True) + 1e-6)
    want = np.concatenate([v0, v0], axis=-1).astype(np.float32)
    assert_close(out[:, 0], want, rtol=1e-4, atol=1e-5, what="the first token's output")
