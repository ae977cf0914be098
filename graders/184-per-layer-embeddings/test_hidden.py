"""Hidden tests of 184-per-layer-embeddings (per-layer inputs and the per-layer gate)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from runner.testing import assert_close, assert_shape_dtype, rng

RTOL = ATOL = 1e-5


# ----------------------------------------------------------------------------------------------
# helpers: random weights as a trained model would have them (norm weights far from 1, a pad row
# that is not zero), drawn in the grader

def make_config(hidden: int, layers: int, per_layer: int, eps: float = 1e-6, pad: int = 0) -> dict:
    return {"hidden_size": hidden, "num_hidden_layers": layers, "hidden_size_per_layer_input": per_layer,
            "rms_norm_eps": eps, "pad_token_id": pad}


def make_params(seed: int, vocab: int, config: dict) -> dict:
    g = rng(seed)
    h, n, p = config["hidden_size"], config["num_hidden_layers"], config["hidden_size_per_layer_input"]
    return {
        "embed_tokens_per_layer": (0.3 * g.standard_normal((vocab, n * p))).astype(np.float32),
        "per_layer_model_projection": (0.5 * g.standard_normal((n * p, h))).astype(np.float32),
        "per_layer_projection_norm": g.uniform(0.3, 2.0, p).astype(np.float32),
    }


def make_layer(seed: int, config: dict) -> dict:
    g = rng(seed)
    h, p = config["hidden_size"], config["hidden_size_per_layer_input"]
    return {
        "per_layer_input_gate": (g.standard_normal((p, h)) / math.sqrt(h)).astype(np.float32),
        "per_layer_projection": (g.standard_normal((h, p)) / math.sqrt(p)).astype(np.float32),
        "post_per_layer_input_norm": g.uniform(0.3, 2.0, h).astype(np.float32),
    }


def make_inputs(seed: int, batch: int, seq: int, vocab: int, config: dict, scale: float = 1.0):
    g = rng(seed)
    ids = g.integers(0, vocab, (batch, seq)).astype(np.int64)
    ids[0, 0] = config["pad_token_id"]
    embeds = (scale * g.standard_normal((batch, seq, config["hidden_size"]))).astype(np.float32)
    return ids, embeds


def rms_norm64(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * w.astype(np.float64)


PLE_CASES = [  # (seed, batch, seq, hidden, layers, per_layer, vocab, eps, pad)
    (1, 2, 5, 32, 3, 8, 40, 1e-6, 0),
    (2, 3, 4, 24, 5, 4, 17, 1e-6, 3),
    (3, 1, 9, 16, 2, 12, 64, 1e-5, 0),
    (4, 2, 3, 40, 4, 6, 11, 1e-6, 10),
]


def ple_case(case):
    seed, batch, seq, hidden, layers, per_layer, vocab, eps, pad = case
    config = make_config(hidden, layers, per_layer, eps, pad)
    params = make_params(seed, vocab, config)
    ids, embeds = make_inputs(seed + 50, batch, seq, vocab, config)
    return ids, embeds, params, config


# ----------------------------------------------------------------------------------------------
# per_layer_inputs

def test_ple_shape_and_dtype(submission):
    for case in PLE_CASES:
        ids, embeds, params, config = ple_case(case)
        out = submission.per_layer_inputs(ids, embeds, params, config)
        b, s = ids.shape
        assert_shape_dtype(out, (b, s, config["num_hidden_layers"], config["hidden_size_per_layer_input"]),
                           np.float32, what="per_layer_inputs")


@pytest.mark.points(2)
def test_ple_matches_reference_on_random_inputs(submission, reference):
    for case in PLE_CASES:
        ids, embeds, params, config = ple_case(case)
        got = submission.per_layer_inputs(ids, embeds, params, config)
        want = reference.per_layer_inputs(ids, embeds, params, config)
        assert_close(got, want, rtol=RTOL, atol=ATOL, what="per_layer_inputs on random weights")


def test_ple_token_identity_part(submission):
    """With a zero projection the context part is zero; what is left is the scaled table row."""
    for case in PLE_CASES[:3]:
        ids, embeds, params, config = ple_case(case)
        params = dict(params, per_layer_model_projection=np.zeros_like(params["per_layer_model_projection"]))
        n, p = config["num_hidden_layers"], config["hidden_size_per_layer_input"]
        got = submission.per_layer_inputs(ids, embeds, params, config)
        assert_shape_dtype(got, ids.shape + (n, p), np.float32, what="per_layer_inputs")
        rows = params["embed_tokens_per_layer"].astype(np.float64)[ids]              # (B, S, n * p)
        chunks = np.stack([rows[..., l * p:(l + 1) * p] for l in range(n)], axis=-2)  # (B, S, n, p)
        # layout first: each layer's output must be proportional to that layer's chunk of the row
        scale = float((got * chunks).sum() / (chunks * chunks).sum())
        proportional = np.allclose(got, scale * chunks, rtol=1e-4, atol=1e-4)
        assert proportional, ("with no context part, layer l's per-layer input is not the l-th chunk "
                              "of P columns of the token's table row")
        want = (chunks * math.sqrt(p) / math.sqrt(2.0)).astype(np.float32)
        assert_close(got, want, rtol=RTOL, atol=ATOL,
                     what="the token-identity part (table row, its scale, and the combination scale)")


def test_ple_context_part(submission):
    """With a zero table the identity part is zero; what is left is each layer's normalized chunk
    of the projection, over sqrt(2)."""
    for case in PLE_CASES:
        ids, embeds, params, config = ple_case(case)
        params = dict(params, embed_tokens_per_layer=np.zeros_like(params["embed_tokens_per_layer"]))
        h, n, p = config["hidden_size"], config["num_hidden_layers"], config["hidden_size_per_layer_input"]
        got = submission.per_layer_inputs(ids, embeds, params, config)
        assert_shape_dtype(got, ids.shape + (n, p), np.float32, what="per_layer_inputs")
        proj = embeds.astype(np.float64) @ params["per_layer_model_projection"].astype(np.float64).T
        proj = proj.reshape(ids.shape + (n, p)) / math.sqrt(h)
        want = rms_norm64(proj, params["per_layer_projection_norm"], config["rms_norm_eps"]) / math.sqrt(2.0)
        assert_close(got, want.astype(np.float32), rtol=RTOL, atol=ATOL,
                     what="the context part (projection, per-layer RMSNorm with its weight, combination scale)")


def test_ple_small_embeddings_where_eps_matters(submission, reference):
    """Inputs so small that the projection's mean square is below eps: the 1/sqrt(H) scale and
    where eps enters the norm decide the result."""
    for seed, eps in [(7, 1e-6), (8, 1e-4), (9, 1e-2)]:
        config = make_config(32, 3, 8, eps)
        params = make_params(seed, 20, config)
        ids, embeds = make_inputs(seed, 2, 6, 20, config, scale=1e-3)
        got = submission.per_layer_inputs(ids, embeds, params, config)
        want = reference.per_layer_inputs(ids, embeds, params, config)
        assert_close(got, want, rtol=RTOL, atol=ATOL,
                     what="per_layer_inputs on tiny input embeddings (the context scale and eps matter)")


def test_ple_eps_comes_from_the_config(submission, reference):
    config = make_config(16, 2, 8, 0.5)
    params = make_params(12, 9, config)
    ids, embeds = make_inputs(13, 2, 4, 9, config, scale=0.5)
    got = submission.per_layer_inputs(ids, embeds, params, config)
    want = reference.per_layer_inputs(ids, embeds, params, config)
    assert_close(got, want, rtol=RTOL, atol=ATOL, what="per_layer_inputs with a large rms_norm_eps")


def multimodal_case(seed: int, placeholder: int):
    config = make_config(24, 3, 8, 1e-6, pad=2)
    params = make_params(seed, 30, config)
    ids, embeds = make_inputs(seed + 1, 3, 8, 30, config)
    mask = np.zeros(ids.shape, dtype=bool)
    mask[0, 2:5] = True
    mask[1, 0:3] = True
    mask[1, 6:8] = True
    ids[mask] = placeholder
    return ids, embeds, params, config, mask


def test_ple_multimodal_placeholders_outside_the_table(submission, reference):
    """Image soft tokens carry a placeholder id beyond the table; the lookup uses the pad id."""
    ids, embeds, params, config, mask = multimodal_case(20, placeholder=300)
    got = submission.per_layer_inputs(ids, embeds, params, config, multimodal_mask=mask)
    want = reference.per_layer_inputs(ids, embeds, params, config, multimodal_mask=mask)
    assert_close(got, want, rtol=RTOL, atol=ATOL, what="per_layer_inputs with image positions")


def test_ple_multimodal_positions_use_the_pad_row(submission, reference):
    """A placeholder id inside the table: its own row must still not be used at image positions,
    the pad token's row (not zeros) is; the context part still reads the merged embeddings."""
    ids, embeds, params, config, mask = multimodal_case(21, placeholder=5)
    got = submission.per_layer_inputs(ids, embeds, params, config, multimodal_mask=mask)
    want = reference.per_layer_inputs(ids, embeds, params, config, multimodal_mask=mask)
    assert_shape_dtype(got, want.shape, np.float32, what="per_layer_inputs with image positions")
    assert_close(got[~mask], want[~mask], rtol=RTOL, atol=ATOL,
                 what="per_layer_inputs at the text positions of a multimodal batch")
    assert_close(got[mask], want[mask], rtol=RTOL, atol=ATOL,
                 what="per_layer_inputs at image positions (the pad token's row, the merged embeddings)")


def test_ple_all_false_mask_is_text_only(submission, reference):
    ids, embeds, params, config = ple_case(PLE_CASES[0])
    got = submission.per_layer_inputs(ids, embeds, params, config, multimodal_mask=np.zeros(ids.shape, bool))
    want = reference.per_layer_inputs(ids, embeds, params, config)
    assert_close(got, want, rtol=RTOL, atol=ATOL, what="per_layer_inputs with an all-False multimodal mask")


# ----------------------------------------------------------------------------------------------
# apply_per_layer_gate

GATE_CASES = [  # (seed, batch, seq, hidden, per_layer, eps)
    (31, 2, 5, 32, 8, 1e-6),
    (32, 3, 4, 24, 4, 1e-6),
    (33, 1, 7, 16, 12, 1e-5),
]


def gate_case(case, hidden_scale: float = 2.0, ple_scale: float = 1.0):
    seed, batch, seq, hidden, per_layer, eps = case
    config = make_config(hidden, 3, per_layer, eps)
    layer = make_layer(seed, config)
    g = rng(seed + 100)
    hidden_states = (hidden_scale * g.standard_normal((batch, seq, hidden))).astype(np.float32)
    ple = (ple_scale * g.standard_normal((batch, seq, per_layer))).astype(np.float32)
    return hidden_states, ple, layer, config


def test_gate_shape_and_dtype(submission):
    for case in GATE_CASES:
        hidden_states, ple, layer, config = gate_case(case)
        out = submission.apply_per_layer_gate(hidden_states, ple, layer, config)
        assert_shape_dtype(out, hidden_states.shape, np.float32, what="apply_per_layer_gate")


@pytest.mark.points(2)
def test_gate_matches_reference_on_random_inputs(submission, reference):
    for case in GATE_CASES:
        hidden_states, ple, layer, config = gate_case(case)
        got = submission.apply_per_layer_gate(hidden_states, ple, layer, config)
        want = reference.apply_per_layer_gate(hidden_states, ple, layer, config)
        assert_close(got, want, rtol=RTOL, atol=ATOL, what="apply_per_layer_gate on random weights")


def test_gate_zero_per_layer_input_leaves_the_stream(submission):
    """A zero per-layer input zeroes the gated product, so the branch is zero and only the
    residual remains."""
    hidden_states, ple, layer, config = gate_case(GATE_CASES[0])
    out = submission.apply_per_layer_gate(hidden_states, np.zeros_like(ple), layer, config)
    assert_shape_dtype(out, hidden_states.shape, np.float32, what="apply_per_layer_gate")
    assert_close(out, hidden_states, rtol=RTOL, atol=ATOL,
                 what="apply_per_layer_gate with a zero per-layer input (the residual stream)")


def test_gate_branch_is_rms_normalized(submission):
    """What the block adds, divided by the norm weight, has a mean square of 1 at every position."""
    for case in GATE_CASES:
        hidden_states, ple, layer, config = gate_case(case)
        out = submission.apply_per_layer_gate(hidden_states, ple, layer, config)
        assert_shape_dtype(out, hidden_states.shape, np.float32, what="apply_per_layer_gate")
        added = (out.astype(np.float64) - hidden_states) / layer["post_per_layer_input_norm"].astype(np.float64)
        mean_square = (added ** 2).mean(-1)
        assert np.allclose(mean_square, 1.0, rtol=1e-3, atol=1e-3), \
            "what the gate adds to the residual stream is not RMS-normalized with its weight"


def test_gate_activation_is_tanh_gelu(submission):
    """The gate's pre-activations sit where tanh-GELU and erf-GELU differ most; the expected value
    is computed here from the formula in the statement."""
    seed, batch, seq, hidden, per_layer, eps = 41, 2, 6, 16, 8, 1e-6
    config = make_config(hidden, 2, per_layer, eps)
    layer = make_layer(seed, config)
    layer["per_layer_input_gate"] = np.eye(per_layer, hidden, dtype=np.float32)
    g = rng(seed)
    hidden_states = g.uniform(-3.0, 3.0, (batch, seq, hidden)).astype(np.float32)
    ple = g.uniform(0.5, 1.5, (batch, seq, per_layer)).astype(np.float32)
    out = submission.apply_per_layer_gate(hidden_states, ple, layer, config)
    assert_shape_dtype(out, hidden_states.shape, np.float32, what="apply_per_layer_gate")
    z = hidden_states[..., :per_layer].astype(np.float64)
    act = 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))
    up = (act * ple) @ layer["per_layer_projection"].astype(np.float64).T
    want = hidden_states + rms_norm64(up, layer["post_per_layer_input_norm"], eps)
    assert_close(out, want.astype(np.float32), rtol=RTOL, atol=ATOL,
                 what="apply_per_layer_gate (check the activation and the order gate, activation, multiply)")


def test_gate_small_branch_where_eps_matters(submission, reference):
    """A tiny per-layer input: the branch's mean square is near eps, which must sit inside the
    square root and come from the config."""
    for eps in (1e-6, 1e-3):
        case = (51, 2, 4, 24, 8, eps)
        hidden_states, ple, layer, config = gate_case(case, ple_scale=1e-3)
        got = submission.apply_per_layer_gate(hidden_states, ple, layer, config)
        want = reference.apply_per_layer_gate(hidden_states, ple, layer, config)
        assert_close(got, want, rtol=RTOL, atol=ATOL,
                     what="apply_per_layer_gate with a small per-layer input (eps matters)")
