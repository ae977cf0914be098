"""What a problem's framework costs its grading: a numpy problem against a torch problem, side by side.

    python scripts/bench_frameworks.py [--repeats 5]

Both problems are `grader new`'s toy (solve(x) = 2 x, one public and one hidden test), scaffolded
into a temporary folder with `--framework torch` and `--framework numpy`; they differ only in the
framework their sandbox preloads and their code imports. Each round times, for each problem: a
sandbox from launch to ready, grading the reference with a cold sandbox, with a warm pool (a
long-lived grader) and in a fresh process (a one-shot `grader submit`). Rounds interleave the two
problems so that drift on a busy machine hits both alike; a first round is discarded.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.authoring.scaffold import scaffold_problem  # noqa: E402
from runner.grading.bench import grade_once  # noqa: E402
from runner.problems.catalogue import Catalogue, ProblemDir  # noqa: E402
from runner.sandbox.backends import LaunchSpec, LocalBackend  # noqa: E402
from runner.sandbox.pool import SandboxPool, new_client  # noqa: E402

FRAMEWORKS = {"torch": 900, "numpy": 901}
MODES = {
    "start": "sandbox, launch to ready",
    "cold": "grading, cold sandbox",
    "warm": "grading, warm pool (long-lived grader)",
    "process-sandbox": "grading, fresh process (one-shot CLI)",
}


def sandbox_start(pdir: ProblemDir) -> float:
    """Seconds from launching the problem's sandbox to its ready message (the framework preloaded)."""
    limits = pdir.meta.limits.model_dump() | {"preload": [pdir.meta.framework]}
    t0 = time.perf_counter()
    client = new_client(LocalBackend(), LaunchSpec(None, limits), [], {})
    try:
        client.wait_ready(time.monotonic() + 120)
        return time.perf_counter() - t0
    finally:
        client.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-frameworks-") as tmp:
        root = Path(tmp)
        for framework, ident in FRAMEWORKS.items():
            scaffold_problem(root, ident, f"toy-{framework}", f"Toy ({framework})", framework)
        os.environ["GRADER_ROOT"] = str(root)  # for the fresh processes
        catalogue = Catalogue(root)
        pdirs = {framework: catalogue.get(str(ident)) for framework, ident in FRAMEWORKS.items()}
        timings = {(f, m): [] for f in FRAMEWORKS for m in MODES}
        pool = SandboxPool()
        try:
            for i in range(args.repeats + 1):
                for mode in MODES:
                    for framework, pdir in pdirs.items():
                        elapsed = sandbox_start(pdir) if mode == "start" else grade_once(pdir, mode, pool)
                        if i > 0:
                            timings[framework, mode].append(elapsed)
        finally:
            pool.close()
    print(f"{args.repeats} runs each, medians (min-max) in seconds")
    print(f"{'':40} {'torch':>20} {'numpy':>20} {'numpy / torch':>14}")
    for mode, label in MODES.items():
        cells = []
        for framework in FRAMEWORKS:
            xs = timings[framework, mode]
            cells.append(f"{statistics.median(xs):.3f} ({min(xs):.2f}-{max(xs):.2f})")
        ratio = statistics.median(timings["numpy", mode]) / statistics.median(timings["torch", mode])
        print(f"{label:40} {cells[0]:>20} {cells[1]:>20} {ratio:>13.2f}x")


if __name__ == "__main__":
    main()
