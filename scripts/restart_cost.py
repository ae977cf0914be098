"""What a new sandbox and a crash cost the grader, side by side: a sandbox that starts its own
interpreter and torch (GRADER_ZYGOTE=0), a sandbox forked from the zygote, and the fork server's
restart (the next call after the submission's process died).

    python scripts/restart_cost.py [--runs 5]

Each run starts a sandbox each way and waits for it to be ready, makes one call, crashes the
submission's process (os._exit) and times the next call, which forks a fresh child and imports the
submission again before it answers. The zygote starts before the first run (it is started once
per grader).
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
from runner.settings import overridden  # noqa: E402

LIMITS = {"time_s": 5, "total_s": 30, "cpu_s": 30, "memory_mb": 4096, "processes": 64, "file_size_mb": 16,
          "tmp_mb": 64, "open_files": 256, "check_s": 30, "preload": ["torch"]}
CODE = "import os\n\ndef probe(x=None):\n    if x == 'exit':\n        os._exit(3)\n    return 1\n"


def one_run(zygote: bool) -> tuple[float, float]:
    """(seconds from launch to ready, seconds of the first call after a crash)."""
    t0 = time.monotonic()
    with overridden(zygote=zygote):
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
    one_run(True)  # the grader's zygote starts once
    rows = {"own interpreter": [], "zygote": []}
    for _ in range(args.runs):
        for way in rows:
            rows[way].append(one_run(way == "zygote"))
    for way, runs in rows.items():
        starts = [start for start, _ in runs]
        print(f"sandbox start to ready, {way + ':':17} {ms(starts)}")
    restarts = [restart for runs in rows.values() for _, restart in runs]
    print(f"call after a crash (fork):                {ms(restarts)}")
    own, forked = (statistics.median(s for s, _ in rows[w]) for w in rows)
    print(f"a sandbox from the zygote starts {own / forked:.0f}x faster; a crash costs "
          f"{own / statistics.median(restarts):.0f}x less than a sandbox with its own interpreter")


def ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:7.0f} ms (min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f})"

if __name__ == "__main__":
    main()
