"""Problem 418 graded on a random model of the released model's shape (vocabulary 262,144, canvas
256, eos ids [1, 106, 50], the release's generation config; two small layers), built here and
saved to a temporary folder: `grader submit` of the reference with GRADER_DIFFUSIONGEMMA_PATH
pointing at it must earn full marks. The tests that need the tiny model's language are skipped
there, with their reason; the ones that run are those the real shape can show."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runner.handles import handle_limits
from runner.handles.diffusiongemma import (CPU_LIMITS_AT_REAL_SHAPE, REAL_CANVAS_LENGTH, REAL_EOS_IDS, REAL_VOCAB_SIZE,
                                           build_real_shape_model, bundled_checkpoint, cpu_limits, load_model, model_spec)
from runner.problems.catalogue import Catalogue
from runner.settings import overridden

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_shape(tmp_path_factory):
    return build_real_shape_model(tmp_path_factory.mktemp("real-shape") / "diffusiongemma-real-shape")


def test_real_shape_model_has_the_release_sizes_and_ids(real_shape):
    from transformers import DiffusionGemmaForBlockDiffusion

    assert model_spec(real_shape) == {"V": REAL_VOCAB_SIZE, "L": REAL_CANVAS_LENGTH, "eos": REAL_EOS_IDS, "pad": 0,
                                      "tiny": False}
    model = load_model(real_shape)
    assert type(model) is DiffusionGemmaForBlockDiffusion
    assert model.config.text_config.num_hidden_layers == 2
    g = model.generation_config
    assert (g.max_denoising_steps, g.t_max, g.t_min, g.sampler_config.entropy_bound) == (48, 0.8, 0.4, 0.1)
    assert sum(p.numel() for p in model.parameters()) < 20_000_000
    again = build_real_shape_model(real_shape.parent / "again")  # the same seed, the same weights
    assert (again / "model.safetensors").read_bytes() == (real_shape / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_reference_of_418_earns_full_marks_on_the_real_shape(real_shape, tmp_path):
    """The same path as `grader submit 418 solutions/418-full-inference/solution.py`. About 100 s
    on one idle core, most of it in decoder passes over a 262,144-id vocabulary: the slowest call
    (two canvases, pass log on) takes 35-50 s there, of which 14 s in torch.multinomial."""
    # No GRADER_LIMITS: the grader raises 418's limits (those of the tiny model) to what this
    # model needs on the CPU (cpu_limits, below), as it would for an operator.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADER_DIFFUSIONGEMMA_PATH": str(real_shape),
           "GRADER_DATA_DIR": str(tmp_path / "data")}
    for name in ("GRADER_DB_URL", "GRADER_LIMITS"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "runner.cli", "submit", "418",
                           str(ROOT / "solutions" / "418-full-inference" / "solution.py"), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    ran = [t for t in result["tests"] if t["status"] != "skipped"]
    skipped = [t for t in result["tests"] if t["status"] == "skipped"]
    assert [t for t in ran if t["status"] != "passed"] == []
    assert result["score"] == result["max_score"] > 0 and len(ran) >= 6
    assert skipped and all("tiny model" in t["message"] or "GPU" in t["message"] for t in skipped), skipped
    print(f"real shape: {result['duration_s']:.1f} s, worker peak memory {result['timing'].get('peak_memory_mb')} MB")


def test_limits_on_the_cpu_scale_with_a_canvas_of_logits(real_shape, tmp_path):
    """A model other than the tiny one, graded on the CPU, gets limits in proportion to
    vocab_size x canvas_length (those of the release's shape at 262,144 x 256); the tiny model
    keeps the problem's own, and the grader takes the larger of the two."""
    assert cpu_limits(bundled_checkpoint()) == {}
    assert cpu_limits(real_shape) == CPU_LIMITS_AT_REAL_SHAPE
    small = build_real_shape_model(tmp_path / "small", vocab_size=8192, canvas_length=64)
    assert cpu_limits(small) == {name: value / 128 for name, value in CPU_LIMITS_AT_REAL_SHAPE.items()}
    meta = Catalogue(ROOT).get("418").meta
    if meta.device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible: 418's model runs there, with the problem's own limits")
    with overridden(diffusiongemma_path=str(bundled_checkpoint())):
        assert handle_limits(meta) == {}
    with overridden(diffusiongemma_path=str(real_shape)):
        assert handle_limits(meta) == CPU_LIMITS_AT_REAL_SHAPE
    with overridden(diffusiongemma_path=str(small)):
        needs = handle_limits(meta)
    assert needs["time_s"] < meta.limits.time_s  # the grader keeps the problem's larger limit
