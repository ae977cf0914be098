"""A memory and a process-count cgroup per sandboxed process, where the host lets the grader make
them (cgroup v1 memory and pids controllers it may write to; cgroup v2 is not handled yet).

rlimits alone leave gaps: RLIMIT_AS does not see a tmpfs file's pages, and RLIMIT_NPROC counts the
processes of a uid, not of a sandbox. A memory cgroup charges everything the sandbox makes
resident (heap, files in its /tmp, shared memory) against `memory_mb`, and its own pids cgroup
caps its processes at `processes`. Where no cgroup can be made, the rlimits, the sized /tmp and the
seccomp filter remain (the README says what that leaves).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PREFIX = "grader-sandbox-"


def _own_path(controller: str) -> str | None:
    """This process's cgroup path for a v1 controller ("" for v2's unified tree), from /proc."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return None


def _v1_parent(controller: str) -> Path | None:
    path = _own_path(controller)
    if path is None:
        return None
    parent = ROOT / controller / path.lstrip("/")
    return parent if (parent / "cgroup.procs").is_file() and os.access(parent, os.W_OK) else None


class SandboxCgroups:
    """Makes, fills and removes the cgroups of one sandboxed process."""

    def __init__(self):
        self.memory_parent = _v1_parent("memory")
        self.pids_parent = _v1_parent("pids")

    @property
    def available(self) -> bool:
        """Whether this host lets the grader make both cgroups."""
        return self.memory_parent is not None and self.pids_parent is not None

    def create(self, memory_mb: int, processes: int) -> list[Path]:
        """Two new cgroups with the limits set; the `cgroup.procs` files to join them through."""
        name = PREFIX + uuid.uuid4().hex[:16]
        memory, pids = self.memory_parent / name, self.pids_parent / name
        memory.mkdir()
        pids.mkdir()
        try:
            (memory / "memory.limit_in_bytes").write_text(str(int(memory_mb) << 20))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():  # no swap beyond the limit either
                swap.write_text(str(int(memory_mb) << 20))
            (pids / "pids.max").write_text(str(int(processes)))
        except OSError:
            self.remove([memory / "cgroup.procs", pids / "cgroup.procs"])
            raise
        return [memory / "cgroup.procs", pids / "cgroup.procs"]

    @staticmethod
    def remove(procs_files: list[Path]) -> None:
        """Remove the cgroups once their processes are gone (a killed process may linger a moment)."""
        for procs in procs_files:
            folder = procs.parent
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                log.warning("could not remove cgroup %s: it still has processes", folder)


def join_then_exec(procs_files: list[Path], command: list[str]) -> list[str]:
    """`command`, started by a shell that first moves itself into the cgroups: what it starts is
    inside them from its first instruction (no moment outside the limits)."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *map(str, procs_files), "--", *command]


def cgroup_files(args: list[str]) -> list[Path]:
    """The cgroup.procs files named in a command made by join_then_exec (for the clean-up)."""
    if len(args) < 4 or args[:2] != ["/bin/sh", "-c"] or "--" not in args:
        return []
    return [Path(a) for a in args[4:args.index("--")]]
