"""What a submission can make resident or reach is bounded, through the real bubblewrap sandbox:
a sized /tmp, a seccomp filter, an open-file limit, a memory and a pids cgroup of its own, a uid
of its own, and pipes the grader writes under the call's deadline."""
import errno
import threading
import time

import pytest

from runner.sandbox.backends import LocalBackend
from runner.sandbox.failures import SolverMemory, SolverTimeout
from tests.sandbox.conftest import LIMITS

SLACK_S = 6.0


def probe(client, *args):
    return client.call("probe", None, args, {})


def test_tmp_is_a_sized_tmpfs(sandbox):
    client = sandbox("""
import os
def probe():
    written, n = 0, 0
    try:
        while written < (512 << 20):
            with open(f"/tmp/f{n}", "wb") as f:
                f.write(b"x" * (8 << 20))
            written, n = written + (8 << 20), n + 1
    except OSError as exc:
        return written, exc.errno
    return written, 0
""")
    written, err = probe(client)
    assert err == errno.ENOSPC and written <= 64 << 20


def test_seccomp_refuses_what_a_solution_never_needs(sandbox):
    client = sandbox("""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
SYS = {"ptrace": 101, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298, "keyctl": 250, "setns": 308}

def call(fn, *args):
    ctypes.set_errno(0)
    return 0 if fn(*args) != -1 else ctypes.get_errno()

def probe():
    out = {}
    try:
        os.memfd_create("hold")
        out["memfd_create"] = 0
    except OSError as exc:
        out["memfd_create"] = exc.errno
    out["unshare"] = call(libc.unshare, 0x10000000)  # CLONE_NEWUSER
    for name, nr in SYS.items():
        out[name] = call(libc.syscall, nr, 0, 0, 0, 0, 0)
    return out
""")
    refused = probe(client)
    assert refused == {name: errno.EPERM for name in refused}, refused


def test_threads_and_fork_still_work(sandbox):
    client = sandbox("""
import os, threading
def probe():
    done = []
    threads = [threading.Thread(target=done.append, args=(i,)) for i in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return len(done), os.waitpid(pid, 0)[1] >> 8
""")
    assert probe(client) == (4, 7)


def test_open_files_are_limited(sandbox):
    client = sandbox("""
def probe():
    held = []
    try:
        for _ in range(5000):
            held.append(open("/dev/null"))
    except OSError as exc:
        return len(held), exc.errno
    return len(held), 0
""")
    held, err = probe(client)
    assert err == errno.EMFILE and held < 256


def test_tmp_files_count_against_the_memory_limit(sandbox):
    if not LocalBackend().cgroups.available:
        pytest.skip("this host lets the grader make no memory cgroup (the README says what that leaves)")
    # /tmp may hold 2 GiB here, the memory limit is 1 GiB: only the cgroup sees the files' pages.
    client = sandbox("""
def probe():
    for n in range(192):
        with open(f"/tmp/f{n}", "wb") as f:
            f.write(b"x" * (8 << 20))
    return "held 1.5 GiB"
""", tmp_mb=2048)
    t0 = time.monotonic()
    with pytest.raises(SolverMemory):
        probe(client)
    assert time.monotonic() - t0 < LIMITS["time_s"] + SLACK_S


def test_sandboxes_do_not_share_a_process_count(sandbox):
    # Sandbox A holds most of its 32 processes (bubblewrap and the process itself count too); B,
    # graded at the same time, starts 16 threads: with one count for both it could not.
    hog = sandbox("""
import threading, time
def probe(n=0):
    for _ in range(n):
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    return n
""", memory_mb=4096)  # each thread reserves a malloc arena of address space
    other = sandbox("""
import threading
def probe(n=0):
    go = threading.Event()  # all n alive at once
    threads = [threading.Thread(target=go.wait) for _ in range(n)]
    try:
        for t in threads: t.start()
    finally:
        go.set()
    for t in threads:
        if t.ident: t.join()
    return n
""", memory_mb=4096)
    assert probe(hog, 24) == 24
    assert probe(other, 16) == 16


def test_a_process_that_stops_reading_cannot_hold_the_grader(sandbox):
    # The submission's process reads its requests from its fork server, which reads the grader's
    # pipe; it stops that server (same uid), so a request larger than the pipe's 64 KiB can never
    # be written. The write obeys the call's deadline.
    client = sandbox("""
import os, signal, threading, time

def probe(text=""):
    parent = os.getppid()
    threading.Thread(target=lambda: (time.sleep(0.3), os.kill(parent, signal.SIGSTOP))).start()
    return len(text)
""", time_s=3)
    assert probe(client, "x") == 1
    time.sleep(1)
    t0 = time.monotonic()
    with pytest.raises(SolverTimeout, match="stopped reading its input"):
        probe(client, "y" * 200_000)
    assert time.monotonic() - t0 < 3 + SLACK_S


def test_concurrent_sandboxes_have_their_own_uid(sandbox):
    code = "import os\ndef probe():\n    return os.getuid()\n"
    uids = {probe(sandbox(code)) for _ in range(3)}
    assert len(uids) == 3 and 0 not in uids
