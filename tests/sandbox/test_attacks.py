"""Hostile submissions to problem 413 are contained: each scores zero with the right verdicts and
the grader returns in bounded time. Every attack runs through both real backends, `local`
(bubblewrap) and `docker` (a container of the worker image; the docker_engine fixture starts an
engine, or those cases skip with the reason), which must give the same verdicts.

The sandbox, not the import guard, is what contains them: the attacks run on a copy of 413 that
allows the modules they use, as code that got past the guard could (tests/sandbox/test_import_guard.py
tests the guard)."""
import os
import socket
import threading
import time

import pytest

from runner.grading.verdicts import HIDDEN_TEXT
from tests.support.helpers import problem_copy, write

FUNCTIONS = ["sample_noise_level", "corrupt_canvas", "loss_weight", "diffusion_loss"]
LIMITS = {"time_s": 3, "total_s": 40}
# For code that never returns: a few calls stopped by the per-call limit, then the total budget.
HANGING = {"time_s": 3, "total_s": 12}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Problem 413, allowing also the modules the attacks import."""
    return problem_copy(tmp_path_factory.mktemp("root"), "413-forward-process",
                        ["torch", "math", "os", "sys", "socket", "importlib"])


@pytest.fixture(params=["local", "docker"])
def backend(request):
    """The sandbox backend an attack runs through."""
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return request.param


def submission_with(body: str, prelude: str = "") -> str:
    """A module whose every function of 413 runs `body`."""
    funcs = "\n".join(f"def {name}(*args, **kwargs):\n    return _attack()\n" for name in FUNCTIONS)
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"import os, sys\n{prelude}\n\ndef _attack():\n{indented}\n\n{funcs}"


def grade_attack(catalogue, tmp_path, code: str, limits=LIMITS, backend="local"):
    from runner.grading.pipeline import grade

    pdir = catalogue.get("413")
    path = write(tmp_path / "attack.py", code)
    t0 = time.monotonic()
    result = grade(pdir, path, backend, limits=limits)
    return result, time.monotonic() - t0


def statuses(result) -> set[str]:
    return {t.status for t in result.tests}


def charged(result, verdict: str) -> list:
    """Every test gets `verdict` (also a test that catches exceptions to check that bad input
    raises: a timeout or crash it swallowed is still reported) and the score is zero."""
    assert result.score == 0
    assert statuses(result) == {verdict}, statuses(result)
    return result.tests


def test_reference_full_marks_and_starter_zero(catalogue, backend):
    from runner.grading.pipeline import grade

    pdir = catalogue.get("413-forward-process")
    ref = grade(pdir, pdir.solution_file, backend)
    assert ref.score == ref.max_score > 0, [t for t in ref.tests if t.status != "passed"]
    assert any(t.visibility == "hidden" for t in ref.tests)
    starter = grade(pdir, pdir.starter, backend)
    assert starter.score == 0
    assert statuses(starter) <= {"error", "failed"}
    errors = [t for t in starter.tests if t.status == "error"]
    assert len(errors) > len(starter.tests) // 2
    # the exception is named where the inputs are public; a hidden test shows a fixed text
    assert all("NotImplementedError" in t.message for t in errors if t.visibility == "visible")
    assert all(t.message.startswith(HIDDEN_TEXT["error"]) for t in errors if t.visibility == "hidden")


def test_network_is_unreachable(catalogue, tmp_path, backend):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    connections = []

    def accept():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            try:
                connections.append(server.accept())
            except OSError:
                pass

    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    code = submission_with(f"""
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
s.sendall(b"leak")
return 1.0
""")
    try:
        result, elapsed = grade_attack(catalogue, tmp_path, code, backend=backend)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert connections == [], "the sandbox reached a server on the host's loopback"
    hits = charged(result, "error")
    shown = [t.message for t in hits if t.visibility == "visible"]
    assert shown and all(m.startswith(("ConnectionRefusedError", "OSError")) for m in shown), shown


def test_only_the_loopback_interface(catalogue, tmp_path, backend):
    # The solver's exception message is shown for visible tests: it carries the interfaces it sees.
    code = submission_with("""
import socket
raise RuntimeError("interfaces=" + ",".join(sorted(name for _, name in socket.if_nameindex())))
""")
    result, _ = grade_attack(catalogue, tmp_path, code, backend=backend)
    shown = [t.message for t in charged(result, "error") if t.visibility == "visible"]
    assert shown and all("interfaces=lo" in m and "interfaces=lo," not in m for m in shown), shown


@pytest.mark.parametrize("folder", ["solutions", "graders"])
def test_cannot_read_solutions_or_graders(catalogue, tmp_path, folder, backend):
    pdir = catalogue.get("413")
    target = pdir.solution_file if folder == "solutions" else pdir.grader_dir / "test_hidden.py"
    # If the file were readable, the submission would run the reference and score full marks.
    code = submission_with(
        body="raise RuntimeError('unreachable')",
        prelude=f"""
import importlib.util
for _candidate in [{str(target)!r}, os.path.join("..", "{folder}", "{pdir.key}", "{target.name}"),
                   os.path.join(os.path.dirname(__file__), "..", "..", "{folder}", "{pdir.key}", "{target.name}")]:
    with open(_candidate) as _f:   # raises FileNotFoundError inside the sandbox
        _text = _f.read()
    _spec = importlib.util.spec_from_file_location("stolen", _candidate)
    _mod = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(_mod)
    globals().update({{k: getattr(_mod, k) for k in dir(_mod) if not k.startswith("_")}})
    break
""")
    result, _ = grade_attack(catalogue, tmp_path, code, backend=backend)
    assert all("FileNotFoundError" in t.message for t in charged(result, "invalid"))


def _sandbox_user_processes() -> int:
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == 65534:
                    count += 1
            except FileNotFoundError:
                pass
    return count


def test_fork_bomb(catalogue, tmp_path, backend):
    code = submission_with("""
while True:
    try:
        os.fork()
    except OSError:
        pass
""")
    result, elapsed = grade_attack(catalogue, tmp_path, code, HANGING, backend=backend)
    charged(result, "timeout")
    assert elapsed < 120
    time.sleep(1)
    if os.getuid() == 0:
        assert _sandbox_user_processes() == 0, "forked processes outlived the sandbox"


def test_unbounded_allocation(catalogue, tmp_path, backend):
    code = submission_with("""
hoard = []
while True:
    hoard.append(bytearray(50 * 1024 * 1024))
""")
    # What is tested is that the address-space limit stops it, not the limit's size: 1 GiB (torch
    # maps about 0.6 GiB) instead of 413's 4 GiB, because faulting in gigabytes takes seconds per
    # call on a slow machine and 17 tests of it could spend the whole time budget. A longer limit
    # per call, so that the memory limit, not the clock, ends each call.
    limits = {"time_s": 15, "total_s": 120, "memory_mb": 1024}
    result, elapsed = grade_attack(catalogue, tmp_path, code, limits=limits, backend=backend)
    charged(result, "memory")
    assert elapsed < 180


def test_infinite_loop(catalogue, tmp_path, backend):
    code = submission_with("while True:\n    pass")
    result, elapsed = grade_attack(catalogue, tmp_path, code, HANGING, backend=backend)
    charged(result, "timeout")
    # 3 s per call until the 12 s budget is spent, then every remaining test is charged at once
    assert elapsed < 90
    assert any("total time budget" in t.message for t in result.tests)


def test_cpu_limit_per_call(catalogue, tmp_path, backend):
    # A wall clock longer than the CPU allowance, so that the CPU rlimit is what stops each call.
    limits = {"time_s": 30, "cpu_s": 2, "total_s": 12}
    code = submission_with("while True:\n    pass")
    result, elapsed = grade_attack(catalogue, tmp_path, code, limits, backend=backend)
    charged(result, "timeout")
    assert any("CPU time limit (2 s)" in t.message for t in result.tests)
    assert elapsed < 120


def test_stdout_flood(catalogue, tmp_path, backend):
    code = submission_with("""
line = "x" * 65536
while True:
    print(line)
    os.write(2, line.encode())
""")
    result, elapsed = grade_attack(catalogue, tmp_path, code, HANGING, backend=backend)
    charged(result, "timeout")
    assert elapsed < 90


def test_exit_during_call(catalogue, tmp_path, backend):
    result, elapsed = grade_attack(catalogue, tmp_path, submission_with("os._exit(0)"), backend=backend)
    crashed = charged(result, "crashed")
    assert all("exited with status 0" in t.message for t in crashed if t.visibility == "visible")
    assert all(t.message == HIDDEN_TEXT["crashed"] for t in crashed if t.visibility == "hidden")
    assert elapsed < 90


def test_exit_at_import_is_invalid(catalogue, tmp_path, backend):
    code = "import os\nos._exit(0)\n" + submission_with("return 0")
    result, _ = grade_attack(catalogue, tmp_path, code, backend=backend)
    charged(result, "invalid")
