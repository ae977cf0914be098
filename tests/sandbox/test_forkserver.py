"""The fork server inside the real bubblewrap sandbox: after a crash or a timeout the next call
gets a freshly forked child of the same sandboxed process (a fork, not an interpreter start), and
that child is held by every rule of the sandbox. A problem on the GPU is served without forking,
sees the GPU's device nodes and has no address-space limit."""
import errno
import os
import resource
import stat
import time

import pytest

from runner.sandbox.failures import SolverCrashed, SolverTimeout
from tests.sandbox.conftest import LIMITS

SLACK_S = 6.0

PROBE = """
import ctypes, os, resource, time

def probe(action="state"):
    if action == "exit":
        os._exit(3)
    if action == "segv":
        ctypes.string_at(0)
    if action == "hang":
        while True:
            pass
    if action == "stray":  # a grandchild in a session of its own, which a group kill misses
        if os.fork() == 0:
            os.setsid()
            while True:
                time.sleep(0.1)
        time.sleep(0.2)
        os._exit(1)
    if action == "remember":
        global REMEMBERED
        REMEMBERED = True
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    ctypes.set_errno(0)
    unshare = 0 if libc.unshare(0x10000000) != -1 else ctypes.get_errno()
    return {"pid": os.getpid(), "uid": os.getuid(), "remembered": "REMEMBERED" in globals(),
            "memory": resource.getrlimit(resource.RLIMIT_AS)[0], "unshare": unshare,
            "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
"""


def probe(client, action="state"):
    return client.call("probe", None, (action,), {})


def test_a_crash_costs_a_fork_not_a_new_sandbox(sandbox):
    client = sandbox(PROBE)
    first = probe(client)
    sandbox_pid, generation = client.proc.pid, client.generation
    assert client.forks
    for action, cls, fragment in (("exit", SolverCrashed, "status 3"), ("segv", SolverCrashed, "SIGSEGV")):
        with pytest.raises(cls, match=fragment):
            probe(client, action)
        t0 = time.monotonic()
        after = probe(client)
        restart_s = time.monotonic() - t0
        # the same sandboxed process forked a new child; importing torch anew takes over a second
        assert client.proc.pid == sandbox_pid and client.generation > generation
        assert after["pid"] != first["pid"] and restart_s < 1.0, restart_s
        generation = client.generation


def test_a_timeout_kills_only_the_child(sandbox):
    client = sandbox(PROBE, time_s=1)
    probe(client, "remember")
    sandbox_pid = client.proc.pid
    t0 = time.monotonic()
    with pytest.raises(SolverTimeout):
        probe(client, "hang")
    assert time.monotonic() - t0 < 1 + SLACK_S
    state = probe(client)
    # a fresh child: what the solver's code kept in the dead one is gone
    assert client.proc.pid == sandbox_pid and state["remembered"] is False


def test_every_child_is_held_by_the_sandbox_rules(sandbox):
    client = sandbox(PROBE)
    with pytest.raises(SolverCrashed):
        probe(client, "exit")
    state = probe(client)
    if os.getuid() == 0:
        assert state["uid"] != 0  # dropped to the sandbox's own uid
    assert state["memory"] == LIMITS["memory_mb"] << 20
    assert state["unshare"] == errno.EPERM  # the seccomp filter came with the fork


def test_what_a_dead_child_started_does_not_outlive_it(sandbox):
    client = sandbox(PROBE)
    before = probe(client)["processes"]
    with pytest.raises(SolverCrashed):
        probe(client, "stray")
    after = probe(client)["processes"]
    # the sandbox's init, the fork server and the new child: the detached grandchild was killed
    assert len(after) == len(before), (before, after)


def test_a_gpu_problem_is_served_without_forking(sandbox):
    # CUDA must not be initialised in a process that forks: with cuda on, the sandboxed process
    # is one process, restarted whole after a crash (here on a machine without a GPU).
    client = sandbox(PROBE, cuda=True)
    probe(client)
    sandbox_pid = client.proc.pid
    assert client.forks is False
    with pytest.raises(SolverCrashed):
        probe(client, "exit")
    probe(client)
    assert client.proc.pid != sandbox_pid


def test_a_gpu_sandbox_sees_the_device_nodes_and_no_address_space_limit(sandbox, tmp_path, monkeypatch):
    # A stand-in for /dev/nvidia0 on a machine without a GPU: a character device like /dev/null.
    if os.getuid() != 0:
        pytest.skip("making a stand-in device node needs root")
    null = os.stat("/dev/null")
    os.mknod(tmp_path / "nvidia0", 0o666 | stat.S_IFCHR, null.st_rdev)
    monkeypatch.setattr("runner.sandbox.backends.GPU_DEVICES", str(tmp_path / "nvidia*"))
    client = sandbox("""
import os, resource, stat
def probe(action="state"):
    st = os.stat("/dev/nvidia0")
    return stat.S_ISCHR(st.st_mode), st.st_rdev, resource.getrlimit(resource.RLIMIT_AS)[0]
""", cuda=True)
    is_char, rdev, address_space = probe(client)
    assert is_char and rdev == null.st_rdev  # bound after the sandbox's fresh /dev, not hidden by it
    assert address_space == resource.RLIM_INFINITY
    cpu = sandbox("import resource\ndef probe(action=None):\n    return resource.getrlimit(resource.RLIMIT_AS)[0]\n")
    assert probe(cpu) == LIMITS["memory_mb"] << 20
