"""Mutation analysis of a problem's tests: `grader validate --mutate NNN`.

The reference solution is mutated with the operators of cosmic-ray, a mutation-testing library
(runner.authoring.operators: which mutants are made and which are left out). `--limit N` takes N of
them, drawn with a fixed seed. Every mutant is graded through the normal pipeline, in the sandbox,
stopping at its first failing test: it is **killed** when a public or hidden test fails (a crash, a
timeout or an invalid file counts), and **survived** when every test passes. The mutation score is
killed / (total - equivalent).

A survivor either shows a behaviour no test checks (write a test that kills it) or changes nothing
the statement specifies; the instructor then declares it in `graders/NNN-slug/mutants.toml`:

    [[equivalent]]
    original = "resampled = (u < t[:, None]) & valid"    # the reference's line, as it reads there
    mutated = "resampled = (u <= t[:, None]) & valid"    # the same line in the mutant
    reason = "u is drawn from [0, 1): u == t has probability about 2**-24 at a position"

An entry names the changed line by its text (whitespace does not count; several changed lines are
joined by newlines), so edits elsewhere in the reference leave it in force, and it covers that change
wherever the line occurs; an entry that matches no mutant any more is reported as stale. Declared
equivalents are not graded.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from runner.authoring.mutants import Equivalent, load_equivalents
from runner.authoring.operators import GeneratedMutant, generate_mutants
from runner.problems.catalogue import Catalogue, ProblemDir
from runner.records.results import Result

KILLED, SURVIVED, EQUIVALENT, ERROR = "killed", "survived", "equivalent", "error"


@dataclass(frozen=True)
class Outcome:
    """What grading one mutant found."""

    mutant: GeneratedMutant
    status: str  # killed, survived, equivalent or error (the grader itself failed)
    detail: str = ""  # the test that killed it, the declared reason, or the grader's error
    seconds: float = 0.0


@dataclass
class MutationReport:
    """The mutation analysis of one problem."""

    problem: str
    generated: int  # mutants made (compiling, distinct), before any sampling
    uncompilable: int  # mutants skipped because they do not compile
    duplicates: int  # mutants skipped because they run as the reference or an earlier mutant does
    outcomes: list[Outcome] = field(default_factory=list)
    stale: list[Equivalent] = field(default_factory=list)  # declared equivalents no mutant matches
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many outcomes have `status`."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def score(self) -> float:
        """killed / (total - equivalent), grader errors left out; 1.0 when nothing is left."""
        judged = self.count(KILLED) + self.count(SURVIVED)
        return self.count(KILLED) / judged if judged else 1.0

    def survivors(self) -> list[Outcome]:
        """The mutants every test passes, in order."""
        return [o for o in self.outcomes if o.status == SURVIVED]


def sample(mutants: list[GeneratedMutant], limit: int | None) -> list[GeneratedMutant]:
    """`limit` of the mutants, drawn with a fixed seed (the same ones on every run), in order."""
    if limit is None or limit >= len(mutants):
        return list(mutants)
    picked = random.Random(0).sample(range(len(mutants)), max(limit, 0))
    return [mutants[i] for i in sorted(picked)]


def declared(mutant: GeneratedMutant, equivalents: list[Equivalent]) -> Equivalent | None:
    """The [[equivalent]] entry that names this mutant, if any."""
    return next((e for e in equivalents if e.matches(mutant.original, mutant.mutated)), None)


def verdict(result: Result) -> tuple[str, str]:
    """(killed or survived, the first test that failed and how)."""
    failing = [t for t in result.tests if t.status not in ("passed", "skipped")]
    if result.status == "invalid" or failing:
        first = failing[0] if failing else None
        return KILLED, f"{first.name}: {first.status}" if first else "invalid"
    return SURVIVED, ""


_pool = None  # each grading process's warm sandbox pool


def _start_pool() -> None:
    """In a grading process: one warm pool for all the mutants it grades, closed when it exits."""
    from multiprocessing.util import Finalize

    from runner.sandbox.pool import SandboxPool

    global _pool
    _pool = SandboxPool()
    Finalize(_pool, _pool.close, exitpriority=10)


def grade_source(root: str, key: str, source: str, backend: str, pool=None) -> tuple[str, str, float]:
    """Grade one mutant's source as a submission of the problem `key` under `root`:
    (killed, survived or error, detail, seconds)."""
    from runner.grading.pipeline import GradingError, grade

    start = time.perf_counter()
    pdir = Catalogue(Path(root)).get(key)
    with tempfile.TemporaryDirectory(prefix="grader-mutation-") as tmp:
        path = Path(tmp) / "mutant.py"
        path.write_text(source, encoding="utf-8")
        try:
            result = grade(pdir, path, backend, pool=pool if pool is not None else _pool, first_failure=True)
        except GradingError as exc:
            return ERROR, str(exc)[:2000], time.perf_counter() - start
    return (*verdict(result), time.perf_counter() - start)


def default_jobs() -> int:
    """Mutants graded at once: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def analyse(pdir: ProblemDir, backend: str = "local", jobs: int | None = None, limit: int | None = None,
            on_outcome: Callable[[Outcome, int, int], None] | None = None) -> MutationReport:
    """Generate the reference's mutants, grade them (`jobs` at once; a `limit` samples that many)
    and report. `on_outcome(outcome, done, total)` follows the progress."""
    start = time.perf_counter()
    equivalents = load_equivalents(pdir)
    made = generate_mutants(pdir.solution_file.read_text(encoding="utf-8"))
    mutants = made.mutants
    report = MutationReport(pdir.key, len(mutants), made.uncompilable, made.duplicates)
    report.stale = [e for e in equivalents if not any(e.matches(m.original, m.mutated) for m in mutants)]
    chosen = sample(mutants, limit)
    outcomes: dict[int, Outcome] = {}

    def done(outcome: Outcome) -> None:
        outcomes[outcome.mutant.number] = outcome
        if on_outcome is not None:
            on_outcome(outcome, len(outcomes), len(chosen))

    to_grade = []
    for mutant in chosen:
        entry = declared(mutant, equivalents)
        if entry is not None:
            done(Outcome(mutant, EQUIVALENT, entry.reason))
        else:
            to_grade.append(mutant)
    jobs = max(1, min(jobs or default_jobs(), len(to_grade) or 1))
    args = (str(pdir.root), pdir.key)
    if jobs == 1:
        from runner.sandbox.pool import SandboxPool

        pool = SandboxPool()
        try:
            for mutant in to_grade:
                done(Outcome(mutant, *grade_source(*args, mutant.source, backend, pool)))
        finally:
            pool.close()
    else:
        import multiprocessing

        # fresh interpreters: pytest and the sandbox clients are not for sharing between threads
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_pool) as executor:
            futures = {executor.submit(grade_source, *args, m.source, backend): m for m in to_grade}
            for future in as_completed(futures):
                done(Outcome(futures[future], *future.result()))
    report.outcomes = [outcomes[m.number] for m in chosen]
    report.seconds = time.perf_counter() - start
    return report
