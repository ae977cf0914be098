"""The capstone's pieces outside the problem folders: the bundled tiny checkpoint, the model
loader and its pass log, the handles of problem 418, the training script and the benchmark."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from runner.modules import import_file
from runner.problems.catalogue import Catalogue
from runner.handles.diffusiongemma import (BUNDLED_NAME, CANVAS_LENGTH, EOS, PAD, bundled_checkpoint, copy_example, count_example,
                          left_pad, load_model)
from tests.support.helpers import write

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str):
    return import_file(ROOT / "scripts" / f"{name}.py", name)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_model()


def test_checkpoint_is_the_real_class_and_small(model):
    from transformers import DiffusionGemmaForBlockDiffusion

    folder = bundled_checkpoint()
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors"} <= files
    assert sum(p.stat().st_size for p in folder.iterdir()) < 5_000_000
    assert all(p.stat().st_mode & 0o004 for p in folder.iterdir()), "the sandbox user must be able to read them"
    assert type(model) is DiffusionGemmaForBlockDiffusion and not model.training
    assert model.config.canvas_length == CANVAS_LENGTH
    assert model.generation_config.eos_token_id == EOS and model.generation_config.pad_token_id == PAD
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    info = json.loads((folder / "training.json").read_text())
    assert info["final_loss"] < 0.5


def test_the_model_has_learned_the_language(model):
    """Random prompts of the training distribution (fixed seed), answered by transformers' sampler."""
    train = load_script("train_tiny_model")
    rng = __import__("random").Random(7)
    right = total = 0
    for batch in range(3):
        examples = [train.random_example(rng) for _ in range(8)]
        ids, mask = left_pad([p for p, _ in examples])
        torch.manual_seed(batch)
        out = model.generate(ids, attention_mask=mask, max_new_tokens=2 * CANVAS_LENGTH)
        for row, (_, answer) in enumerate(examples):
            right += out.sequences[row, ids.shape[1]:ids.shape[1] + len(answer)].tolist() == answer
            total += 1
        assert float(out.tokens_per_forward.mean()) > 2.0, "confident canvases should commit several tokens a pass"
    assert right >= 0.9 * total, f"{right} of {total} answers right"


def test_pass_log_is_off_until_turned_on_and_counts_transformers_generate(model):
    ids = torch.tensor([count_example(0, 12)[0]])
    torch.manual_seed(1)
    model.generate(ids, max_new_tokens=24)
    assert model.grader_take_log()["decoder"] == [], "the pass log records nothing unless the grader turns it on"
    model.grader_log_passes(True)
    torch.manual_seed(1)
    out = model.generate(ids, max_new_tokens=24)
    log = model.grader_take_log()
    model.grader_log_passes(False)
    n_canvases = (out.sequences.shape[1] - ids.shape[1]) // CANVAS_LENGTH
    assert log["encoder_tokens"] == [ids.shape[1]] + [CANVAS_LENGTH] * (n_canvases - 1)
    generated = int((out.sequences[0, ids.shape[1]:] != PAD).sum())
    assert generated / len(log["decoder"]) == pytest.approx(float(out.tokens_per_forward[0]))
    first = [d for d in log["decoder"] if d["after_encoder"] == 1]
    assert first[0]["sc"] is None and all(d["sc"] is not None for d in first[1:])
    assert [d["step"] for d in first] == list(range(len(first)))
    assert first[0]["logits"].shape == (1, CANVAS_LENGTH, model.config.text_config.vocab_size)
    assert not log["overflow"] and log["dropped"] == 0
    assert model.grader_take_log()["decoder"] == []


def decoder_passes(model, steps: int):
    """The processed logits of `steps` decoder passes of one canvas, each self-conditioned on the
    previous pass's logits / T, at the temperatures of the schedule (steps, 0.8, 0.4)."""
    from transformers import DynamicCache

    ids, mask = left_pad([copy_example([3, 1, 4])[0], count_example(2, 9)[0]])
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    n = ids.shape[1]
    model.model.encoder(input_ids=ids, attention_mask=mask, past_key_values=cache, position_ids=torch.arange(n)[None])
    canvas = torch.randint(0, model.config.text_config.vocab_size, (2, CANVAS_LENGTH),
                           generator=torch.Generator().manual_seed(3))
    sc, out = None, []
    for step in range(steps):
        logits = model(decoder_input_ids=canvas, past_key_values=cache, self_conditioning_logits=sc,
                       decoder_attention_mask=torch.nn.functional.pad(mask, (0, CANVAS_LENGTH), value=True),
                       decoder_position_ids=torch.arange(n, n + CANVAS_LENGTH)[None]).logits
        sc = logits / (0.4 + 0.4 * (steps - step) / steps)
        out.append((canvas.clone(), sc))
        canvas = sc.argmax(-1)
    return out


@torch.no_grad()
def test_pass_log_summarises_each_pass_at_its_temperature(model):
    """Per pass: the canvas in, the columns `cols` of the self-conditioning logits in and of the
    logits out, and the entropy, argmax and top probability of softmax(logits / T) at that pass's
    step of the schedule the grader gave."""
    model.grader_log_passes(True, budget_bytes=1 << 20, max_denoising_steps=3, t_max=0.8, t_min=0.4)
    passes = decoder_passes(model, 3)
    log = model.grader_take_log()
    model.grader_log_passes(False)
    assert log["encoder_tokens"] == [log["encoder_tokens"][0]] and len(log["decoder"]) == 3
    cols = log["cols"]
    assert torch.equal(cols, torch.arange(model.config.text_config.vocab_size))
    for step, (entry, (canvas, processed)) in enumerate(zip(log["decoder"], passes)):
        temperature = 0.4 + 0.4 * (3 - step) / 3
        assert entry["canvas"].device.type == "cpu" and torch.equal(entry["canvas"], canvas)
        assert torch.allclose(entry["logits"], processed[..., cols] * temperature, atol=1e-5)
        logp = torch.log_softmax(processed.double(), -1)
        assert torch.allclose(entry["entropy"].double(), -(logp.exp() * logp).sum(-1), atol=1e-4)
        assert torch.equal(entry["argmax"], processed.argmax(-1))
        assert torch.allclose(entry["p_max"].double(), logp.exp().max(-1).values, atol=1e-5)
        if step:
            assert torch.allclose(entry["sc"], passes[step - 1][1][..., cols], atol=1e-5)


@torch.no_grad()
def test_pass_log_of_a_large_vocabulary_keeps_a_slice_of_the_columns(model, monkeypatch):
    """With more ids than `max_columns`, logits are kept at evenly spread columns only."""
    monkeypatch.setattr(type(model.grader_log), "max_columns", 8)
    model.grader_log_passes(True, max_denoising_steps=2)
    passes = decoder_passes(model, 2)
    log = model.grader_take_log()
    model.grader_log_passes(False)
    cols = log["cols"]
    assert len(cols) == 8 and int(cols[0]) == 0 and int(cols[-1]) == model.config.text_config.vocab_size - 1
    assert log["decoder"][1]["sc"].shape == (2, CANVAS_LENGTH, 8)
    assert torch.allclose(log["decoder"][1]["sc"], passes[0][1][..., cols], atol=1e-5)


@torch.no_grad()
def test_pass_log_over_its_budget_says_so(model):
    """A budget of about two passes: the third and later are dropped, and the log says how many."""
    model.grader_log_passes(True, budget_bytes=1 << 20, max_denoising_steps=4)
    decoder_passes(model, 1)
    per_pass = model.grader_log.used
    model.grader_log_passes(True, budget_bytes=2 * per_pass + per_pass // 2, max_denoising_steps=4)
    decoder_passes(model, 4)
    log = model.grader_take_log()
    model.grader_log_passes(False)
    assert len(log["decoder"]) == 2 and log["overflow"] and log["dropped"] == 2
    assert not model.grader_take_log()["overflow"], "take() starts a fresh log"


def test_loader_refuses_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing-here")


def test_handles_only_for_the_capstone(monkeypatch, tmp_path):
    from runner.handles import handles_for
    from runner.sandbox.backends import SANDBOX_ASSETS

    cat = Catalogue(ROOT)
    assets, handles = handles_for(cat.get("418-full-inference").meta, SANDBOX_ASSETS)
    assert assets == {BUNDLED_NAME: bundled_checkpoint().resolve()}
    assert handles["model"]["kind"] == "diffusiongemma"
    assert handles["model"]["path"].endswith(f"/assets/{BUNDLED_NAME}")
    assert handles.get("_cuda", False) == torch.cuda.is_available()
    assert handles_for(cat.get("415-adaptive-stopping").meta, SANDBOX_ASSETS) == ({}, {})
    weights = tmp_path / "diffusiongemma-26B-A4B-it"
    for name in ("config.json", "generation_config.json"):
        write(weights / name, "{}")
    monkeypatch.setenv("GRADER_DIFFUSIONGEMMA_PATH", str(weights))
    assets, _ = handles_for(cat.get("418-full-inference").meta, SANDBOX_ASSETS)
    assert assets[BUNDLED_NAME] == weights.resolve()


def test_a_model_path_without_a_model_fails_the_grading_and_names_the_setting(monkeypatch, tmp_path):
    from runner.grading.lifecycle import submit
    from runner.grading.pipeline import GradingError
    from runner.records.gradebook import Gradebook

    write(tmp_path / "weights" / "config.json", "{}")  # no generation_config.json
    monkeypatch.setenv("GRADER_DIFFUSIONGEMMA_PATH", str(tmp_path / "weights"))
    book = Gradebook(f"sqlite:///{tmp_path / 'book.db'}")
    pdir = Catalogue(ROOT).get("418-full-inference")
    with pytest.raises(GradingError) as err:
        submit(pdir, pdir.solution_file, book)
    assert str(err.value) == (f"{(tmp_path / 'weights').resolve()}: no generation_config.json; GRADER_DIFFUSIONGEMMA_PATH="
                              f"{tmp_path / 'weights'} must name a model folder as save_pretrained writes it")
    (row,) = book.history()
    assert row.status == "failed", "the installation's fault: the submission is not graded, and not lost"
    # a folder with both files but no model in them: pytest cannot start; its reason still reaches the caller
    write(tmp_path / "weights" / "generation_config.json", "{}")
    with pytest.raises(GradingError, match=r"^setting up the submission failed: KeyError: 'text_config'$"):
        submit(pdir, pdir.solution_file, book)
    assert [r.status for r in book.history()] == ["failed", "failed"]


def test_a_gpu_problem_never_moves_to_the_cpu_unasked(monkeypatch):
    from runner.handles import GPUUnavailable, handle_device

    meta = Catalogue(ROOT).get("418-full-inference").meta
    monkeypatch.setattr("runner.handles.cuda_available", lambda: False)
    assert meta.device == "cuda" and meta.cpu_fallback and handle_device(meta) == "cpu"
    strict = meta.model_copy(update={"cpu_fallback": False})
    with pytest.raises(GPUUnavailable, match="no GPU is visible.*cpu_fallback = true"):
        handle_device(strict)
    monkeypatch.setattr("runner.handles.cuda_available", lambda: True)
    assert handle_device(strict) == "cuda"
    assert handle_device(Catalogue(ROOT).get("415-adaptive-stopping").meta) == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no GPU is visible"):
            load_model(device="cuda")


def test_grading_a_gpu_problem_without_a_gpu_is_a_loud_grader_error(tmp_path):
    from runner.grading.pipeline import GradingError, grade
    from tests.support.helpers import problem_copy

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    catalogue = problem_copy(tmp_path, "418-full-inference")
    toml = tmp_path / "problems" / "418-full-inference" / "problem.toml"
    toml.write_text(toml.read_text().replace("cpu_fallback = true", "cpu_fallback = false"))
    pdir = catalogue.get("418")
    with pytest.raises(GradingError, match="no GPU is visible"):
        grade(pdir, pdir.solution_file)
    toml.write_text(toml.read_text().replace("cpu_fallback = false", "cpu_fallback = true"))
    result = Catalogue(tmp_path).get("418")
    graded = grade(result, result.starter)
    assert graded.device == "cpu"  # allowed, and said
    # the worker's peak memory is reported (its process holds torch and the model: well above 100 MB)
    assert graded.timing["peak_memory_mb"] > 100


def test_training_step_runs_and_learns_something():
    train = load_script("train_tiny_model")
    import random

    ids, mask, clean = train.make_batch(random.Random(0), 6)
    assert ids.shape[0] == clean.shape[0] == 6 and clean.shape[1] == CANVAS_LENGTH
    assert bool(mask[:, -1].all()), "prefixes are left-padded"
    _, loss, _ = train.train(steps=6, batch=8, lr=3e-3, log_every=3)
    assert 0 < loss < 4.0


@torch.no_grad()
def test_autoregressive_baseline_is_one_token_per_pass_with_a_kv_cache(model):
    """The benchmark's baseline: each pass encodes one new token against the cache of everything
    before it, and picks the same greedy token as re-encoding the whole prefix without a cache."""
    bench = load_script("bench_capstone")
    ids, mask = left_pad([copy_example([2, 7, 1])[0], count_example(0, 5)[0]])
    shapes = []
    hook = model.model.encoder.register_forward_pre_hook(lambda m, a, kw: shapes.append(kw["input_ids"].shape[1]),
                                                         with_kwargs=True)
    try:
        seq, tpf = bench.autoregressive(model, ids, mask, 6)
    finally:
        hook.remove()
    generated = seq.shape[1] - ids.shape[1]
    assert shapes == [ids.shape[1]] + [1] * (generated - 1), "the prompt once, then one token a pass"
    eos = torch.tensor([model.generation_config.eos_token_id]).flatten()
    done = torch.zeros(2, dtype=torch.bool)
    prefix, full_mask = ids, mask
    for k in range(generated):  # the same greedy tokens, from the whole prefix each time
        hidden = model.model.encoder(input_ids=prefix, attention_mask=full_mask,
                                     position_ids=torch.arange(prefix.shape[1])[None]).last_hidden_state[:, -1]
        want = torch.where(done, PAD, bench.softcapped(model, model.lm_head(hidden)).argmax(-1))
        assert torch.equal(seq[:, ids.shape[1] + k], want), f"token {k}"
        done |= torch.isin(want, eos)
        prefix = torch.cat([prefix, want[:, None]], dim=1)
        full_mask = torch.cat([full_mask, torch.ones(2, 1, dtype=torch.bool)], dim=1)
    assert tpf.shape == (2,) and bool((tpf > 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reference_agrees_with_generate_token_for_token_in_argmax_mode(tmp_path, dtype):
    """418's reference against transformers' generate() in the benchmark's argmax mode, on a random
    model of the release's layout (several eos ids, the release's generation config) with a
    vocabulary of 8,192 and a canvas of 64 so that it runs in seconds. A random model's bf16
    logits tie often, and tied tokens are then sampled: the reference draws them as generate()
    does (torch.multinomial after the same seed), so every token agrees in bf16 too."""
    from runner.handles.diffusiongemma import build_real_shape_model, model_spec

    bench = load_script("bench_capstone")
    reference = bench.reference_module()
    folder = build_real_shape_model(tmp_path / "model", vocab_size=8192, canvas_length=64)
    spec = model_spec(folder)
    model = load_model(folder, "cpu", dtype=dtype)
    ids, mask = left_pad(bench.prompts_for(spec, 2))
    ties = 0
    for seed in range(3):
        torch.manual_seed(seed)
        ours, _ = reference.generate(model, ids, attention_mask=mask, max_new_tokens=spec["L"],
                                     max_denoising_steps=3, **bench.ARGMAX)
        torch.manual_seed(seed)
        theirs = model.generate(ids, attention_mask=mask, max_new_tokens=spec["L"], max_denoising_steps=3,
                                **bench.ARGMAX).sequences
        assert torch.equal(ours, theirs), f"seed {seed}: {bench.agreement(ours, theirs, ids.shape[1]):.3f} agree"
        top2 = model(input_ids=ids, decoder_input_ids=ours[:, -spec["L"]:]).logits.topk(2, dim=-1).values
        ties += int((top2[..., 0] == top2[..., 1]).sum())
    if dtype == torch.bfloat16:
        assert ties > 0, "no tied logits: the bf16 case this test is for did not arise"
