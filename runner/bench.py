"""Benchmarks that print ratios measured side by side in one run (not timed tests)."""
from __future__ import annotations

import statistics
import time

from rich.console import Console
from rich.table import Table

from .catalogue import ProblemDir
from .grading import grade


def grading_overhead(pdir: ProblemDir, repeats: int, console: Console) -> dict:
    """Median wall time to grade the reference: local sandbox vs the same tests in-process.

    Runs alternate (sandbox, in-process, sandbox, ...) so drift on a noisy machine hits both.
    One warm-up of each is discarded (first imports of the test modules and torch).
    """
    timings: dict[str, list[float]] = {"local": [], "inprocess": []}
    for i in range(repeats + 1):
        for backend in ("local", "inprocess"):
            t0 = time.perf_counter()
            result = grade(pdir, pdir.solution_file, backend, unsafe_inprocess=backend == "inprocess")
            elapsed = time.perf_counter() - t0
            if result.score != result.max_score:
                raise RuntimeError(f"the reference did not score full marks with {backend}")
            if i > 0:
                timings[backend].append(elapsed)
    sandbox, inproc = statistics.median(timings["local"]), statistics.median(timings["inprocess"])
    table = Table(title=f"Grading {pdir.key}'s reference, median of {repeats}")
    for col in ("mode", "median s", "min s", "max s"):
        table.add_column(col, justify="right")
    for name, key in (("local sandbox", "local"), ("in-process (no sandbox)", "inprocess")):
        xs = timings[key]
        table.add_row(name, f"{statistics.median(xs):.3f}", f"{min(xs):.3f}", f"{max(xs):.3f}")
    console.print(table)
    console.print(f"sandbox / in-process = {sandbox / inproc:.2f}x; sandbox adds {sandbox - inproc:+.3f} s "
                  f"per submission (target: <= 0.5 s)")
    return {"sandbox_s": sandbox, "inprocess_s": inproc, "ratio": sandbox / inproc, "added_s": sandbox - inproc}
