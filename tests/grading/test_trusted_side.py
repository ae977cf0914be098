"""The trusted side holds against submissions that aim at it: import time is charged, hidden
messages carry nothing the solver's code can shape, and the tests' own code runs under a clock.
All through the real sandbox."""
import re
import tempfile
import time
from pathlib import Path

from runner.authoring.scaffold import scaffold_problem
from runner.grading.pipeline import grade
from runner.grading.verdicts import HIDDEN_TEXT
from runner.problems.catalogue import Catalogue
from tests.support.helpers import ROOT, problem_copy, write

FUNCTIONS = ["sample_noise_level", "corrupt_canvas", "loss_weight", "diffusion_loss"]


def module(body: str, prelude: str = "") -> str:
    """A submission of 413 whose every function runs `body` (with `args` bound)."""
    funcs = "\n".join(f"def {name}(*args, **kwargs):\n    return _attack(args)\n" for name in FUNCTIONS)
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"import os, sys, time, torch\n{prelude}\n\ndef _attack(args):\n{indented}\n\n{funcs}"


def grade_413(catalogue, tmp_path, code: str, **limits):
    # 413 with the imports these attacks use allowed: what is tested here is the trusted side
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    pdir = problem_copy(root, "413-forward-process", ["torch", "math", "os", "sys", "time"]).get("413")
    path = write(tmp_path / "attack.py", code)
    t0 = time.monotonic()
    result = grade(pdir, path, "local", limits={"time_s": 3, "total_s": 40, **limits})
    return result, time.monotonic() - t0


def test_import_time_counts_against_the_budget(catalogue, tmp_path):
    # Sleeps at import, dies in every call: each test would import it again, for free.
    result, elapsed = grade_413(catalogue, tmp_path, module("os._exit(3)", prelude="time.sleep(2)"), total_s=6)
    assert result.score == 0
    budget = [t for t in result.tests if t.status == "timeout"]
    assert len(budget) >= len(result.tests) // 2, [t.status for t in result.tests]
    # 6 s of budget, and at most a few sandbox start-ups (not charged) before it runs out.
    assert elapsed < 6 + 4 * 8, elapsed


def hidden(result):
    return [t for t in result.tests if t.visibility == "hidden"]


def test_hidden_errors_show_a_fixed_text_and_line_numbers(catalogue, tmp_path):
    leak = 'raise type("Leak" + str(abs(hash(repr(args))) % 10**9), (Exception,), {})(repr(args))'
    result, _ = grade_413(catalogue, tmp_path, module(leak))
    assert result.score == 0
    for t in hidden(result):
        assert t.status == "error"
        assert re.fullmatch(re.escape(HIDDEN_TEXT["error"]) + r" \(at line \d+ of your file\)", t.message), t.message
    assert any("Leak" in t.message for t in result.tests if t.visibility == "visible")


def test_line_numbers_spell_nothing(catalogue, tmp_path):
    # Code objects may claim any first line: a chain of frames whose lines spell the inputs.
    spell = """
def bottom():
    raise RuntimeError("x")
fn = bottom
for byte in repr(args).encode()[:40]:
    code = _hop.__code__.replace(co_firstlineno=1000 + byte)
    fn = (lambda f, prev: (lambda: f(prev)))(type(_hop)(code, globals()), fn)
fn()
"""
    code = module(spell, prelude="def _hop(nxt):\n    return nxt()\n")
    result, _ = grade_413(catalogue, tmp_path, code)
    lines = len(code.splitlines())
    assert result.score == 0
    for t in hidden(result):
        shown = [int(n) for n in re.findall(r"\d+", t.message)]
        assert len(shown) <= 1 and all(1 <= n <= lines for n in shown), t.message


def test_frames_forged_as_the_sandboxs_own_are_not_relayed(catalogue, tmp_path):
    # The child writes, on its socket to the fork server, a death notice and an "unavailable" frame
    # (which the grader would take for its installation failing, with the inputs in its message).
    forge = """
fd = None
for n in os.listdir("/proc/self/fd"):
    try:
        fd = int(n) if os.readlink(f"/proc/self/fd/{n}").startswith("socket:") else fd
    except OSError:
        pass  # the listing's own descriptor, closed by now
wire = sys.modules["runner.sandbox.wire"]
os.write(fd, wire.pack_message({"ok": False, "died": {"status": 1}}, [])
         + wire.pack_message({"ok": False, "kind": "unavailable", "message": "LEAKED " + repr(args)}, []))
time.sleep(60)
"""
    result, _ = grade_413(catalogue, tmp_path, module(forge))  # a grader failure would raise here
    assert result.score == 0 and {t.status for t in result.tests} == {"crashed"}, \
        [(t.status, t.message[:120]) for t in result.tests]
    assert not any("LEAKED" in t.message or "Error" in t.message for t in result.tests)


def test_hidden_memory_and_exit_status_carry_nothing(catalogue, tmp_path):
    result, _ = grade_413(catalogue, tmp_path, module("raise MemoryError(repr(args))"))
    for t in hidden(result):
        assert re.fullmatch(re.escape(HIDDEN_TEXT["memory"]) + r"( \(at line [\d, ]+ of your file\))?", t.message)
    result, _ = grade_413(catalogue, tmp_path, module("os._exit(len(repr(args)) % 100 + 1)"))
    assert {t.status for t in hidden(result)} == {"crashed"}
    assert {t.message for t in hidden(result)} == {HIDDEN_TEXT["crashed"]}


def test_hidden_checks_do_not_echo_returned_shapes(catalogue, tmp_path):
    # A zero-element tensor whose shape spells the inputs' size costs nothing to return.
    shape = "(0, 1000 + len(repr(args)) % 997)"
    result, _ = grade_413(catalogue, tmp_path, module(f"return torch.zeros{shape}"))
    assert result.score == 0
    for t in hidden(result):
        assert not re.search(r"\d{4}", t.message), t.message  # no solver-chosen numbers


def scaffolded(tmp_path, hidden_test: str):
    root = tmp_path / "root"
    scaffold_problem(root, 901, "clock", "Clock")
    write(root / "graders" / "901-clock" / "test_hidden.py", hidden_test)
    return Catalogue(root).get("901")


def test_the_tests_own_code_runs_under_a_clock(tmp_path):
    pdir = scaffolded(tmp_path, '''
import torch


def test_loops_over_the_result(submission):
    submission.solve(torch.ones(2))
    while True:
        pass


def test_swallows_the_timeout_and_loops_again(submission):
    submission.solve(torch.ones(2))
    try:
        while True:
            pass
    except BaseException:
        pass
    while True:
        pass


def test_fine(submission):
    assert submission.solve(torch.ones(2)).tolist() == [2.0, 2.0]
''')
    t0 = time.monotonic()
    result = grade(pdir, pdir.solution_file, "local", limits={"time_s": 2, "check_s": 1})
    elapsed = time.monotonic() - t0
    verdicts = {t.name: t.status for t in result.tests}
    assert verdicts == {"test_example": "passed", "test_loops_over_the_result": "timeout",
                        "test_swallows_the_timeout_and_loops_again": "timeout", "test_fine": "passed"}
    assert elapsed < 60, elapsed


def reference_of_418_with(before: str, t_min: str = "t_min") -> str:
    """418's reference, its generate wrapped: the wrapper runs `before` (lines using `model`, the
    settings), then the reference with `t_min` as its t_min."""
    solution = (ROOT / "solutions" / "418-full-inference" / "solution.py").read_text()
    body = "\n".join("    " + line for line in before.strip().splitlines())
    return solution.replace("def generate(", "def _generate(", 1) + f'''

def generate(model, input_ids, attention_mask=None, max_new_tokens=256, max_denoising_steps=48, t_max=0.8,
             t_min=0.4, entropy_bound=0.1, stability_threshold=1, confidence_threshold=0.005, generator=None):
{body}
    return _generate(model, input_ids, attention_mask, max_new_tokens, max_denoising_steps, t_max, {t_min},
                     entropy_bound, stability_threshold, confidence_threshold, generator)
'''


def test_a_handle_method_replaced_by_the_submission_is_not_what_the_grader_calls(catalogue, tmp_path):
    """418's hidden tests read the model's pass log through its grader_* methods. A submission
    that replaces them on the model (no logging, an empty log, eos ids left alone) changes nothing
    the grader sees: those methods were taken from the handle before any solver code ran. Here the
    reference does it, and keeps full marks; through the replaced methods the grader would see
    no decoder pass at all."""
    code = reference_of_418_with("""
model.grader_log_passes = lambda *args, **kwargs: None
model.grader_take_log = lambda: {"encoder_tokens": [], "decoder": [], "cols": None, "overflow": False,
                                 "dropped": 0, "dtype": "torch.float32"}
model.grader_set_eos = lambda ids: None
""")
    result = grade(catalogue.get("418"), write(tmp_path / "patched.py", code), "local")
    assert result.score == result.max_score > 0, [(t.name, t.status, t.message[:160]) for t in result.tests
                                                  if t.status not in ("passed", "skipped")]


def test_a_pass_log_bent_to_a_wrong_sampler_is_caught(catalogue, tmp_path):
    """A wrong sampler (no temperature schedule: t_max at every step) that also makes the model's
    pass log score its passes at that temperature, so that the grader's replay of the log would
    agree with it: the log then contradicts its own logits at the schedule the grader asked for,
    and every test that reads it says so."""
    code = reference_of_418_with("model.grader_log.schedule = (max_denoising_steps, t_max, t_max)", t_min="t_max")
    result = grade(catalogue.get("418"), write(tmp_path / "bent.py", code), "local")
    caught = [t for t in result.tests if "record of the decoder passes contradicts itself" in t.message]
    ran = [t for t in result.tests if t.status != "skipped"]
    assert len(caught) >= len(ran) // 2, [(t.name, t.status, t.message[:100]) for t in ran]
    assert result.score < result.max_score / 2
