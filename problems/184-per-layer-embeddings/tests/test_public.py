"""Public tests of 184-per-layer-embeddings: the statement's example, and shapes on a larger case."""
import numpy as np

from runner.testing import assert_close, assert_shape_dtype, rng

CONFIG = {"hidden_size": 4, "num_hidden_layers": 2, "hidden_size_per_layer_input": 2,
          "rms_norm_eps": 1e-6, "pad_token_id": 0}
PARAMS = {
    "embed_tokens_per_layer": np.array([[0.0, 0.0, 0.0, 0.0],
                                        [0.25, -0.25, 0.5, 0.0],
                                        [0.0, 0.5, -0.5, 0.25]], dtype=np.float32),
    "per_layer_model_projection": np.eye(4, dtype=np.float32),
    "per_layer_projection_norm": np.array([1.0, 2.0], dtype=np.float32),
}
LAYER = {
    "per_layer_input_gate": np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=np.float32),
    "per_layer_projection": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]], dtype=np.float32),
    "post_per_layer_input_norm": np.ones(4, dtype=np.float32),
}
IDS = np.array([[1, 2]], dtype=np.int64)
EMBEDS = np.array([[[1.0, 1.0, 3.0, -1.0], [2.0, 0.0, 0.0, 2.0]]], dtype=np.float32)
EXAMPLE_PLE = np.array([[[[0.95710534, 1.16421068], [1.4486829, -0.63245529]],
                         [[0.99999899, 0.5], [-0.5, 2.24999809]]]], dtype=np.float32)


def test_example_per_layer_inputs(submission, problem):
    out = submission.per_layer_inputs(IDS, EMBEDS, PARAMS, CONFIG)
    assert_close(out, EXAMPLE_PLE, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="per_layer_inputs on the statement's example")


def test_example_multimodal_uses_the_pad_row(submission, problem):
    out = submission.per_layer_inputs(IDS, EMBEDS, PARAMS, CONFIG, multimodal_mask=np.array([[False, True]]))
    want = EXAMPLE_PLE.copy()
    want[0, 1] = [[1.0, 0.0], [0.0, 2.0]]
    assert_close(out, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="per_layer_inputs with a multimodal position")


def test_example_gate(submission, problem):
    out = submission.apply_per_layer_gate(EMBEDS, EXAMPLE_PLE[:, :, 0], LAYER, CONFIG)
    want = np.array([[[1.28803837, 2.24802065, 4.5360589, -1.0],
                      [3.41421318, 0.0, 1.41421318, 2.0]]], dtype=np.float32)
    assert_close(out, want, rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="apply_per_layer_gate on the statement's example")


def test_shapes_and_dtypes(submission):
    g = rng(0)
    b, s, h, n_layers, p, vocab = 2, 3, 16, 3, 4, 10
    config = {"hidden_size": h, "num_hidden_layers": n_layers, "hidden_size_per_layer_input": p,
              "rms_norm_eps": 1e-6, "pad_token_id": 0}
    params = {"embed_tokens_per_layer": g.standard_normal((vocab, n_layers * p), dtype=np.float32),
              "per_layer_model_projection": g.standard_normal((n_layers * p, h), dtype=np.float32),
              "per_layer_projection_norm": g.uniform(0.5, 2.0, p).astype(np.float32)}
    ids = g.integers(0, vocab, (b, s))
    embeds = g.standard_normal((b, s, h), dtype=np.float32)
    ple = submission.per_layer_inputs(ids, embeds, params, config)
    assert_shape_dtype(ple, (b, s, n_layers, p), np.float32, what="per_layer_inputs")
    layer = {"per_layer_input_gate": g.standard_normal((p, h), dtype=np.float32),
             "per_layer_projection": g.standard_normal((h, p), dtype=np.float32),
             "post_per_layer_input_norm": g.uniform(0.5, 2.0, h).astype(np.float32)}
    out = submission.apply_per_layer_gate(embeds, ple[:, :, 1], layer, config)
    assert_shape_dtype(out, (b, s, h), np.float32, what="apply_per_layer_gate")
