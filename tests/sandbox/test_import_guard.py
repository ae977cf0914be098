"""The import guard (runner.sandbox.imports): a submission imports only what its problem allows,
so delegating to transformers' own implementation is `invalid`, while libraries keep importing
what they need. Graded through the real bubblewrap sandbox, except the pure rules at the top."""
import re
import subprocess
import sys

import pytest

from runner.grading.verdicts import HIDDEN_TEXT

from runner.grading.pipeline import grade
from runner.sandbox.imports import Allowed, refused_import
from tests.support.helpers import ROOT, write

LIMITS = {"time_s": 3, "total_s": 40}
GEN = "transformers.models.diffusion_gemma.generation_diffusion_gemma"


# ---------------------------------------------------------------- the rules (no sandbox)

@pytest.mark.parametrize("name,fromlist,level,refused", [
    ("torch", None, 0, None),
    ("torch.nn.functional", None, 0, None),
    ("torch", ("nn",), 0, None),
    ("math", ("*",), 0, None),
    ("__future__", ("annotations",), 0, None),
    ("transformers", ("DynamicCache",), 0, None),
    ("transformers", None, 0, "transformers"),
    ("transformers", ("DynamicCache", "generation"), 0, "transformers.generation"),
    ("transformers", ("*",), 0, "transformers.*"),
    ("transformers.generation", ("GenerationMixin",), 0, "transformers.generation.GenerationMixin"),
    ("sys", None, 0, "sys"),
    ("importlib", None, 0, "importlib"),
    ("builtins", None, 0, "builtins"),
    ("", ("x",), 1, "."),
    ("pkg", None, 2, "..pkg"),
])
def test_what_an_import_statement_binds(name, fromlist, level, refused):
    allowed = Allowed(["torch", "math", "transformers.DynamicCache"])
    assert refused_import(allowed, name, fromlist, level) == refused


def test_single_names_load_their_package_but_do_not_bind_it():
    allowed = Allowed(["torch", "transformers.DynamicCache"])
    assert allowed.loadable("transformers") and not allowed.covers("transformers")
    assert allowed.covers("transformers.DynamicCache") and not allowed.covers("transformers.DynamicCacheX")
    assert not Allowed(["builtins"]).covers("builtins")


# ---------------------------------------------------------------- through the sandbox

def graded(catalogue, tmp_path, key: str, code: str, limits=LIMITS):
    return grade(catalogue.get(key), write(tmp_path / "submission.py", code), "local", limits=limits)


def shown(result, status: str = "invalid") -> list[str]:
    """Messages of tests with `status` that may name the import: visible tests, and every test when
    the refusal came at import time (no hidden input had reached the code). A hidden test's refusal
    inside a call reads as the fixed text, since the solver could spell inputs into a module name."""
    out = []
    for t in result.tests:
        if t.status != status:
            continue
        if t.visibility == "hidden" and t.message.startswith(HIDDEN_TEXT["invalid"]):
            continue
        out.append(t.message)
    return out


def all_invalid(result, *needles: str) -> None:
    """Score 0, every test `invalid`, and every message that may name the import says each needle."""
    assert result.score == 0
    assert {t.status for t in result.tests} == {"invalid"}, {(t.status, t.message[:120]) for t in result.tests}
    messages = shown(result)
    assert messages, "no message names the refused import"
    for message in messages:
        assert all(n in message for n in needles), message


DELEGATING = {
    # refused when the module is imported: the message names the whole import
    "414": (f"""
import torch
from {GEN} import EntropyBoundSampler, EntropyBoundSamplerConfig

def token_entropy(logits):
    return torch.distributions.Categorical(logits=logits.float()).entropy()

def entropy_bound_accept(logits, bound):
    sampler = EntropyBoundSampler(EntropyBoundSamplerConfig(float(bound)), logits.shape[1], logits.shape[2], 1)
    sampler.accept_canvas(logits.argmax(-1), logits.argmax(-1), logits, 1)
    return sampler.accepted_token_mask

def accept_and_renoise(current_canvas, denoiser_canvas, accepted, vocab_size, generator=None):
    noise = torch.randint(0, vocab_size, current_canvas.shape, generator=generator)
    return torch.where(accepted, denoiser_canvas, noise)
""", f"import of {GEN}.EntropyBoundSampler is not allowed in 414-entropy-bounded-sampling (allowed: torch, math)"),
    # refused inside the call that imports: only the top-level module is named there
    "415": (f"""
class StableAndConfident:
    def __init__(self, stability_threshold, confidence_threshold):
        from {GEN} import StableAndConfidentStoppingCriteria
        self.inner = StableAndConfidentStoppingCriteria(stability_threshold, confidence_threshold)

    def __call__(self, argmax_canvas, logits):
        return self.inner(argmax_canvas, logits)

    def reset(self):
        self.inner.reset()
""", "import of transformers.* is not allowed in 415-adaptive-stopping (allowed: torch, math)"),
    "416": (f"""
import torch
from {GEN} import LinearTemperatureScheduleLogitsProcessor

def temperature(cur_step, num_steps, t_min=0.4, t_max=0.8):
    schedule = LinearTemperatureScheduleLogitsProcessor(t_min, t_max, num_steps)
    return float(1.0 / schedule(None, torch.ones(1), cur_step))

def sample_tokens(logits, temperature, generator=None):
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs.flatten(0, 1), 1, generator=generator).view(logits.shape[:2])
""", "is not allowed in 416-temperature-schedule (allowed: torch, math, operator)"),
    "417": ("""
import torch
from transformers import masking_utils

def decoder_attention_mask(prefix_mask, canvas_length, sliding_window=None):
    return masking_utils.sdpa_mask(prefix_mask, canvas_length)

def encoder_attention_mask(attention_mask, image_mask=None):
    return masking_utils.sdpa_mask(attention_mask, attention_mask.shape[1])

def block_diffusion_training_mask(num_canvases, canvas_length):
    return masking_utils.sdpa_mask(None, num_canvases * canvas_length)
""", "import of transformers.masking_utils is not allowed in 417-attention-masking"),
}


@pytest.mark.parametrize("key", sorted(DELEGATING))
def test_delegating_to_transformers_is_invalid(catalogue, tmp_path, key):
    code, message = DELEGATING[key]
    all_invalid(graded(catalogue, tmp_path, key, code), message, "NotAllowed")


def test_the_refused_delegation_is_a_real_one(catalogue, tmp_path):
    """Unguarded (in-process, as `grader test` runs), the 415 delegation earns full marks: the
    guard, not a mistake in it, is what stops it in the sandbox."""
    path = write(tmp_path / "submission.py", DELEGATING["415"][0])
    result = grade(catalogue.get("415"), path, "inprocess", unsafe_inprocess=True)
    assert result.score == result.max_score > 0, [(t.name, t.message[:200]) for t in result.tests if t.status != "passed"]


def test_calling_the_models_own_generate_is_invalid(catalogue, tmp_path):
    """418's `model` handle refuses transformers' sampler inside the sandbox (its grader-only
    methods keep working: every hidden test reads the pass log first)."""
    code = """
import torch

def generate(model, input_ids, attention_mask=None, max_new_tokens=256, max_denoising_steps=48, t_max=0.8,
             t_min=0.4, entropy_bound=0.1, stability_threshold=1, confidence_threshold=0.005, generator=None):
    out = model.generate(input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens)
    return out.sequences, out.tokens_per_forward.float()
"""
    result = graded(catalogue, tmp_path, "418", code, limits={"time_s": 20, "total_s": 300})
    assert result.score == 0
    assert {t.status for t in result.tests} <= {"invalid", "skipped"}, {(t.status, t.message[:120]) for t in result.tests}
    messages = shown(result)
    assert messages
    for message in messages:
        assert "DiffusionGemmaGenerationMixin.generate" in message and "418-full-inference" in message
        assert "write it yourself" in message


def test_importlib_and_dunder_import_inside_functions_are_refused(catalogue, tmp_path):
    ref = catalogue.get("413").solution_file.read_text()
    code = ref + """

def loss_weight(*args, **kwargs):
    return __import__("transformers")

def diffusion_loss(*args, **kwargs):
    import importlib
    return importlib.import_module("transformers")

def corrupt_canvas(tokens, *args, **kwargs):
    try:  # importlib reached through torch's globals (the guard cannot hide it), and the error caught
        torch.importlib.import_module("transformers")
    except ImportError:
        pass
    return tokens
"""
    result = graded(catalogue, tmp_path, "413", code)
    assert result.score < result.max_score
    assert {t.status for t in result.tests} <= {"passed", "invalid"}, {(t.status, t.message[:120]) for t in result.tests}
    refused = {re.search(r"import of (\S+) is not allowed in 413-forward-process \(allowed: torch, math\)", m)
               for m in shown(result)}
    assert refused and None not in refused
    assert {m.group(1) for m in refused} <= {"transformers", "importlib"}


def test_libraries_import_lazily_during_calls(catalogue, tmp_path):
    """torch loads a submodule on the first op dispatch of a mode check (repr), C code imports
    numpy for `.numpy()`, and allowed imports load what they need: full marks, guard or not."""
    lazy = "torch._subclasses.schema_check_mode"
    preloaded = subprocess.run([sys.executable, "-c", f"import sys, torch, runner.sandbox.child; print({lazy!r} in sys.modules)"],
                               capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert preloaded == "False", "pick another lazily imported torch module: this one is loaded at start-up"
    ref = catalogue.get("413").solution_file.read_text()
    code = ref.replace("import torch\n", "import torch\nimport math\n", 1) + f"""

_reference_loss_weight = loss_weight


def loss_weight(*args, **kwargs):
    import torch.distributions  # allowed: torch and everything in it
    from torch.utils import checkpoint  # noqa: F401
    repr(torch.ones(2))  # the first mode check imports {lazy}
    assert float(torch.ones(2).numpy().sum()) < math.pi
    assert {lazy!r} in torch.sys.modules, "the lazy import did not happen"
    return _reference_loss_weight(*args, **kwargs)
"""
    result = graded(catalogue, tmp_path, "413", code)
    assert result.score == result.max_score > 0, [(t.name, t.status, t.message[:200]) for t in result.tests
                                                 if t.status != "passed"]
