"""Benchmarks that print ratios measured side by side in one run (not timed tests)."""
from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

from runner.grading.pipeline import grade
from runner.problems.catalogue import ProblemDir
from runner.sandbox.pool import SandboxPool
from runner.settings import overridden

# mode -> (label, the mode it is compared with); a mode is "[process-]inprocess" or "[process-]BACKEND-cold|warm"
MODES = {
    "inprocess": ("in-process (no sandbox)", "inprocess"),
    "local-cold": ("sandbox, cold start (forked from the zygote)", "inprocess"),
    "local-cold-nozygote": ("sandbox, cold start, its own interpreter (GRADER_ZYGOTE=0)", "inprocess"),
    "local-warm": ("sandbox, warm pool (long-lived grader)", "inprocess"),
    "process-inprocess": ("fresh process, in-process (no sandbox)", "process-inprocess"),
    "process-local": ("fresh process, sandbox (one-shot CLI)", "process-inprocess"),
}
# The docker backend's rows, next to local's when `grader bench --backend docker`.
DOCKER_MODES = {
    "docker-cold": ("docker, cold start (a new container)", "inprocess"),
    "docker-warm": ("docker, warm pool (long-lived grader)", "inprocess"),
    "process-docker": ("fresh process, docker (one-shot CLI)", "process-inprocess"),
}


def modes_for(backend: str) -> dict:
    """The rows of a bench of `backend`: local's, plus docker's after them in the same groups."""
    if backend == "local":
        return dict(MODES)
    order = ["inprocess", "local-cold", "local-cold-nozygote", "local-warm", "docker-cold", "docker-warm",
             "process-inprocess", "process-local", "process-docker"]
    every = {**MODES, **DOCKER_MODES}
    return {m: every[m] for m in order}
# A one-shot `grader submit` pays the interpreter, torch and pytest start-up in the trusted process
# too; the sandboxed worker starts before collection, so its own start-up overlaps them.
ONE_SHOT = """
import sys
from runner.problems.catalogue import Catalogue
from runner.grading.pipeline import grade
pdir = Catalogue().get(sys.argv[1])
backend = sys.argv[2]
result = grade(pdir, pdir.solution_file, backend, unsafe_inprocess=backend == "inprocess")
sys.exit(0 if result.score == result.max_score else 1)
"""


def grade_once(pdir: ProblemDir, mode: str, pool: SandboxPool) -> float:
    """Seconds to grade the reference once in `mode` (a key of MODES or DOCKER_MODES); an error unless
    it scores full marks. `pool` is the warm pool of the mode's backend."""
    if mode.startswith("process-"):
        backend = mode.removeprefix("process-")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", ONE_SHOT, pdir.key, backend], capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"the reference did not score full marks ({mode}): {done.stderr[-2000:]}")
        return elapsed
    warm = mode.endswith("-warm")
    if warm:
        pool.wait_ready()  # steady state: the spare started while the grader was idle
    backend = mode.split("-")[0]
    t0 = time.perf_counter()
    with overridden(zygote=False) if mode.endswith("-nozygote") else contextlib.nullcontext():
        result = grade(pdir, pdir.solution_file, backend, unsafe_inprocess=backend == "inprocess",
                       pool=pool if warm else None)
    elapsed = time.perf_counter() - t0
    if result.score != result.max_score:
        raise RuntimeError(f"the reference did not score full marks ({mode})")
    return elapsed


def grading_overhead(pdir: ProblemDir, repeats: int, console: Console, backend: str = "local") -> dict:
    """Median wall time to grade the reference in each mode (local's, and docker's with
    backend="docker"), runs interleaved so that drift on a noisy machine hits all modes alike; one
    warm-up round is discarded."""
    modes = modes_for(backend)
    timings: dict[str, list[float]] = {m: [] for m in modes}
    pools = {"local": SandboxPool(), "docker": SandboxPool()}  # a warm pool per backend, as a worker keeps
    try:
        for i in range(repeats + 1):
            for mode in modes:
                elapsed = grade_once(pdir, mode, pools["docker" if "docker" in mode else "local"])
                if i > 0:
                    timings[mode].append(elapsed)
    finally:
        for pool in pools.values():
            pool.close()
    med = {m: statistics.median(v) for m, v in timings.items()}
    table = Table(title=f"Grading {pdir.key}'s reference (public + hidden tests), {repeats} runs each")
    for col in ("mode", "median s", "min s", "max s", "vs its in-process row"):
        table.add_column(col, justify="right")
    for mode, (name, base) in modes.items():
        xs = timings[mode]
        table.add_row(name, f"{med[mode]:.3f}", f"{min(xs):.3f}", f"{max(xs):.3f}",
                      f"{med[mode] / med[base]:.2f}x ({med[mode] - med[base]:+.3f} s)")
    console.print(table)
    console.print("target: the sandbox adds <= 0.5 s per submission over the in-process run")
    return med
