"""Hidden tests of 418-full-inference (generate on the real DiffusionGemma model).

The solver's generate runs in the sandbox on the bundled model (the `model` handle). The model
records every encoder and decoder pass there; the tests read that log through the worker and
replay the sampler's deterministic decisions on it (temperature, acceptance, stopping, commit),
so they never depend on the order in which a solution draws its random numbers. The outputs are
also compared with transformers' own generate() on prompts where the model is confident.
"""
from __future__ import annotations

import math

import pytest
import torch

from runner.handles.diffusiongemma import (BOS, COPY, COUNT, SEP, copy_example, count_example, left_pad, load_model,
                                           model_folder, model_spec, symbol)
from runner.sandbox.failures import SolverError
from runner.testing import Generator, Handle, assert_shape_dtype, binomial_bound

MODEL = Handle("model")
# Every size and id comes from the graded model's config and generation config: the bundled tiny
# model, or the folder of $GRADER_DIFFUSIONGEMMA_PATH (the released weights, a real-shape model).
SPEC = model_spec()
L, V, PAD, EOS_IDS = SPEC["L"], SPEC["V"], SPEC["pad"], SPEC["eos"]
EOS = EOS_IDS[0]  # the first eos id: the tiny model's tests build their eos lists from it
# What only the tiny model can show: it speaks the synthetic language of the prompts below, and is
# confident enough to stop early and to write eos. A random or a real model shows none of that.
tiny_only = pytest.mark.skipif(not SPEC["tiny"], reason=(
    "needs the bundled tiny model: its prompts are in the synthetic copy/count language, and it checks confident "
    "stopping and eos, which only that model shows"))
HOT = dict(max_denoising_steps=5, t_max=5.0, t_min=3.0)  # few, hot steps: many rejections
DEFAULTS = dict(max_denoising_steps=48, t_max=0.8, t_min=0.4, entropy_bound=0.1, stability_threshold=1,
                confidence_threshold=0.005)

# Prompts the model answers confidently: every run gives the same committed canvases.
CONFIDENT = [copy_example([11, 19, 15])[0], copy_example([20, 4, 7, 20, 4, 1, 1, 5, 9, 13, 22, 0])[0],
             count_example(20, 5)[0], count_example(0, 18)[0]]
# Different lengths, answers of one or two canvases, eos in different canvases, rows that stop
# after different numbers of steps (the model is less sure of the last copy).
MIXED = [copy_example([7, 18])[0], count_example(0, 18)[0], copy_example([24, 20, 9, 13, 16, 12, 18, 11, 17])[0],
         count_example(3, 24)[0], copy_example([7, 4, 11, 11, 14, 22, 14, 17, 11, 3])[0]]
# A wide batch for the statistical tests: many starting, sampled and renoised tokens in one canvas.
WIDE = MIXED * 20
# With CUT among the eos ids, the first prompt's row ends mid-count in the first canvas; in the
# next canvas the model is unsure what follows such a cut (that row stops late), while the second
# row ends its count quickly. Rows that ended earlier are denoised like any other row.
CUT = symbol(25)
ENDED_EARLY = [count_example(20, 24)[0], count_example(0, 18)[0]]
# Three ways to end, with CUT and symbol(17) among the eos ids: the first rows end mid-count in the
# first canvas (unsure what follows, they stop late in the next one); the next rows end exactly at
# the first canvas's last position (their count goes on confidently in the next canvas, so they
# stop early there, while the first rows are still running); the last row goes on to the second.
ENDINGS = [count_example(20, 24)[0]] * 3 + [count_example(2, 20)[0]] * 2 + [count_example(0, 24)[0]]
ENDINGS_EOS = [*EOS_IDS, CUT, symbol(17)]
# Other stopping settings: stability over two argmax canvases; no stability at all, where some
# rows stop at the first step and the model changes its mind about them at the next one (their
# argmax canvas must stay frozen).
THRESHOLDS = [(MIXED, dict(stability_threshold=2, confidence_threshold=0.02)),
              (MIXED * 8, dict(stability_threshold=0, confidence_threshold=0.3, t_max=1.2, t_min=0.8,
                               max_denoising_steps=12)),
              # every row is confident at once: stability alone decides when a row stops
              (MIXED * 2, dict(stability_threshold=2, confidence_threshold=1e6, t_max=1.5, t_min=1.0,
                               max_denoising_steps=12))]
# An eos id the model never writes (bos): no row ends, and generation runs every canvas it may.
NEVER = copy_example([])[0][0]
ALPHA = 1e-6  # each statistical check fails a correct solution with probability below this
# Prompts outside the synthetic language: the model stays unsure of its answer, so rows rarely (if
# ever) become confident and a canvas tends to run up to the step limit.
GARBLED = [[BOS, symbol(3), COPY, symbol(4), SEP, SEP, COPY], [BOS, COPY, SEP, COUNT, symbol(9), COPY, SEP],
           [BOS, COUNT, COUNT, symbol(2), COPY, SEP]]


# ------------------------------------------------------------------ running and replaying

def generator(seed: int) -> Generator:
    """A generator on the device the sandbox puts the model on (the GPU where there is one), so
    that a solution draws its random numbers there."""
    return Generator(seed, device="cuda" if torch.cuda.is_available() else "cpu")


# The pass log's budget: a run of these tests records a few MB at most; only a sampler that runs
# far more decoder passes than max_denoising_steps allows per canvas gets near it.
LOG_BUDGET = 256 << 20


def logged(submission, settings: dict, call):
    """(answer, log) of `call()` with the model's pass log on (with the run's temperature schedule)."""
    schedule = {k: settings[k] for k in ("max_denoising_steps", "t_max", "t_min")}
    submission.handle_method("model", "grader_log_passes", True, budget_bytes=LOG_BUDGET, **schedule)
    try:
        out = call()
        return out, submission.handle_method("model", "grader_take_log")
    finally:
        submission.handle_method("model", "grader_log_passes", False)


def run_unchecked(submission, prompts, seed, mask_dtype=torch.bool, **kwargs):
    """(input_ids, mask, answer, log, settings) of one generate call, its answer not yet checked.

    The session fixtures call this: a check that failed inside a fixture would stop the grading
    (it is not the solver's error there), so every test checks the answer itself, with `checked`."""
    ids, mask = left_pad(prompts)
    settings = DEFAULTS | kwargs
    out, log = logged(submission, settings, lambda: submission.generate(
        MODEL, ids, attention_mask=mask.to(mask_dtype), generator=generator(seed), **settings))
    return ids, mask, out, log, settings


def run_with_defaults(submission, prompts, seed, **kwargs):
    """Like run_unchecked, but only `kwargs` are passed: every other setting is left to generate's
    defaults, which the record's settings (DEFAULTS) say they should be."""
    ids, mask = left_pad(prompts)
    out, log = logged(submission, DEFAULTS | kwargs, lambda: submission.generate(
        MODEL, ids, attention_mask=mask, generator=generator(seed), **kwargs))
    return ids, mask, out, log, DEFAULTS | kwargs


def check_answer(out, batch: int, length: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """generate's (sequences, tokens_per_forward), once their types, shapes and dtypes are right;
    `what` says which length the sequences should have."""
    assert isinstance(out, (tuple, list)) and len(out) == 2, "generate must return (sequences, tokens_per_forward)"
    seq, tpf = out
    assert_shape_dtype(seq, (batch, length), torch.int64, what=what)
    assert isinstance(tpf, torch.Tensor) and tpf.is_floating_point() and tuple(tpf.shape) == (batch,), \
        "tokens_per_forward should be a float tensor of shape (batch,)"
    return seq, tpf


def checked(record) -> tuple:
    """(input_ids, mask, sequences, tokens_per_forward, log, settings) of a checked generate call."""
    ids, mask, out, log, settings = record
    assert not log["overflow"], (
        "the decoder ran far more passes than the settings allow (at most max_denoising_steps per canvas, and one "
        "canvas per canvas_length tokens of max_new_tokens): the grader's record of them overflowed")
    assert summaries_agree(log, settings), (
        "the grader's record of the decoder passes contradicts itself (its entropies, argmax or top probabilities "
        "are not those of its logits at the step's temperature): the model's pass log was changed from inside the "
        "submission")
    n_canvases = len(canvas_calls(log))
    seq, tpf = check_answer(out, ids.shape[0], ids.shape[1] + n_canvases * L,
                            "sequences (the prompt, then one canvas per canvas the decoder denoised)")
    return ids, mask, seq, tpf, log, settings


def canvas_calls(log: dict) -> list[list[dict]]:
    """The logged decoder calls grouped by canvas (the encoder pass they followed), in order."""
    indices = sorted({d["after_encoder"] for d in log["decoder"]})
    return [[d for d in log["decoder"] if d["after_encoder"] == index] for index in indices]


def step_temperature(s: dict, step: int) -> float:
    """The released schedule's temperature at a canvas's step `step` (from 0): t_max down to t_min,
    t_min past the step limit (the tests fail such a pass anyway)."""
    n_steps = s["max_denoising_steps"]
    return s["t_min"] + (s["t_max"] - s["t_min"]) * max(n_steps - step, 0) / n_steps


def summaries_agree(log: dict, s: dict) -> bool:
    """Whether each decoder pass's entropy, argmax and top probability in the log are those of its
    logged logits at the temperature of its step in its canvas (the sandbox computes both; they can
    only disagree if the submission changed the log). Checkable where the log holds every column
    of the vocabulary (the tiny model); elsewhere the decoder's logits are checked against the
    grader's own model instead (decoder_logits_match)."""
    if log["cols"].numel() != V:
        return True
    for calls in canvas_calls(log):
        for i, call in enumerate(calls):
            temperature = step_temperature(s, i)
            if call["logits"] is None:
                return False
            logp = torch.log_softmax(call["logits"].double() / temperature, dim=-1)
            top = logp.max(-1).values
            at_argmax = logp.gather(-1, call["argmax"].long().unsqueeze(-1)).squeeze(-1)
            if not (torch.allclose(call["entropy"].double(), -(logp.exp() * logp).sum(-1), rtol=1e-4, atol=1e-5)
                    and torch.allclose(call["p_max"].double(), top.exp(), rtol=1e-4, atol=1e-6)
                    and bool((at_argmax >= top - 1e-5).all())):
                return False
    return True


def run(submission, prompts, seed, **kwargs):
    """(input_ids, mask, sequences, tokens_per_forward, log, settings) of one checked generate call."""
    return checked(run_unchecked(submission, prompts, seed, **kwargs))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def frozen(stopped: torch.Tensor, before: dict, now: dict) -> dict:
    """`now`, with the rows that had stopped holding what they held `before`."""
    return {k: torch.where(stopped.view(-1, *[1] * (v.dim() - 1)), before[k], v) for k, v in now.items()}


def replay(log: dict, s: dict) -> list[dict]:
    """Per canvas: the decoder calls, and what the released sampler decides from their logits.

    The pass log holds, per pass, the entropy, argmax and top probability of softmax(logits / T)
    at each position (T: the step's temperature) and the logits at the columns `log["cols"]`;
    c["eff"][i] holds those of step i's processed logits (frozen for rows that had stopped)."""
    canvases = []
    for calls in canvas_calls(log):
        b = calls[0]["canvas"].shape[0]
        stopped = torch.zeros(b, dtype=torch.bool)
        stop_call = [None] * b
        history: list[torch.Tensor] = []
        eff = None
        effs, accepted = [], []
        for i, call in enumerate(calls):
            temperature = step_temperature(s, i)
            h = call["entropy"].double()
            sorted_h, order = h.sort(dim=-1)
            keep = sorted_h.cumsum(-1) - sorted_h <= s["entropy_bound"]
            accepted.append(torch.zeros_like(keep).scatter(-1, order, keep))
            now = {"cols": call["logits"].double() / temperature, "entropy": h, "argmax": call["argmax"],
                   "p_max": call["p_max"].double()}
            eff = frozen(stopped, eff, now) if stopped.any() else now
            argmax = eff["argmax"]
            k = s["stability_threshold"]
            stable = torch.ones(b, dtype=torch.bool) if k == 0 else (
                torch.stack([(hh == argmax).all(-1) for hh in history[-k:]]).all(0) if len(history) >= k
                else torch.zeros(b, dtype=torch.bool))
            history.append(argmax)
            now = stable & (eff["entropy"].mean(-1) < s["confidence_threshold"]) & ~stopped
            for row in now.nonzero().flatten().tolist():
                stop_call[row] = i
            stopped |= now
            effs.append(eff)
        canvases.append({"calls": calls, "stop_call": stop_call, "eff": effs, "accepted": accepted,
                         "argmax": eff["argmax"], "all_stopped_at": max(stop_call) if all(
                             c is not None for c in stop_call) else None})
    assert canvases, "generate never ran the decoder"  # else every check over the canvases passes
    return canvases


def sc_matches(sc, eff_cols, log) -> bool:
    """Whether self-conditioning logits (at the log's columns) are the previous processed logits:
    to float32 precision, or to that of the model's dtype where it is lower (transformers casts
    them to the embeddings' dtype)."""
    tol = 1e-4 if log.get("dtype", "torch.float32") == "torch.float32" else 1e-2
    return sc is not None and sc.shape == eff_cols.shape and torch.allclose(sc.double(), eff_cols, rtol=tol, atol=tol)


def expected_passes(canvases, finished_before: list[torch.Tensor]) -> torch.Tensor:
    """Decoder passes each row took part in (rows that stopped, or ended earlier, do not count)."""
    b = canvases[0]["calls"][0]["canvas"].shape[0]
    passes = torch.zeros(b)
    for c, fin in zip(canvases, finished_before):
        for row in range(b):
            if not fin[row]:
                passes[row] += len(c["calls"]) if c["stop_call"][row] is None else c["stop_call"][row] + 1
    return passes


def finished_before_each_canvas(seq: torch.Tensor, prompt_len: int, n_canvases: int,
                                eos_ids=None) -> list[torch.Tensor]:
    gen = seq[:, prompt_len:]
    out, fin = [], torch.zeros(seq.shape[0], dtype=torch.bool)
    for c in range(n_canvases):
        out.append(fin.clone())
        fin |= torch.isin(gen[:, c * L:(c + 1) * L], torch.tensor(list(eos_ids or EOS_IDS))).any(-1)
    return out


LAMBDAS = (0.25, 0.5, 1.0)


def plausible_count(y: float, mu: float, alpha: float) -> bool:
    """False when y, a sum of 0/1 draws each made with conditional probability p_i given what came
    before (mu = the sum of the p_i), lies this far from mu with probability below alpha.

    exp(l * y - (e^l - 1) * mu) is a supermartingale for every fixed l, so by Ville's inequality
    it exceeds 1 / a with probability at most a, whatever decided which draws are counted (the
    model's logits, the solution's drawing order). The check uses a fixed grid of l of both signs
    and splits alpha over it (union bound)."""
    limit = math.log(2 * len(LAMBDAS) / alpha)
    return all(lam * y - math.expm1(lam) * mu <= limit and -lam * y - math.expm1(-lam) * mu <= limit
               for lam in LAMBDAS)


def uniform_counts_ok(tokens: torch.Tensor, vocab: int, alpha: float) -> bool:
    """tokens: each drawn uniformly from [0, vocab) given what came before. Checks the count of
    every id and of 64 (or vocab) equal id ranges, alpha split over all of them."""
    tokens = tokens.flatten().long()
    if tokens.numel() == 0:
        return False
    if bool(((tokens < 0) | (tokens >= vocab)).any()):
        return False
    n = tokens.numel()
    per_id = alpha / 2 / vocab
    if not all(plausible_count(c, n / vocab, per_id) for c in torch.bincount(tokens, minlength=vocab).tolist()):
        return False
    buckets = min(vocab, 64)
    sizes = torch.bincount(torch.arange(vocab) * buckets // vocab, minlength=buckets).tolist()
    counts = torch.bincount(tokens * buckets // vocab, minlength=buckets).tolist()
    return all(plausible_count(c, n * size / vocab, alpha / 2 / buckets) for c, size in zip(counts, sizes))


def active_rows(canvas: dict, step: int) -> torch.Tensor:
    """(B,) bool: rows whose canvas after decoder call `step` is not frozen (not stopped before it)."""
    return torch.tensor([stop is None or stop >= step for stop in canvas["stop_call"]])


# transformers' results depend only on the prompts and settings: computed once per grading
# process (validation grades many submissions in one process).
_HF: dict = {}


@pytest.fixture(scope="session")
def hf_model():
    """transformers' model, trusted, in the grader: on the GPU where there is one, sharing it with
    the worker's copy (what does not fit beside it waits in host memory), else on the CPU."""
    if "model" not in _HF:
        cuda = torch.cuda.is_available()
        _HF["model"] = load_model(model_folder(), "cuda" if cuda else "cpu", shared_gpu=cuda)
    return _HF["model"]


def hf_generate(model, prompts, seed, **kwargs):
    key = repr((prompts, seed, sorted(kwargs.items()), model.generation_config.eos_token_id))
    if key not in _HF:
        _HF[key] = _hf_generate(model, prompts, seed, **kwargs)
    return _HF[key]


def _hf_generate(model, prompts, seed, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is much faster
    try:
        return _hf_generate_once(model, prompts, seed, **kwargs)
    finally:
        torch.set_num_threads(threads)


def _hf_generate_once(model, prompts, seed, **kwargs):
    ids, mask = left_pad(prompts)
    s = DEFAULTS | kwargs
    torch.manual_seed(seed)
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    out = model.generate(ids.to(model.device), attention_mask=mask.to(model.device),
                         max_new_tokens=kwargs.get("max_new_tokens", 24),
                         max_denoising_steps=s["max_denoising_steps"], t_max=s["t_max"], t_min=s["t_min"],
                         sampler_config=EntropyBoundSamplerConfig(entropy_bound=s["entropy_bound"]),
                         stability_threshold=s["stability_threshold"],
                         confidence_threshold=s["confidence_threshold"])
    return out.sequences.cpu(), out.tokens_per_forward.cpu()


# The runs the tests share, unchecked (see run_unchecked): each test reads them through `checked`.
@pytest.fixture(scope="session")
def confident(submission):
    return run_unchecked(submission, CONFIDENT, 11, max_new_tokens=2 * L)


@pytest.fixture(scope="session")
def mixed(submission):
    return run_unchecked(submission, MIXED, 12, max_new_tokens=2 * L)


@pytest.fixture(scope="session")
def unsure(submission):
    """Hot temperatures and few steps: many positions are rejected and renoised."""
    return run_unchecked(submission, MIXED, 13, max_new_tokens=2 * L, **HOT)


@pytest.fixture(scope="session")
def wide(submission):
    """One canvas of a wide batch at hot temperatures, for the statistical tests."""
    return run_unchecked(submission, WIDE, 16, max_new_tokens=L, **HOT)


@pytest.fixture(scope="session")
def ended_early(submission):
    """Two canvases; with CUT among the eos ids the first row ends in the first canvas."""
    submission.handle_method("model", "grader_set_eos", [*EOS_IDS, CUT])
    try:
        return run_unchecked(submission, ENDED_EARLY, 17, max_new_tokens=2 * L)
    finally:
        submission.handle_method("model", "grader_set_eos", EOS_IDS)


@pytest.fixture(scope="session")
def endings(submission):
    """Two canvases; rows that ended in the first one stop at different steps of the second."""
    submission.handle_method("model", "grader_set_eos", ENDINGS_EOS)
    try:
        return run_unchecked(submission, ENDINGS, 19, max_new_tokens=3 * L)
    finally:
        submission.handle_method("model", "grader_set_eos", EOS_IDS)


@pytest.fixture(scope="session")
def thresholds(submission):
    return [run_unchecked(submission, prompts, 18 + i, max_new_tokens=2 * L, **kw)
            for i, (prompts, kw) in enumerate(THRESHOLDS)]


def committed_ok(canvases, seq, prompt_len, eos_ids=None) -> bool:
    gen = seq[:, prompt_len:]
    eos_ids = torch.tensor(list(eos_ids or EOS_IDS))
    fin = finished_before_each_canvas(seq, prompt_len, len(canvases), eos_ids.tolist())
    for c, (canvas, before) in enumerate(zip(canvases, fin)):
        got = gen[:, c * L:(c + 1) * L]
        for row in range(seq.shape[0]):
            if before[row]:
                continue
            want = canvas["argmax"][row]
            upto = L
            hits = torch.isin(got[row], eos_ids).nonzero()
            if len(hits):
                upto = int(hits[0]) + 1
            if not torch.equal(got[row, :upto], want[:upto]):
                return False
    return True


# ------------------------------------------------------------------ the tests on any model

# Runs on whatever model is graded (the tiny one, a real-shape random one, the released weights),
# with limits that fit a vocabulary of 262,144 and canvases of 256 on the CPU: two prompts, two
# steps, two canvases. Their prompts are random ordinary ids, not the synthetic language.
SCALED = dict(max_denoising_steps=2)


def random_prompts(seed: int, lengths) -> list[list[int]]:
    """Prompts of ids drawn from the upper half of the vocabulary (no pad, bos or eos there)."""
    g = torch.Generator().manual_seed(seed)
    ids = [torch.randint(V // 2, V, (n,), generator=g).tolist() for n in lengths]
    return [[t for t in p if t not in EOS_IDS] or [V - 1] for p in ids]


@pytest.fixture(scope="session")
def scaled(submission):
    """Two left-padded prompts; max_new_tokens one more than a canvas: two canvases."""
    return run_unchecked(submission, random_prompts(41, (5, 9)), 41, max_new_tokens=L + 1, **SCALED)


def ended(seq: torch.Tensor, prompt_len: int, eos_ids) -> torch.Tensor:
    """(B,) bool: rows whose generated tokens hold an eos id."""
    return torch.isin(seq[:, prompt_len:], torch.tensor(list(eos_ids))).any(-1)


def test_whole_canvases_of_the_configured_length(scaled):
    """Sizes from the model's config: the output is the prompt, then one canvas of canvas_length
    tokens (ids in [0, vocab_size)) per canvas denoised; max_new_tokens = canvas_length + 1 asks
    for two; the encoder takes the prompt, then one committed canvas."""
    ids, _, seq, _, log, s = checked(scaled)
    n_canvases = len(replay(log, s))
    assert torch.equal(seq[:, :ids.shape[1]], ids), "the prompt part of the sequences was changed"
    assert bool(((seq >= 0) & (seq < V)).all()), "generated ids outside the vocabulary [0, vocab_size)"
    all_ended_first = bool(ended(seq[:, :ids.shape[1] + L], ids.shape[1], EOS_IDS).all())
    assert n_canvases == 2 or (n_canvases == 1 and all_ended_first), \
        "max_new_tokens of one more than the model's canvas_length should give two canvases (unless every row ended)"
    assert log["encoder_tokens"] == [ids.shape[1]] + [L] * (n_canvases - 1), \
        "expected one encoder pass per canvas: the prompt, then each committed canvas of canvas_length tokens"


@pytest.mark.points(2)
def test_replay_of_the_sampler_at_the_configured_sizes(scaled):
    """The replay of the run (schedule, acceptance, stopping, self-conditioning, commit, eos ids of
    the generation config, tokens per forward) agrees with it on the graded model."""
    ids, _, seq, _, log, s = checked(scaled)
    canvases = replay(log, s)
    for c in canvases:
        calls = c["calls"]
        stop = c["all_stopped_at"]
        want = s["max_denoising_steps"] if stop is None else stop + 1
        assert len(calls) == want, "the denoising loop did not end at the step limit or when every row had stopped"
        assert calls[0]["sc"] is None, "the first step of a canvas must run without self-conditioning"
        assert all(sc_matches(calls[i]["sc"], c["eff"][i - 1]["cols"], log) for i in range(1, len(calls))), \
            "self-conditioning logits are not the previous step's temperature-scaled logits"
    assert committed_ok(canvases, seq, ids.shape[1]), "a committed canvas is not the argmax canvas of the last step"
    assert tokens_per_forward_ok(scaled), \
        "tokens_per_forward is not the non-pad generated tokens / decoder passes the row took part in"


def test_noise_is_uniform_over_the_whole_vocabulary(scaled):
    """Starting and renoised tokens are uniform over all vocab_size ids of the model's config (the
    count of every id and of 64 id ranges is checked)."""
    _, _, _, _, log, s = checked(scaled)
    noise = []
    for c in replay(log, s):
        calls = c["calls"]
        noise.append(calls[0]["canvas"].flatten())
        for i in range(len(calls) - 1):
            rejected = ~c["accepted"][i] & active_rows(c, i)[:, None]
            noise.append(calls[i + 1]["canvas"][rejected])
    assert uniform_counts_ok(torch.cat(noise), V, ALPHA), \
        "starting or renoised tokens are not uniform over the whole vocabulary (every id in [0, vocab_size))"


@pytest.mark.points(2)
def test_several_eos_ids_cut_each_row(submission, scaled):
    """eos_token_id holds several ids: a row's committed canvas is cut after the first of them,
    and generation stops once every row has ended. The grader adds to the configured ids one id
    per row that the first run committed (a random model rarely writes the configured ones), then
    repeats that run with the same seed."""
    ids, _, seq, _, _, _ = checked(scaled)
    first = seq[:, ids.shape[1]:ids.shape[1] + L]
    eos = list(dict.fromkeys([*EOS_IDS, *(int(first[row, (2 + 3 * row) % L]) for row in range(first.shape[0]))]))
    submission.handle_method("model", "grader_set_eos", eos)
    try:
        ids, _, again, _, log, s = run(submission, random_prompts(41, (5, 9)), 41, max_new_tokens=L + 1, **SCALED)
    finally:
        submission.handle_method("model", "grader_set_eos", EOS_IDS)
    canvases = replay(log, s)
    assert bool(ended(again, ids.shape[1], eos).all()), \
        "the same seed should repeat the run, and every row then meets one of the eos ids in its first canvas"
    assert committed_ok(canvases, again, ids.shape[1], eos), \
        "with a list of eos ids, a committed canvas is not the argmax canvas up to the first of them"
    for row in again[:, ids.shape[1]:]:
        cut = int(torch.isin(row, torch.tensor(eos)).nonzero()[0])
        assert bool((row[cut + 1:] == PAD).all()), "tokens after the first id of the eos list must be pad"
    assert len(canvases) == 1, "generation should stop after the canvas in which every row ended"


@pytest.mark.points(2)
def test_decoder_reads_the_prompt_and_the_committed_canvas(scaled, hf_model):
    """The decoder's logits (at the first step of each canvas) are those of a cache holding the
    prompt and the committed canvases, at the configured canvas length."""
    ids, mask, seq, _, log, _ = checked(scaled)
    assert decoder_logits_match(hf_model, ids, mask, seq, log, L), \
        ("the decoder's logits differ from those of a cache holding the prompt and the committed canvases (after "
         "the pad replacement, all their positions unmasked), with positions that run on from the cache")


# ------------------------------------------------------------------ the tests of the tiny model

@tiny_only
def test_shapes_dtypes_and_prompt(mixed):
    ids, _, seq, _, _, _ = checked(mixed)
    extra = seq.shape[1] - ids.shape[1]
    assert extra > 0 and extra <= 3 * L, "the output should be the prompt plus one or more whole canvases"
    assert torch.equal(seq[:, :ids.shape[1]], ids), "the prompt part of the sequences was changed"


@tiny_only
@pytest.mark.points(2)
def test_agrees_with_transformers_on_confident_prompts(confident, hf_model):
    _, _, seq, _, _, _ = checked(confident)
    want, _ = hf_generate(hf_model, CONFIDENT, 0)
    assert seq.shape == want.shape, "a different number of canvases than transformers' generate()"
    assert torch.equal(seq, want), "committed canvases differ from transformers' generate() where the model is confident"


@tiny_only
@pytest.mark.points(2)
def test_left_padded_batch_agrees_with_transformers(mixed, hf_model):
    _, _, seq, _, _, _ = checked(mixed)
    want, _ = hf_generate(hf_model, MIXED, 0)
    assert seq.shape == want.shape, "a different number of canvases than transformers' generate() (padded batch)"
    assert torch.equal(seq, want), "rows of a left-padded batch differ from transformers' generate()"


@tiny_only
def test_prompt_encoded_once_then_each_canvas_once(mixed, confident):
    for ids, _, seq, _, log, _ in map(checked, (mixed, confident)):
        n_canvases = (seq.shape[1] - ids.shape[1]) // L
        tokens = log["encoder_tokens"]
        assert len(tokens) == n_canvases, \
            "expected one encoder pass per canvas (the prompt, then each committed canvas but the last)"
        assert tokens[0] == ids.shape[1], "the first encoder pass should encode exactly the prompt"
        assert all(t == L for t in tokens[1:]), "after the prefill, each encoder pass should encode one canvas only"


@tiny_only
def test_never_more_decoder_passes_than_the_step_limit(unsure, mixed):
    for _, _, seq, _, log, s in map(checked, (unsure, mixed)):
        canvases = replay(log, s)
        assert all(len(c["calls"]) <= s["max_denoising_steps"] for c in canvases), \
            "a canvas took more decoder passes than max_denoising_steps"
    _, _, _, _, log, s = checked(unsure)
    canvases = replay(log, s)
    assert any(len(c["calls"]) == 5 for c in canvases), "with hot temperatures the step limit should be reached"


@tiny_only
def test_stops_when_every_row_is_stable_and_confident(mixed, confident):
    for _, _, _, _, log, s in map(checked, (mixed, confident)):
        for c in replay(log, s):
            stop = c["all_stopped_at"]
            want = s["max_denoising_steps"] if stop is None else stop + 1
            assert len(c["calls"]) == want, \
                "the denoising loop did not end right when every row was stable and confident"


@tiny_only
@pytest.mark.points(2)
def test_self_conditioning_on_previous_processed_logits(mixed, unsure):
    for _, _, _, _, log, s in map(checked, (mixed, unsure)):
        for c in replay(log, s):
            calls = c["calls"]
            assert calls[0]["sc"] is None, "the first step of a canvas must run without self-conditioning"
            for i in range(1, len(calls)):
                sc = calls[i]["sc"]
                assert sc is not None, "later steps must pass self-conditioning logits"
                assert sc.shape == c["eff"][i - 1]["cols"].shape, "self-conditioning logits of the wrong shape"
                ok = sc_matches(sc, c["eff"][i - 1]["cols"], log)
                assert ok, ("self-conditioning logits are not the previous step's temperature-scaled logits "
                            "(check the schedule, and that stopped rows keep theirs)")


@tiny_only
def test_stopped_rows_stay_frozen(mixed, thresholds):
    """At the default settings a stopped row is confident, so denoising it again would rarely change
    it; the runs with other thresholds stop rows on stability alone at hot temperatures, where it would."""
    frozen = 0
    for record in (mixed, *thresholds):
        _, _, _, _, log, s = checked(record)
        for c in replay(log, s):
            calls = c["calls"]
            for row, stop in enumerate(c["stop_call"]):
                if stop is None:
                    continue
                for i in range(stop + 2, len(calls)):
                    frozen += 1
                    assert torch.equal(calls[i]["canvas"][row], calls[stop + 1]["canvas"][row]), \
                        "a row that had stopped kept changing its canvas"
    assert frozen > 0, "expected some rows to stop before others"


@tiny_only
@pytest.mark.points(2)
def test_commits_the_argmax_canvas(mixed, unsure):
    for ids, _, seq, _, log, s in map(checked, (mixed, unsure)):
        assert committed_ok(replay(log, s), seq, ids.shape[1]), \
            "a committed canvas is not the argmax canvas of the last denoising step"


@tiny_only
def test_renoises_every_rejected_position(unsure):
    """Rejected positions get fresh uniform tokens: equal to the old token with probability 1/V."""
    _, _, _, _, log, s = checked(unsure)
    n = same_old = same_argmax = 0
    for c in replay(log, s):
        calls = c["calls"]
        for i in range(len(calls) - 1):
            active = torch.tensor([stop is None or stop >= i for stop in c["stop_call"]])
            rejected = ~c["accepted"][i] & active[:, None]
            nxt = calls[i + 1]["canvas"]
            n += int(rejected.sum())
            same_old += int((nxt == calls[i]["canvas"])[rejected].sum())
            same_argmax += int((nxt == c["eff"][i]["argmax"])[rejected].sum())
    assert n >= 40, "expected many rejected positions at hot temperatures"
    bound = n / V + binomial_bound(n, 1 / V)  # fails a correct solution with probability < 1e-6
    assert same_old <= bound, "rejected positions kept their previous token instead of being renoised"
    assert same_argmax <= bound, "rejected positions took the prediction instead of a fresh uniform token"


@tiny_only
def test_renoises_positions_accepted_earlier(unsure):
    """A position accepted at an earlier step and rejected now is renoised as well (nothing is locked in)."""
    _, _, _, _, log, s = checked(unsure)
    n = same = 0
    for c in replay(log, s):
        calls = c["calls"]
        ever = torch.zeros_like(c["accepted"][0])
        for i in range(len(calls) - 1):
            active = torch.tensor([stop is None or stop >= i for stop in c["stop_call"]])
            rejected = ~c["accepted"][i] & ever & active[:, None]
            n += int(rejected.sum())
            same += int((calls[i + 1]["canvas"] == calls[i]["canvas"])[rejected].sum())
            ever |= c["accepted"][i]
    assert n >= 10, "expected positions that were accepted, then rejected, at hot temperatures"
    assert same <= n / V + binomial_bound(n, 1 / V), \
        "positions accepted at an earlier step kept their token after being rejected (they must be renoised)"


@tiny_only
def test_several_eos_ids_and_pad_after_the_first(submission, hf_model):
    """eos_token_id may be a list; a canvas is cut after the first token of that list."""
    eos = [*EOS_IDS, copy_example([2])[1][0]]  # the symbol "c" also ends a sequence
    prompts = [copy_example([0, 1, 2, 3, 4])[0], copy_example([5, 2, 6])[0], copy_example([7, 8])[0]]
    submission.handle_method("model", "grader_set_eos", eos)
    try:
        _, _, seq, _, _, _ = run(submission, prompts, 15, max_new_tokens=16)
    finally:
        submission.handle_method("model", "grader_set_eos", EOS_IDS)
    hf_model.generation_config.eos_token_id = eos
    try:
        want, _ = hf_generate(hf_model, prompts, 0, max_new_tokens=16)
    finally:
        hf_model.generation_config.eos_token_id = EOS_IDS
    assert seq.shape == want.shape, "with a list of eos ids, a different number of canvases than transformers"
    assert torch.equal(seq, want), \
        "with a list of eos ids, tokens after the first of them must become pad (as transformers' generate())"


@tiny_only
def test_accepted_positions_take_a_sample(unsure, mixed):
    """An accepted position holds a token drawn from the step's tempered distribution."""
    n = unlikely = 0
    for _, _, _, _, log, s in map(checked, (unsure, mixed)):
        for c in replay(log, s):
            calls = c["calls"]
            for i in range(len(calls) - 1):
                active = torch.tensor([stop is None or stop >= i for stop in c["stop_call"]])
                acc = c["accepted"][i] & active[:, None]
                probs = torch.softmax(c["eff"][i]["cols"], dim=-1)  # every column (checked by the caller)
                p_next = probs.gather(-1, calls[i + 1]["canvas"].unsqueeze(-1)).squeeze(-1)
                n += int(acc.sum())
                unlikely += int((p_next < 1e-4)[acc].sum())
    p = V * 1e-4  # at most this chance per position of drawing a token of probability < 1e-4
    assert n > 0
    assert unlikely <= n * p + binomial_bound(n, p), \
        "accepted positions hold tokens the tempered distribution makes very unlikely"


@tiny_only
def test_eos_then_pad_and_finished_rows(mixed):
    ids, _, seq, _, _, _ = checked(mixed)
    gen = seq[:, ids.shape[1]:]
    n_canvases = gen.shape[1] // L
    ended = []
    for row in range(gen.shape[0]):
        hits = torch.isin(gen[row], torch.tensor(EOS_IDS)).nonzero().flatten()
        if len(hits):
            first = int(hits[0])
            assert bool((gen[row, first + 1:] == PAD).all()), "tokens after eos (and later canvases) must be pad"
            ended.append(first // L)
        else:
            ended.append(None)
    assert all(e is not None for e in ended), "every prompt of this batch should end with eos"
    assert n_canvases == max(ended) + 1, "generation should stop after the canvas in which the last row ended"
    assert len(set(ended)) > 1, "rows should end in different canvases"


def tokens_per_forward_ok(record, eos_ids=None) -> bool:
    """Whether tokens_per_forward is each row's non-pad generated tokens over the decoder passes it
    took part in, by the replay (no pass after it stopped in a canvas, none in a canvas after it ended)."""
    ids, _, seq, tpf, log, s = checked(record)
    canvases = replay(log, s)
    passes = expected_passes(canvases, finished_before_each_canvas(seq, ids.shape[1], len(canvases), eos_ids))
    want = (seq[:, ids.shape[1]:] != PAD).sum(-1).double() / passes.double()
    return torch.allclose(tpf.double(), want, rtol=1e-5, atol=1e-6)


@tiny_only
def test_tokens_per_forward(mixed, unsure):
    for record in (mixed, unsure):
        assert tokens_per_forward_ok(record), (
            "tokens_per_forward is wrong: non-pad generated tokens / decoder passes the row took part "
            "in (not counting passes after it stopped or ended)")


@tiny_only
def test_tokens_per_forward_of_rows_that_ended_earlier(endings):
    """Rows that ended in the first canvas are denoised in the second, where some of them stop
    before the others: none of their passes there counts, before or after they stop."""
    ids, _, seq, _, log, _ = checked(endings)
    ended = finished_before_each_canvas(seq, ids.shape[1], len(canvas_calls(log)), ENDINGS_EOS)
    assert len(ended) == 2 and bool(ended[1].any()) and not bool(ended[1].all()), \
        "expected some rows to end in the first canvas (at ids of the eos list) and one to go on to a second"
    assert tokens_per_forward_ok(endings, ENDINGS_EOS), (
        "tokens_per_forward counts decoder passes of a row in a canvas after the one where it ended (a row "
        "that has ended takes no part in later passes, whether or not it has stopped in that canvas)")


@tiny_only
def test_stops_once_every_row_has_ended(submission, hf_model):
    """Every row ends in the first canvas, and max_new_tokens would allow four: generation stops
    after the first, as transformers' does."""
    prompts = CONFIDENT[:3]
    ids, _, seq, _, log, _ = run(submission, prompts, 20, max_new_tokens=4 * L)
    want, _ = hf_generate(hf_model, prompts, 20, max_new_tokens=4 * L)
    assert seq.shape[1] == want.shape[1] == ids.shape[1] + L and len(log["encoder_tokens"]) == 1, \
        "generation should stop after the canvas in which the last row ended, even when max_new_tokens allows more"
    assert torch.equal(seq, want), "the committed canvas differs from transformers' generate() on confident prompts"


@tiny_only
def test_max_new_tokens_limits_the_canvases(submission):
    ids, _, seq, _, log, _ = run(submission, [count_example(0, 24)[0]], 14, max_new_tokens=L + 4)
    assert seq.shape[1] == ids.shape[1] + 2 * L, \
        "max_new_tokens that is not a multiple of the canvas length must round up to whole canvases"
    assert len(log["encoder_tokens"]) == 2, "expected one encoder pass per canvas"


@tiny_only
def test_same_seed_same_output_different_seed_differs(submission, unsure):
    """The generator drives every draw: the same seed repeats the run (the random starting canvas
    included), another seed starts from another random canvas."""
    _, _, seq, tpf, log, _ = checked(unsure)
    _, _, again, tpf_again, log_again, _ = run(submission, MIXED, 13, max_new_tokens=2 * L, **HOT)
    first = log["decoder"][0]["canvas"]
    assert torch.equal(seq, again) and torch.equal(tpf, tpf_again), "the same generator seed gave different outputs"
    assert torch.equal(first, log_again["decoder"][0]["canvas"]), \
        "the same generator seed gave a different starting canvas (draw it from the generator)"
    _, _, _, _, log_other, _ = run(submission, MIXED, 99, max_new_tokens=2 * L, **HOT)
    assert not torch.equal(first, log_other["decoder"][0]["canvas"]), \
        "different seeds gave the same random starting canvas"


@tiny_only
def test_left_padded_prompts_of_different_lengths_run(submission):
    """Prompts of different lengths come left-padded. A cache that does not know which of the
    model's layers slide (a bare DynamicCache()) makes the model's decoder mask fail on them."""
    short, longer = copy_example([3, 4, 5])[0], copy_example([9, 1, 2, 8, 6, 7])[0]
    checked(run_unchecked(submission, [short], 21, max_new_tokens=L))  # one prompt, no padding
    try:
        record = run_unchecked(submission, [short, longer], 21, max_new_tokens=L)
    except SolverError:
        raise AssertionError(
            "generate raised an error on a left-padded batch of prompts of different lengths, but not on one prompt: "
            "build the cache with the model's config (DynamicCache(config=model.config)) and give the encoder and "
            "decoder the 2D attention masks with the prompt's pads") from None
    ids, _, seq, _, _, _ = checked(record)
    assert torch.equal(seq[:, :ids.shape[1]], ids), "the prompt part of the sequences was changed"


@tiny_only
def test_integer_attention_mask(submission):
    """A 0/1 integer attention_mask means the same as a boolean one: with the same seed, the
    decoder sees the same logits and the outputs are the same."""
    prompts = [copy_example([3, 4, 5])[0], count_example(7, 9)[0], copy_example([9, 1, 2, 8, 6, 7, 10])[0]]
    _, _, seq, tpf, log, _ = checked(run_unchecked(submission, prompts, 22, max_new_tokens=L, **HOT))
    _, _, seq_int, tpf_int, log_int, _ = checked(
        run_unchecked(submission, prompts, 22, mask_dtype=torch.long, max_new_tokens=L, **HOT))
    same_logits = len(log["decoder"]) == len(log_int["decoder"]) and all(
        torch.allclose(a["logits"], b["logits"], rtol=1e-5, atol=1e-5) for a, b in zip(log["decoder"], log_int["decoder"]))
    assert same_logits and torch.equal(seq, seq_int) and torch.allclose(tpf.double(), tpf_int.double()), \
        "a 0/1 integer attention_mask gave other results than the same boolean mask"


@tiny_only
def test_starting_and_renoised_tokens_are_uniform(wide):
    """Each canvas starts from tokens drawn uniformly from the whole vocabulary, and every rejected
    position gets a fresh uniform token: the count of every id (and of id ranges) is checked, each
    check failing a correct solution with probability below ALPHA / 2 (see plausible_count)."""
    _, _, _, _, log, s = checked(wide)
    start, renoised = [], []
    for c in replay(log, s):
        calls = c["calls"]
        start.append(calls[0]["canvas"].flatten())
        for i in range(len(calls) - 1):
            rejected = ~c["accepted"][i] & active_rows(c, i)[:, None]
            renoised.append(calls[i + 1]["canvas"][rejected])
    start, renoised = torch.cat(start), torch.cat(renoised)
    assert renoised.numel() >= 1000, "expected many rejected positions at hot temperatures"
    assert uniform_counts_ok(start, V, ALPHA / 2), \
        "the starting canvas is not uniform over the vocabulary (every id in [0, vocab_size) equally likely)"
    assert uniform_counts_ok(renoised, V, ALPHA / 2), \
        "renoised positions are not uniform over the vocabulary (every id in [0, vocab_size) equally likely)"


def departures_from_argmax(log, s) -> tuple[int, float]:
    """Over every accepted position of live rows: how many hold a token other than the argmax of
    the step's tempered distribution, and how many a draw from that distribution would give."""
    differs, expected = 0, 0.0
    for c in replay(log, s):
        calls = c["calls"]
        for i in range(len(calls) - 1):
            acc = c["accepted"][i] & active_rows(c, i)[:, None]
            p_max, argmax = c["eff"][i]["p_max"], c["eff"][i]["argmax"]
            differs += int((calls[i + 1]["canvas"] != argmax)[acc].sum())
            expected += float((1 - p_max)[acc].sum())
    return differs, expected


@tiny_only
@pytest.mark.points(2)
def test_accepted_positions_are_draws_from_the_tempered_distribution(wide):
    """An accepted position holds a token drawn from softmax(processed logits): it differs from
    the argmax as often as that distribution says. The argmax itself, a fresh uniform token or a
    draw at another temperature are far off; a correct solution fails with probability < ALPHA."""
    _, _, _, _, log, s = checked(wide)
    differs, expected = departures_from_argmax(log, s)
    assert expected >= 50, "expected many accepted positions with spread-out distributions at hot temperatures"
    assert plausible_count(differs, expected, ALPHA), \
        ("accepted positions do not hold draws from softmax(logits / T) at the step's temperature (check the "
         "acceptance rule, and that an accepted position takes the sampled token)")


@pytest.fixture(scope="session")
def zero_bound(submission):
    """A bound of 0, cool temperatures, and rows that never stop: each step accepts only the
    surest position(s) of a row, which the model is nearly certain of."""
    return run_unchecked(submission, MIXED * 4, 21, max_new_tokens=L, entropy_bound=0.0, confidence_threshold=0.0,
                         max_denoising_steps=6)


@tiny_only
def test_a_bound_of_zero_still_accepts_the_surest_position(zero_bound):
    """`cumsum - entropy <= 0` holds for the lowest entropy of a row: one position is accepted at
    every step, and it holds a draw from the tempered distribution (almost always its argmax here)."""
    _, _, _, _, log, s = checked(zero_bound)
    differs, expected = departures_from_argmax(log, s)
    accepted = sum(int((c["accepted"][i] & active_rows(c, i)[:, None]).sum())
                   for c in replay(log, s) for i in range(len(c["calls"]) - 1))
    assert accepted >= 80, "expected one accepted position a row at each step"
    assert plausible_count(differs, expected, ALPHA), \
        "with an entropy bound of 0, the lowest-entropy position of a row is not kept as a draw (check the acceptance rule)"


@tiny_only
def test_sure_positions_take_their_token_up_to_the_last_id(submission):
    """Answers made of the last symbols of the vocabulary (..., y, z): where the tempered
    distribution is all but certain, an accepted position holds that token, whichever id it is
    (the last id of the vocabulary included)."""
    prompts = [copy_example([25] * 9)[0], copy_example([25, 24, 25, 23, 25, 25])[0], count_example(19, 7)[0]]
    _, _, _, _, log, s = checked(run_unchecked(submission, prompts, 33, max_new_tokens=L))
    differs, expected = departures_from_argmax(log, s)
    assert plausible_count(differs, expected, ALPHA), \
        "accepted positions do not hold the token their tempered distribution makes all but certain"


@tiny_only
@pytest.mark.points(2)
def test_rows_that_ended_earlier_are_still_denoised(ended_early):
    """A row that ended in an earlier canvas is denoised like any other row (sampled, accepted,
    renoised, frozen once it stops) and the loop waits for it to stop too; only its committed
    canvas becomes pad."""
    ids, _, seq, _, log, s = checked(ended_early)
    canvases = replay(log, s)
    fin = finished_before_each_canvas(seq, ids.shape[1], len(canvases), eos_ids=[*EOS_IDS, CUT])
    assert len(canvases) >= 2 and bool(fin[1].any()) and not bool(fin[1].all()), \
        "expected one row to end in the first canvas (at an id of the eos list) and another to go on"
    n = same = 0
    for c, before in zip(canvases[1:], fin[1:]):
        calls = c["calls"]
        stop = c["all_stopped_at"]
        want = s["max_denoising_steps"] if stop is None else stop + 1
        assert len(calls) >= want, ("the denoising loop of a later canvas ended before every row had stopped: rows "
                                    "that ended in an earlier canvas are denoised too and count towards it")
        assert len(calls) <= want, "the denoising loop of a later canvas went on after every row had stopped"
        for i in range(len(calls) - 1):
            rejected = ~c["accepted"][i] & (active_rows(c, i) & before)[:, None]
            n += int(rejected.sum())
            same += int((calls[i + 1]["canvas"] == calls[i]["canvas"])[rejected].sum())
    assert same <= n / V + binomial_bound(n, 1 / V), \
        "rows that ended in an earlier canvas were not renoised (they are denoised like any other row)"


@tiny_only
@pytest.mark.points(2)
def test_decoder_reads_the_prompt_and_the_committed_canvases(mixed, ended_early, hf_model):
    """The grader builds the cache the statement describes (the prompt, then each committed canvas
    after the pad replacement, every committed position True in the mask, positions running on)
    and runs the decoder on the canvas and self-conditioning logits the solution passed, at every
    step of every canvas: the logits must be those the solution got."""
    for record in (mixed, ended_early):
        ids, mask, seq, _, log, _ = checked(record)
        assert decoder_logits_match(hf_model, ids, mask, seq, log, L), \
            ("the decoder's logits differ from those of a cache holding the prompt and the committed canvases (after "
             "the pad replacement, all their positions unmasked), with positions that run on from the cache")


@tiny_only
def test_other_stability_and_confidence_thresholds(thresholds):
    """stability_threshold 2 (and 0) and other confidence thresholds: the loop ends right when every
    row is stable and confident, and each row commits the argmax canvas it stopped with."""
    for record in thresholds:
        ids, _, seq, _, log, s = checked(record)
        canvases = replay(log, s)
        for c in canvases:
            stop = c["all_stopped_at"]
            want = s["max_denoising_steps"] if stop is None else stop + 1
            assert len(c["calls"]) == want, ("with another stability_threshold or confidence_threshold, the denoising "
                                             "loop did not end right when every row was stable and confident")
        assert committed_ok(canvases, seq, ids.shape[1]), \
            "a committed canvas is not the argmax canvas the row stopped with (a stopped row keeps its argmax canvas)"


@tiny_only
def test_tokens_per_forward_with_other_thresholds(thresholds):
    """With stability_threshold 0 a row can stop at its first step: such a pass still counts, so a
    row can have taken part in a single decoder pass."""
    for record in thresholds:
        assert tokens_per_forward_ok(record), \
            ("with another stability_threshold or confidence_threshold, tokens_per_forward is not the non-pad generated "
             "tokens divided by the decoder passes the row took part in")


@tiny_only
def test_runs_without_a_generator(submission, hf_model):
    """generator=None draws from torch's global generator; on prompts where the model is confident
    the committed canvases do not depend on the draws."""
    prompts = CONFIDENT[:2]
    ids, mask = left_pad(prompts)
    try:
        out = submission.generate(MODEL, ids, attention_mask=mask, max_new_tokens=L, **DEFAULTS)
    except SolverError:
        raise AssertionError("generate raised an error when called without a generator (generator=None)") from None
    want, _ = hf_generate(hf_model, prompts, 0, max_new_tokens=L)
    seq, _ = check_answer(out, *want.shape, "sequences generated without a generator")
    assert torch.equal(seq, want), \
        "without a generator, committed canvases differ from transformers' generate() where the model is confident"


@tiny_only
def test_stopper_history_starts_afresh_in_each_canvas(submission):
    """The stability check compares with the argmax canvases of the current canvas's loop only. With
    an eos id the model never writes, short answers run three canvases, the last two all padding
    alike: the third must not count as stable at its first step."""
    prompts = [copy_example([3, 4])[0], count_example(5, 7)[0]]
    submission.handle_method("model", "grader_set_eos", [NEVER])
    try:
        _, _, _, _, log, s = run(submission, prompts, 23, max_new_tokens=3 * L)
    finally:
        submission.handle_method("model", "grader_set_eos", EOS_IDS)
    canvases = replay(log, s)
    assert len(canvases) == 3, "with an eos id that never appears, generation should fill every canvas max_new_tokens allows"
    for c in canvases:
        stop = c["all_stopped_at"]
        want = s["max_denoising_steps"] if stop is None else stop + 1
        assert len(c["calls"]) >= want, \
            "a canvas's loop stopped too early: is the stability history carried over from the previous canvas?"
        assert len(c["calls"]) <= want, "the denoising loop went on after every row was stable and confident"


@tiny_only
def test_default_settings(submission):
    """Settings left out take the defaults of the signature (the released generation config):
    max_denoising_steps 48, t_max 0.8, t_min 0.4, entropy_bound 0.1, stability_threshold 1,
    confidence_threshold 0.005. The run is replayed with those values."""
    ids, _, seq, _, log, s = checked(run_with_defaults(submission, GARBLED, 31, max_new_tokens=L))
    canvases = replay(log, s)
    n_rejected = same_argmax = differs = 0
    expected = 0.0
    for c in canvases:
        calls = c["calls"]
        stop = c["all_stopped_at"]
        want = s["max_denoising_steps"] if stop is None else stop + 1
        assert len(calls) == want, \
            "with the default settings, the denoising loop did not end at the default step limit or stopping rule"
        for i in range(1, len(calls)):
            ok = sc_matches(calls[i]["sc"], c["eff"][i - 1]["cols"], log)
            assert ok, ("with the default settings, the self-conditioning logits are not the previous step's logits "
                        "at the default temperature schedule (and stopped rows keep theirs)")
        for i in range(len(calls) - 1):
            active = active_rows(c, i)[:, None]
            rejected = ~c["accepted"][i] & active
            accepted = c["accepted"][i] & active
            p_max, argmax = c["eff"][i]["p_max"], c["eff"][i]["argmax"]
            nxt = calls[i + 1]["canvas"]
            n_rejected += int(rejected.sum())
            same_argmax += int((nxt == argmax)[rejected].sum())
            differs += int((nxt != argmax)[accepted].sum())
            expected += float((1 - p_max)[accepted].sum())
    assert committed_ok(canvases, seq, ids.shape[1]), \
        "with the default settings, a committed canvas is not the argmax canvas of the default stopping rule"
    # Two checks, each failing a correct solution with probability below ALPHA.
    assert same_argmax <= n_rejected / V + binomial_bound(n_rejected, 1 / V), \
        "with the default settings, positions beyond the default entropy bound were accepted instead of renoised"
    assert plausible_count(differs, expected, ALPHA), \
        "with the default settings, positions within the default entropy bound were not accepted with a sample"
    # max_new_tokens defaults to 256: with an eos id the model never writes, every canvas runs.
    prompts = [copy_example([3, 4])[0], count_example(5, 7)[0]]
    submission.handle_method("model", "grader_set_eos", [NEVER])
    try:
        ids, _, seq, _, log, s = checked(run_with_defaults(submission, prompts, 32))
    finally:
        submission.handle_method("model", "grader_set_eos", EOS_IDS)
    assert seq.shape[1] == ids.shape[1] + math.ceil(256 / L) * L, \
        "with max_new_tokens left out, generation should run the canvases of the default max_new_tokens"
    # These answers are sure of themselves: the default stopping rule decides when each loop ends.
    for c in replay(log, s):
        stop = c["all_stopped_at"]
        want = s["max_denoising_steps"] if stop is None else stop + 1
        assert len(c["calls"]) == want, \
            "with the default settings, the denoising loop did not end when the default stopping rule says"


@torch.no_grad()
def decoder_logits_match(model, ids, mask, seq, log, canvas_length) -> bool:
    from transformers import DynamicCache
    import torch.nn.functional as F

    atol = 1e-3 if model.dtype == torch.float32 else 0.25
    prompt_len = ids.shape[1]
    generated = seq[:, prompt_len:]
    cache = DynamicCache(config=model.config)
    mask_2d, new_tokens, cached = mask.bool(), ids, 0
    for c, calls in enumerate(canvas_calls(log)):
        n = new_tokens.shape[1]
        model.model.encoder(input_ids=new_tokens.to(model.device), attention_mask=mask_2d.to(model.device),
                            past_key_values=cache, position_ids=torch.arange(cached, cached + n, device=model.device)[None])
        cached += n
        decoder_mask = F.pad(mask_2d, (0, canvas_length), value=True).to(model.device)
        positions = torch.arange(cached, cached + canvas_length, device=model.device)[None]
        # every later call too where the log holds its whole self-conditioning logits (a small vocabulary)
        whole = [c for c in calls[1:] if c["sc"] is not None and c["sc"].shape[-1] == model.config.text_config.vocab_size]
        for call in [calls[0]] + whole:
            sc = None if call["sc"] is None else call["sc"].to(model.device, model.dtype)
            logits = model(decoder_input_ids=call["canvas"].long().to(model.device), past_key_values=cache,
                           self_conditioning_logits=sc, decoder_attention_mask=decoder_mask,
                           decoder_position_ids=positions).logits[..., log["cols"].to(model.device)]
            if call["logits"] is None or call["logits"].shape != logits.shape:
                return False
            if not torch.allclose(logits.float().cpu(), call["logits"], rtol=0, atol=atol):
                return False
        new_tokens = generated[:, c * canvas_length:(c + 1) * canvas_length]
        if new_tokens.shape[1] != canvas_length:
            return False
        mask_2d = F.pad(mask_2d, (0, canvas_length), value=True)
    return True


@tiny_only
@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU group: needs CUDA on the grading machine")
def test_gpu_agrees_and_reports_tokens_per_second(submission, record_property):
    import time

    prompts = CONFIDENT * 4
    ids, mask = left_pad(prompts)
    t0 = time.perf_counter()
    out = submission.generate(MODEL, ids, attention_mask=mask, max_new_tokens=24, generator=generator(5), **DEFAULTS)
    seconds = time.perf_counter() - t0
    gpu = load_model(model_folder(), "cuda")
    torch.manual_seed(0)
    want = gpu.generate(ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=24).sequences.cpu()
    seq, tpf = check_answer(out, *want.shape, "sequences on the GPU (as long as transformers' generate())")
    generated = int((seq[:, ids.shape[1]:] != PAD).sum())
    record_property("tokens_per_second", generated / seconds)
    assert torch.equal(seq, want), "on the GPU, committed canvases differ from transformers' generate()"
    assert float(tpf.mean()) > 1.0, "on the GPU, fewer than one token per decoder pass"
