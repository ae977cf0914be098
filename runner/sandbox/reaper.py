"""Containers never outlive the grader that started them.

Every container of the docker backend carries the label `diffusion-grader.owner` =
`HOST:PID:START`, START being the owner process's start time in clock ticks after boot (field 22 of
/proc/PID/stat), so that a recycled pid is not taken for the owner. Two mechanisms use it:

- a watchdog process per grader process (`python -m runner.sandbox.reaper OWNER`), in a session
  of its own, reading the end of a pipe whose other end only the grader holds. When the grader
  exits, whatever the cause (kill -9 included), the kernel closes that end, the watchdog reads
  EOF, force-removes the containers labelled with its owner and exits. A grader that exits
  normally says so first (CLEAN_EXIT): the watchdog then lets go of the grader's stderr at once
  (a caller that reads the grader's output to its end must not wait for the watchdog) and sweeps
  once, quietly;
- a sweep when a grader first uses the engine: containers of this host whose owner process is gone
  (a watchdog that was killed too, a machine that lost power) are removed.
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

OWNER_LABEL = "diffusion-grader.owner"
# After EOF the watchdog sweeps again for a while: a `docker run` client the grader started just
# before it died may still be creating its container.
LATE_SWEEP_S = 6.0
CLEAN_EXIT = b"x"


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first), or [] when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return []
    # the command name (field 2) may hold spaces and parentheses: count fields after its last ')'
    return stat[stat.rindex(b")") + 2:].decode().split()


def start_ticks(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks after boot), or None when there is no such process."""
    fields = _stat(pid)
    return fields[19] if fields else None


def owner_of(pid: int | None = None) -> str:
    """The owner label value of process `pid` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{start_ticks(pid)}"


def owner_alive(owner: str) -> bool:
    """Whether the process an owner label names still runs; True for another host's owner (this
    host cannot tell, so its containers are left to that host's graders)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return True  # not a label this module wrote: leave the container alone
    host, pid, ticks = parts
    if host != socket.gethostname():
        return True
    fields = _stat(int(pid)) if pid.isdigit() else []
    # a zombie (killed, not yet reaped by its parent) runs no more
    return bool(fields) and fields[0] not in ("Z", "X") and fields[19] == ticks


def remove_containers(client, owner: str | None = None, dead_only: bool = False) -> list[str]:
    """Force-remove the containers labelled with `owner` (or, with dead_only, those of every owner of
    this host that no longer runs); returns their names."""
    label = OWNER_LABEL if owner is None else f"{OWNER_LABEL}={owner}"
    removed = []
    for container in client.containers.list(all=True, filters={"label": label}):
        if dead_only and owner_alive(container.labels.get(OWNER_LABEL, "")):
            continue
        try:
            container.remove(force=True)
            removed.append(container.name)
        except Exception as exc:  # noqa: BLE001 - gone already (auto-remove), or removal in progress
            if type(exc).__name__ not in ("NotFound", "APIError"):
                raise
    return removed


def docker_client(timeout: int = 30):
    """A docker SDK client of the engine the environment names (DOCKER_HOST or the default socket)."""
    import docker

    return docker.from_env(timeout=timeout, version="auto")


_lock = threading.Lock()
_watchdog: tuple[int, int, subprocess.Popen] | None = None  # (owner pid, write end, watchdog process)


def ensure_watchdog() -> None:
    """Start this process's watchdog once (again in a forked child, which has its own containers)."""
    global _watchdog
    with _lock:
        if _watchdog is not None and _watchdog[0] == os.getpid():
            return
        read_end, write_end = os.pipe()  # both ends close-on-exec: no other child inherits the write end
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runner.sandbox.reaper", owner_of()], stdin=read_end,
                stdout=subprocess.DEVNULL, start_new_session=True,  # a killpg of the grader's group spares it
                close_fds=True)
        finally:
            os.close(read_end)
        _watchdog = (os.getpid(), write_end, proc)
        atexit.register(_clean_exit, os.getpid())


def _clean_exit(pid: int) -> None:
    if _watchdog is not None and _watchdog[0] == pid == os.getpid():
        try:
            os.write(_watchdog[1], CLEAN_EXIT)
        except OSError:
            pass  # the watchdog is gone: nothing to tell


def _forget_in_child() -> None:
    # A forked child must not hold its parent's write end open (the parent's death would go unseen).
    global _watchdog
    if _watchdog is not None:
        try:
            os.close(_watchdog[1])
        except OSError:
            pass
        _watchdog = None


os.register_at_fork(after_in_child=_forget_in_child)


def _say(text: str) -> None:
    try:
        print(f"grader watchdog: {text}", file=sys.stderr, flush=True)
    except OSError:
        pass  # the grader's terminal or log pipe went with it


def watch(owner: str) -> None:
    """The watchdog: wait for EOF on stdin (the grader's end closed), then remove its containers."""
    import signal

    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the grader's exit ends it
    last = b""
    while chunk := os.read(0, 4096):
        last = chunk
    clean = last.endswith(CLEAN_EXIT)
    if clean:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # the grader's stderr: its reader sees EOF now
    deadline = time.monotonic() + (0 if clean else LATE_SWEEP_S)
    while True:
        try:
            client = docker_client()
            try:
                removed = remove_containers(client, owner)
            finally:
                client.close()
            if removed:
                _say(f"removed {', '.join(removed)} of the dead grader {owner}")
        except Exception as exc:  # noqa: BLE001 - the engine may be stopping too; nothing to report to
            _say(f"could not remove the containers of {owner}: {exc}")
        if time.monotonic() > deadline:
            return
        time.sleep(1.0)


if __name__ == "__main__":
    watch(sys.argv[1])
