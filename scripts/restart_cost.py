"""What a crash costs the grader: starting a sandbox (bubblewrap, the interpreter, torch) against
the fork server's restart (the next call after the submission's process died), side by side.

    python scripts/restart_cost.py [--runs 5]

Each run starts a sandbox and waits for it to be ready, makes one call, crashes the submission's
process (os._exit) and times the next call, which forks a fresh child and imports the submission
again before it answers.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.sandbox.backends import LaunchSpec, LocalBackend  # noqa: E402
from runner.sandbox.failures import SolverCrashed  # noqa: E402
from runner.sandbox.pool import new_client  # noqa: E402

LIMITS = {"time_s": 5, "total_s": 30, "cpu_s": 30, "memory_mb": 4096, "processes": 64, "file_size_mb": 16,
          "tmp_mb": 64, "open_files": 256, "check_s": 30, "preload": ["torch"]}
CODE = "import os\n\ndef probe(x=None):\n    if x == 'exit':\n        os._exit(3)\n    return 1\n"


def one_run() -> tuple[float, float]:
    """(seconds from launch to ready, seconds of the first call after a crash)."""
    t0 = time.monotonic()
    client = new_client(LocalBackend(), LaunchSpec(None, LIMITS), [{"name": "probe"}], {})
    try:
        client.set_submission(CODE)
        client.wait_ready(time.monotonic() + 120)
        start = time.monotonic() - t0
        client.call("probe", None, (), {})
        try:
            client.call("probe", None, ("exit",), {})
        except SolverCrashed:
            pass
        t1 = time.monotonic()
        client.call("probe", None, (), {})
        return start, time.monotonic() - t1
    finally:
        client.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    starts, restarts = zip(*(one_run() for _ in range(args.runs)))
    start, restart = statistics.median(starts), statistics.median(restarts)
    print(f"sandbox start to ready:     median {start * 1000:7.0f} ms (min {min(starts) * 1000:.0f}, max {max(starts) * 1000:.0f})")
    print(f"call after a crash (fork):  median {restart * 1000:7.0f} ms (min {min(restarts) * 1000:.0f}, max {max(restarts) * 1000:.0f})")
    print(f"a crash costs {start / restart:.0f}x less than a new sandbox would")


if __name__ == "__main__":
    main()
