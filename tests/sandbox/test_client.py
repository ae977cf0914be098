"""SandboxClient, the trusted side's pipe to the sandboxed process: deadlines, deaths, broken
replies and budgets become the right verdict exceptions in bounded time. Every case runs a real
subprocess (a fake of runner.sandbox.child that speaks, or breaks, the wire protocol)."""
import sys
import textwrap
import time

import pytest

from runner.sandbox.backends import LaunchSpec, SandboxUnavailable
from runner.sandbox.client import SandboxClient
from runner.sandbox.failures import (SolverCrashed, SolverError, SolverFailure, SolverMemory, SolverTimeout,
                                     SubmissionInvalid)
from runner.sandbox.proxies import RemoteObject
from tests.support.helpers import ROOT

LIMITS = {"time_s": 1, "total_s": 30, "cpu_s": 5, "memory_mb": 4096, "processes": 64, "file_size_mb": 16}
SLACK_S = 3.0  # what a loaded machine may add to a deadline before the call must be back

# A stand-in for runner.sandbox.child. argv[1] is its mode for start-up and load; each call's first
# argument says what to do with that call.
FAKE_CHILD = textwrap.dedent(f"""
    import os, resource, signal, sys, time
    sys.path.insert(0, {str(ROOT)!r})
    from runner.sandbox import wire

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files from the signal cases
    mode = sys.argv[1]
    rin, rout = sys.stdin.buffer, sys.stdout.buffer

    def reply(header, buffers=()):
        wire.write_message(rout, header, list(buffers))

    if mode == "silent":
        time.sleep(3600)
    reply({{"ok": True, "ready": mode != "notready"}})
    objects = {{}}
    while (msg := wire.read_message(rin)) is not None:
        req, bufs = msg
        op = req.get("op")
        if op == "load":
            if mode == "badload":
                reply({{"ok": False, "kind": "error", "type": "ImportError", "message": "no module named nonsense",
                       "frames": []}})
            else:
                reply({{"ok": True, "value": None}})
            continue
        if op == "release":
            objects.pop(req.get("ref"), None)
            reply({{"ok": True, "value": None}})
            continue
        target = req.get("target")
        if isinstance(target, dict):  # a method of an object this process keeps
            if target.get("ref") in objects:
                reply({{"ok": True, "value": [req.get("method"), target["ref"]]}})
            else:
                reply({{"ok": False, "kind": "protocol", "message": "that object no longer exists"}})
            continue
        args = wire.decode(req["args"], bufs)
        action = args[0]
        if action == "echo":
            reply({{"ok": True, "value": req["args"]}}, bufs)
        elif action == "hang":
            time.sleep(3600)
        elif action == "close_stdout":
            os.close(1)
            time.sleep(3600)
        elif action == "exit":
            rout.flush()
            os._exit(args[1])
        elif action == "signal":
            sig = getattr(signal, args[1])
            if sig != signal.SIGKILL:
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            time.sleep(3600)
        elif action == "garbage":
            rout.write(b"NOT A FRAME, JUST SOME BYTES\\n")
            rout.flush()
            time.sleep(3600)
        elif action == "fail":
            reply({{"ok": False, "kind": args[1], "type": "ValueError", "message": "x must be positive",
                   "frames": [{{"line": 7, "function": "solve", "code": "raise ValueError('x must be positive')"}}]}})
        elif action == "sleep":
            time.sleep(args[1])
            reply({{"ok": True, "value": req["args"]}})
        elif action == "flood":
            chunk = b"x" * 65536
            for _ in range(args[1] // len(chunk)):
                os.write(2, chunk)
            os.write(2, b"END-OF-FLOOD")
            reply({{"ok": True, "value": "flooded"}})
        elif action == "remote":
            ref = len(objects) + 1
            objects[ref] = object()
            reply({{"ok": True, "value": wire.encode(wire.RemoteRef(ref, "Counter"), [])}})
        elif action == "bad_value":
            reply({{"ok": True, "value": {{"__pickle__": "cos\\nsystem"}}}})
        else:
            reply({{"ok": False, "kind": "protocol", "message": "unknown action " + repr(action)}})
""")


class FakeBackend:
    """Starts FAKE_CHILD in place of the sandboxed process."""

    name = "fake"

    def __init__(self, mode: str = "serve"):
        self.mode = mode
        self.commands = 0

    def command(self, spec: LaunchSpec) -> list[str]:
        self.commands += 1
        return [sys.executable, "-c", FAKE_CHILD, self.mode]


@pytest.fixture
def make_client(tmp_path):
    """A started client over FakeBackend(mode) with LIMITS updated by `limits`; disposed afterwards."""
    clients: list[SandboxClient] = []

    def make(mode: str = "serve", **limits) -> SandboxClient:
        folder = tmp_path / f"submission-{len(clients)}"
        folder.mkdir()
        client = SandboxClient(FakeBackend(mode), LaunchSpec(folder, {**LIMITS, **limits}), functions=[],
                               handles={})
        clients.append(client)
        client.set_submission("def solve(x):\n    return x\n")
        client.start()
        return client

    yield make
    for client in clients:
        proc = client.proc
        client.dispose()
        assert proc is None or proc.poll() is not None, "a fake sandboxed process outlived its client"


def timed_failure(client: SandboxClient, *args) -> tuple[SolverFailure, float]:
    """The failure `client.call("solve", None, args, {})` raises, and the seconds it took to raise it."""
    t0 = time.monotonic()
    with pytest.raises(SolverFailure) as info:
        client.call("solve", None, args, {})
    return info.value, time.monotonic() - t0


def test_well_behaved_process_returns_values_and_counts_calls(make_client):
    """Replies of a process that follows the protocol come back decoded, and every call is counted."""
    client = make_client()
    assert client.call("solve", None, ("echo", 1, 2.5, (3, "x")), {}) == ["echo", 1, 2.5, (3, "x")]
    assert client.call("solve", None, ("echo", None), {}) == ["echo", None]
    assert client.calls == 2
    assert client.generation == 1 and client.proc.poll() is None
    assert client.ready == {"ok": True, "ready": True}
    assert 0 < client.spent_s < 2 * SLACK_S


def test_silent_call_times_out_kills_and_next_call_restarts(make_client):
    """A call with no answer is SolverTimeout at time_s; the process is killed and the next call gets a fresh one."""
    client = make_client()
    assert client.call("solve", None, ("echo", 0), {}) == ["echo", 0]
    first = client.proc
    exc, elapsed = timed_failure(client, "hang")
    assert type(exc) is SolverTimeout
    assert "no answer within 1 s during the call" in exc.message
    assert 1.0 <= elapsed < 1.0 + SLACK_S
    assert first.poll() is not None, "the overrunning process was left running"
    assert client.call("solve", None, ("echo", 1), {}) == ["echo", 1]
    assert client.generation == 2 and client.proc is not first and client.proc.poll() is None


@pytest.mark.parametrize("args, cls, fragment", [
    (("exit", 3), SolverCrashed, "exited with status 3 during the call"),
    (("signal", "SIGSEGV"), SolverCrashed, "died of signal SIGSEGV during the call"),
    (("signal", "SIGKILL"), SolverMemory, "killed (out of memory?) during the call"),
    (("signal", "SIGXCPU"), SolverTimeout, "CPU time limit (5 s) exceeded during the call"),
], ids=["exit-3", "SIGSEGV", "SIGKILL", "SIGXCPU"])
def test_death_during_a_call_is_classified(make_client, args, cls, fragment):
    """A process that exits or dies of a signal mid-call gives the verdict its status implies, at once."""
    client = make_client()
    exc, elapsed = timed_failure(client, *args)
    assert type(exc) is cls, exc
    assert fragment in exc.message
    assert elapsed < SLACK_S  # the death is noticed, not waited out
    assert client.proc.poll() is not None
    assert client.call("solve", None, ("echo", "after"), {}) == ["echo", "after"]
    assert client.generation == 2


def test_garbage_instead_of_a_frame_is_a_crash(make_client):
    """Bytes that are not a frame (bad magic) are SolverCrashed 'malformed reply' and the process is killed."""
    client = make_client()
    exc, elapsed = timed_failure(client, "garbage")
    assert type(exc) is SolverCrashed
    assert "malformed reply" in exc.message and "bad frame magic" in exc.message
    assert elapsed < SLACK_S
    assert client.proc.poll() is not None, "the process that broke the protocol was left running"


def test_undecodable_value_is_a_crash(make_client):
    """A well-framed reply whose value the wire refuses (an unknown tag) is SolverCrashed, process killed."""
    client = make_client()
    exc, _ = timed_failure(client, "bad_value")
    assert type(exc) is SolverCrashed
    assert "malformed return value" in exc.message and "unknown node" in exc.message
    assert "__pickle__" not in exc.message  # nothing the sandboxed code sent is echoed into a verdict
    assert client.proc.poll() is not None


def test_error_reply_is_solver_error_with_type_message_and_frames(make_client):
    """ok=false kind=error is SolverError with the exception's type, message and frames; the process lives on."""
    client = make_client()
    exc, _ = timed_failure(client, "fail", "error")
    assert type(exc) is SolverError
    assert exc.message == "ValueError: x must be positive"
    assert "line 7, in solve" in exc.detail and "raise ValueError('x must be positive')" in exc.detail
    assert client.proc.poll() is None and client.generation == 1
    assert client.call("solve", None, ("echo", 2), {}) == ["echo", 2]
    assert client.generation == 1


def test_protocol_reply_is_a_crash(make_client):
    """ok=false kind=protocol is SolverCrashed 'broke the protocol', not the solver's own error."""
    client = make_client()
    exc, _ = timed_failure(client, "fail", "protocol")
    assert type(exc) is SolverCrashed
    assert "broke the protocol" in exc.message


def test_total_budget_is_enforced_without_contacting_the_process(make_client):
    """Once calls have spent total_s, the next call is SolverTimeout 'total time budget' at once, unsent."""
    client = make_client(time_s=3, total_s=1.5)
    for _ in range(2):
        assert client.call("solve", None, ("sleep", 0.8), {}) == ["sleep", 0.8]
    assert client.spent_s >= 1.5
    proc, calls = client.proc, client.calls
    exc, elapsed = timed_failure(client, "echo", 3)
    assert type(exc) is SolverTimeout
    assert "total time budget (1.5 s)" in exc.message
    assert elapsed < 0.5
    assert client.calls == calls and client.proc is proc and proc.poll() is None and client.generation == 1


def test_load_failure_is_invalid_and_remembered(make_client):
    """A load op answered with an error is SubmissionInvalid; the next call raises it again without a restart."""
    client = make_client("badload")
    exc, elapsed = timed_failure(client, "echo", 1)
    assert type(exc) is SubmissionInvalid
    assert exc.message == "ImportError: no module named nonsense"
    assert elapsed < SLACK_S
    assert client.proc.poll() is not None  # nothing more is asked of a process that cannot load
    again, elapsed = timed_failure(client, "echo", 2)
    assert type(again) is SubmissionInvalid and again is not exc
    assert again.message == exc.message
    assert elapsed < 0.5
    assert client.generation == 1 and client.backend.commands == 1 and client.calls == 0


def test_startup_silence_is_the_graders_failure_and_is_remembered(make_client):
    """A process that never sends its start-up message is the grader's failure (SandboxUnavailable,
    not a verdict) at STARTUP_S, remembered for later calls."""
    client = make_client("silent")
    client.STARTUP_S = 1.0
    seen = []
    client.observer = seen.append
    t0 = time.monotonic()
    with pytest.raises(SandboxUnavailable, match="did not start .*during starting.*installation"):
        client.call("solve", None, ("echo", 1), {})
    assert 1.0 <= time.monotonic() - t0 < 1.0 + SLACK_S
    assert client.proc.poll() is not None and len(seen) == 1
    t0 = time.monotonic()
    with pytest.raises(SandboxUnavailable):
        client.call("solve", None, ("echo", 2), {})
    assert time.monotonic() - t0 < 0.5 and client.generation == 1


def test_not_ready_process_is_the_graders_failure(make_client):
    """A start-up message without ready=true is the grader's failure, never the submission's."""
    client = make_client("notready")
    with pytest.raises(SandboxUnavailable, match="not ready"):
        client.call("solve", None, ("echo", 1), {})


def test_observer_sees_timeouts_but_not_the_solvers_own_errors(make_client):
    """The observer is told of a timeout (and a crash), never of a SolverError the solver raised itself."""
    client = make_client()
    seen: list[SolverFailure] = []
    client.observer = seen.append
    with pytest.raises(SolverError):
        client.call("solve", None, ("fail", "error"), {})
    assert seen == []
    with pytest.raises(SolverTimeout) as timeout:
        client.call("solve", None, ("hang",), {})
    assert seen == [timeout.value]
    with pytest.raises(SolverCrashed) as crash:
        client.call("solve", None, ("exit", 3), {})
    assert seen == [timeout.value, crash.value]
    client.call("solve", None, ("echo",), {})
    assert len(seen) == 2


def test_remote_object_of_a_dead_generation_is_lost(make_client):
    """A RemoteObject from before a restart raises SolverCrashed 'lost', told to the observer, without a call."""
    client = make_client()
    seen: list[SolverFailure] = []
    client.observer = seen.append
    obj = client.call("solve", None, ("remote",), {})
    assert isinstance(obj, RemoteObject) and repr(obj) == "<remote Counter>"
    assert obj.step(1) == ["step", 1]  # its methods run in the process that holds it
    with pytest.raises(SolverCrashed):
        client.call("solve", None, ("exit", 3), {})
    assert client.call("solve", None, ("echo",), {}) == ["echo"]  # restarts: generation 2
    assert client.generation == 2
    seen.clear()
    calls = client.calls
    with pytest.raises(SolverCrashed, match="lost when the sandboxed process restarted") as info:
        obj.step(2)
    assert seen == [info.value]
    assert client.calls == calls  # refused before anything was sent


def test_remote_object_built_with_a_stale_generation_is_lost(make_client):
    """RemoteObject checks its generation against the client's before sending anything."""
    client = make_client()
    assert client.call("solve", None, ("echo",), {}) == ["echo"]
    stale = RemoteObject(client, 1, "Counter", client.generation - 1)
    with pytest.raises(SolverCrashed, match="lost"):
        stale.step()
    assert client.calls == 1


def test_stderr_flood_neither_blocks_nor_accumulates(make_client):
    """Megabytes on stderr before the answer: the call still returns, and only the output's tail is kept."""
    client = make_client(time_s=10)
    flood = 8 << 20
    t0 = time.monotonic()
    assert client.call("solve", None, ("flood", flood), {}) == "flooded"
    assert time.monotonic() - t0 < 10
    deadline = time.monotonic() + 5
    while not client.output_tail().endswith("END-OF-FLOOD") and time.monotonic() < deadline:
        time.sleep(0.05)
    tail = client.output_tail()
    assert tail.endswith("END-OF-FLOOD")  # the newest output is what is kept
    assert len(tail) <= SandboxClient.OUTPUT_TAIL
    assert sum(len(chunk) for chunk in client.output) <= client.output.maxlen * 4096 < flood // 10


def test_dispose_kills_the_process_and_removes_the_folder(make_client):
    """dispose() leaves no process behind and removes the submission folder, once."""
    client = make_client()
    assert client.call("solve", None, ("echo",), {}) == ["echo"]
    proc, folder = client.proc, client.spec.submission_dir
    assert (folder / "submission.py").read_text() == "def solve(x):\n    return x\n"
    client.dispose()
    client.dispose()
    assert proc.poll() is not None and client.proc is None
    assert not folder.exists()


def test_exit_status_beyond_signal_numbers_is_a_crash(make_client):
    """An exit status past the last signal number (sys.exit(255)) is SolverCrashed, not a stray ValueError."""
    client = make_client()
    exc, elapsed = timed_failure(client, "exit", 255)
    assert type(exc) is SolverCrashed and "255" in exc.message
    assert elapsed < SLACK_S


def test_closed_stdout_with_a_live_process_keeps_the_deadline(make_client):
    """A process that closes its reply pipe but keeps running is stopped within the call's deadline, not as memory."""
    client = make_client()
    exc, elapsed = timed_failure(client, "close_stdout")
    assert client.proc.poll() is not None
    assert elapsed < 1.0 + SLACK_S, f"took {elapsed:.1f} s with time_s=1"
    assert type(exc) is SolverTimeout and "closed its output" in exc.message, exc.message
