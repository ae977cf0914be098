"""Forged replies: the solver's code writes its own frames to the protocol pipe of the sandboxed
process, bypassing the child's encoder, to bend the trusted grader through what it decodes. Each
forgery is a `crashed` verdict ("malformed"), scores zero, and costs the grader bounded time and
memory. Everything goes through the real bubblewrap sandbox, on problem 413."""
import tracemalloc

import pytest
import torch  # noqa: F401 - imported before measuring: the grader has it, the replies' cost is what is measured

from tests.sandbox.test_attacks import LIMITS, charged, grade_attack, submission_with
from runner.grading.verdicts import HIDDEN_TEXT
from tests.support.helpers import problem_copy


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Problem 413, allowing also what the forging code imports: the sandbox is what is tested."""
    return problem_copy(tmp_path_factory.mktemp("root"), "413-forward-process",
                        ["torch", "math", "os", "sys", "fcntl", "stat", "struct", "time", "runner"])

# Inside the sandbox the submission's process answers on a socket to its fork server
# (runner.sandbox.forkserver); without a fork server, on the write-only pipe above 2 that is not
# stderr's. Either way the forged frames reach the trusted grader whole.
FORGE = """
import fcntl, stat, struct, time
from runner.sandbox import wire

def _reply_fd():
    err = os.fstat(2).st_ino
    for fd in range(3, 256):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISSOCK(st.st_mode):
            return fd
        if (stat.S_ISFIFO(st.st_mode) and st.st_ino != err
                and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY):
            return fd
    raise RuntimeError("no reply pipe")

def _send(frame):
    data, fd = memoryview(frame), _reply_fd()
    while data:
        data = data[os.write(fd, data):]
    time.sleep(60)  # the grader must judge the forged reply, not wait for another

def _forge(value, buffers):
    _send(wire.pack_message({"ok": True, "value": value}, buffers))

def _forge_json(text):
    # A header json.dumps could not write (too deep for its recursion), framed by hand.
    body = text.encode()
    _send(wire.MAGIC + struct.pack("<II", len(body), 0) + body)
"""

SHARED_MB = 4
SHARED_NODES = 256  # decoded as before this rule: 256 copies of 4 MiB, 1 GiB in the grader per call
# name: (the body of every function of the submission, what the verdict names)
ATTACKS = {
    "shared-buffer": (f"""
return _forge([{{"__tensor__": 0, "dtype": "uint8", "shape": [{SHARED_MB} << 20]}}] * {SHARED_NODES},
              [bytes({SHARED_MB} << 20)])""", "used by more than one array"),
    # json's scanner recursed until RecursionError, which escaped the grader
    "deep-nesting": ("""
return _forge_json('{"ok": true, "value": ' + "[" * 50_000 + "]" * 50_000 + "}")""", "nesting deeper than 64"),
    # held nothing, so passed the size check; a test looping over the first dimension never ends
    "zero-element-dimension": ("""
return _forge({"__tensor__": 0, "dtype": "float32", "shape": [2 ** 59, 0]}, [b""])""", "dimension over"),
}
MAX_WALL_S = 150  # every test restarts the sandboxed process (about 5 s each on a busy machine)
# What grade() may allocate (tracemalloc, torch already imported): pytest's own run, about 10 MiB,
# plus one reply and one copy of its buffer at a time. Measured: 17.5 MiB for the shared-buffer
# forgery; 3085 MiB (and 1 GiB still held at the end) when every node got its own copy.
GRADER_PEAK_MB = 48


def forged(body: str) -> str:
    """A submission to 413 whose every function runs `body` with FORGE's helpers at hand."""
    return submission_with(body, prelude=FORGE)


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_forged_reply_is_a_malformed_crash(catalogue, tmp_path, attack):
    """A forged reply is `crashed` "malformed" for every test, scores zero, in bounded time and
    bounded grader memory."""
    tracemalloc.start()
    try:
        body, fragment = ATTACKS[attack]
        result, elapsed = grade_attack(catalogue, tmp_path, forged(body), LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    tests = charged(result, "crashed")
    # the reason is shown where the inputs are public; a hidden test shows the fixed text
    visible = [t.message for t in tests if t.visibility == "visible"]
    assert visible and all("malformed" in m and fragment in m for m in visible), set(visible)
    assert all(t.message == HIDDEN_TEXT["crashed"] for t in tests if t.visibility == "hidden")
    print(f"{attack}: {len(tests)} tests, {elapsed:.1f} s, grader peak {peak / 2**20:.1f} MiB")
    assert elapsed < MAX_WALL_S
    assert peak < GRADER_PEAK_MB << 20, f"the grader allocated {peak / 2**20:.0f} MiB"
