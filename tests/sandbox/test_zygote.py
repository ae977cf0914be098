"""Sandboxes forked from a zygote (runner.sandbox.zygote), through the real bubblewrap sandbox: each
sandbox of one grader comes from the same template process, yet two submissions share nothing, the
solver's code cannot reach the template, and every rule of the sandbox holds as for a sandbox that
started its own interpreter. Without a zygote (turned off, or none can join the sandbox) sandboxes
start as before."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.sandbox import zygote
from runner.sandbox.backends import SANDBOX_ENV
from tests.sandbox.conftest import LIMITS

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import os, sys, time

def probe(action="state"):
    if action == "mark":  # leave a file and a process behind, as a submission might
        open("/tmp/mark", "w").write("a secret")
        if os.fork() == 0:
            os.setsid()
            while True:
                time.sleep(0.1)
        return os.getpid()
    if action == "kill everyone":
        for pid in range(1, 4096):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        os.kill(-1, 9)
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    commands = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                commands.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
            except OSError:
                pass
    return {"uid": os.getuid(), "marked": os.path.exists("/tmp/mark"), "commands": commands,
            "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
            "no_new_privs": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
            "environment": sorted(os.environ), "path": sys.path, "cwd": os.getcwd(),
            "checkout": os.path.exists(CHECKOUT)}
"""


def probe_code() -> str:
    return PROBE + f"\nCHECKOUT = {str(ROOT)!r}\n"


def probe(client, action="state"):
    return client.call("probe", None, (action,), {})


def test_sandboxes_forked_from_one_zygote_share_nothing(sandbox):
    first, second = sandbox(probe_code()), sandbox(probe_code())
    probe(first, "mark")
    a, b = probe(first), probe(second)
    assert isinstance(first.proc, zygote.ZygoteProc) and isinstance(second.proc, zygote.ZygoteProc)
    assert first.proc.zygote is second.proc.zygote  # one template process, two sandboxes
    assert a["marked"] and not b["marked"]  # a /tmp of its own
    # a pid namespace of its own: the placeholder, the fork server and the child, never the
    # other submission's detached process, the zygote or anything of the grader's
    assert len(b["commands"]) == 3 and len(a["commands"]) == 4
    assert sum("sleep" in c for c in b["commands"]) == 1 and not any("pytest" in c for c in b["commands"])
    if os.getuid() == 0:
        assert a["uid"] != b["uid"] and 0 not in (a["uid"], b["uid"])  # a uid, so a process count, of its own
    for state in (a, b):
        assert set(state["caps"]) == {"0000000000000000"}  # no capability, not even bounded ones
        assert state["no_new_privs"] == "1" and state["seccomp"] == "2"
        # the sandbox's environment and import path, nothing of the grader's
        assert state["environment"] == sorted(SANDBOX_ENV) and state["cwd"] == "/tmp"
        assert state["path"][0] == SANDBOX_ENV["PYTHONPATH"] and not state["checkout"]
        assert not any(p.startswith(str(ROOT)) for p in state["path"])


def test_the_solvers_code_cannot_reach_the_zygote(sandbox):
    attacker = sandbox(probe_code())
    template = attacker.proc.zygote
    with pytest.raises(Exception):  # noqa: B017 - it kills its own process, whatever the verdict
        probe(attacker, "kill everyone")
    assert template.proc.poll() is None and template.alive
    after = sandbox(probe_code())
    assert after.proc.zygote is template and probe(after)["marked"] is False


def test_a_sandbox_outlives_a_dead_zygote_and_the_next_one_starts_a_new_zygote(sandbox):
    client = sandbox(probe_code())
    old = client.proc.zygote
    os.kill(old.proc.pid, signal.SIGKILL)
    old.proc.wait(timeout=10)
    assert probe(client)["marked"] is False  # the running sandbox keeps its pipes
    fresh = sandbox(probe_code())
    assert fresh.proc.zygote is not old and probe(fresh)["marked"] is False
    client.close()  # ends although no zygote is left to report its process's end
    assert client.proc is None


def test_the_zygote_ends_with_its_grader(tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from runner.sandbox.backends import LaunchSpec, LocalBackend
        from runner.sandbox.pool import checkout
        client = checkout(None, LocalBackend(), LaunchSpec(None, {LIMITS!r}), [{{"name": "probe"}}], {{}},
                          "def probe():\\n    return 1\\n")
        assert client.call("probe", None, (), {{}}) == 1
        print(json.dumps([client.proc.zygote.proc.pid, client.proc.pid]), flush=True)
        sys.stdin.read()
    """)
    grader = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        template, sandbox = json.loads(grader.stdout.readline())
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (alive(template) or alive(sandbox)):
        time.sleep(0.1)
    assert not alive(template) and not alive(sandbox)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_turned_off_each_sandbox_starts_its_own_interpreter(sandbox, monkeypatch):
    monkeypatch.setenv("GRADER_ZYGOTE", "0")
    client = sandbox(probe_code())
    state = probe(client)
    assert isinstance(client.proc, subprocess.Popen)
    assert state["marked"] is False and set(state["caps"]) == {"0000000000000000"}


def test_when_no_zygote_can_join_the_sandbox_it_starts_as_before(sandbox, monkeypatch, caplog):
    monkeypatch.setattr(zygote, "HOLDER", ["/bin/sh", "-c", "exit 0"])  # a sandbox that ends at once
    client = sandbox(probe_code())
    assert probe(client)["marked"] is False
    assert isinstance(client.proc, subprocess.Popen)
    assert "without a zygote" in caplog.text


def test_a_graders_first_sandbox_does_not_wait_for_its_zygote(sandbox, monkeypatch):
    # A fresh grader: its zygote is still importing torch when the first sandbox is asked for, so
    # the fork is requested in the background and the caller goes on (a one-shot `grader submit`
    # overlaps its own start-up with it, as it did with an interpreter started by bubblewrap).
    monkeypatch.setattr(zygote, "_zygotes", {})
    client = sandbox(probe_code(), preload=["torch"])
    assert isinstance(client.proc, zygote.ZygoteProc) and client.proc.zygote is None
    assert probe(client)["marked"] is False
    assert client.proc.zygote is not None and client.proc.direct is None


def test_when_the_zygote_cannot_fork_into_a_sandbox_another_starts_on_the_same_pipes(sandbox, monkeypatch, caplog):
    start_holder = zygote._start_holder

    def wrong_pid(backend, spec):  # a process whose namespaces are the grader's: nothing to join
        holder, _, procs = start_holder(backend, spec)
        return holder, os.getpid(), procs

    monkeypatch.setattr(zygote, "_start_holder", wrong_pid)
    client = sandbox(probe_code())
    state = probe(client)
    assert isinstance(client.proc, zygote.ZygoteProc) and client.proc.direct is not None
    assert client.proc.holder.poll() is not None  # the placeholder's sandbox is gone
    assert state["marked"] is False and set(state["caps"]) == {"0000000000000000"}
    assert "without a zygote" in caplog.text
    client.close()
    assert client.proc is None
