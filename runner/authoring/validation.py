"""`grader validate`: a problem folder is sound when its metadata parses, its files are there, its
statement renders and its worked example agrees with the reference, no `TODO` placeholder is left,
its notebook is fresh, its coverage map names tests that exist, the reference and every alternative solution score full marks, the starter scores zero,
every mutant (a realistic mistake) fails some hidden test, and a submission that answers with empty
tensors earns no hidden points. (`grader validate --mutate` is runner.authoring.mutation.)"""
from __future__ import annotations

import doctest
import re
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from runner.modules import import_file
from runner.problems.catalogue import ProblemDir
from runner.grading.pipeline import GradingError, grade
from runner.authoring import coverage, empty_answers
from runner.authoring.alternatives import check_alternatives
from runner.authoring.placeholders import check_placeholders
from runner.authoring.mutants import Mutant, MutantError, load_equivalents, load_mutants
from runner.records.results import Result, TestResult
from runner.problems.schema import ProblemFormatError
from runner.sandbox.pool import SandboxPool

REQUIRED = ["statement.md", "learn.md", "hints.md", "starter.py", "tests/test_public.py"]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@dataclass
class Check:
    """One check of a problem and what it found."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """Every check of one problem."""

    problem: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check; returns `ok` so callers can stop early."""
        self.checks.append(Check(name, ok, detail))
        return ok


class ExampleRunner(doctest.DocTestRunner):
    """Reports a failing example as `statement.md, line N: ...` (the file's own line), without
    doctest's banner."""

    def report_failure(self, out, test, example, got):
        """An example whose output differs from the statement's."""
        out(f"{where(test, example)}: >>> {example.source.strip()}\n"
            f"  expected: {example.want.strip() or '(nothing)'}\n  got: {got.strip() or '(nothing)'}\n")

    def report_unexpected_exception(self, out, test, example, exc_info):
        """An example that raised."""
        error = traceback.format_exception_only(*exc_info[:2])[-1].strip()
        out(f"{where(test, example)}: >>> {example.source.strip()}\n  raised {error}\n")


def where(test: doctest.DocTest, example: doctest.Example) -> str:
    """`statement.md, line N`: the file line of an example (the test's lineno is its block's)."""
    return f"{test.filename}, line {test.lineno + example.lineno + 1}"


def run_worked_example(pdir: ProblemDir) -> tuple[bool, str]:
    """Run the statement's doctest examples with the reference's names as globals."""
    text = pdir.text("statement.md")
    blocks = [m for m in PYTHON_BLOCK.finditer(text) if ">>>" in m.group(1)]
    if not blocks:
        return False, "statement.md has no worked example (a ```python block with >>> lines)"
    module = import_file(pdir.solution_file, "reference_for_example")
    parser, runner = doctest.DocTestParser(), ExampleRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    for i, block in enumerate(blocks):
        first_line = text.count("\n", 0, block.start(1))  # 0-based: the block's first line in the file
        test = parser.get_doctest(block.group(1), dict(vars(module)), f"statement.md example {i + 1}",
                                  "statement.md", first_line)
        runner.run(test, out=out.append)
    failed = runner.summarize(verbose=False).failed
    return failed == 0, "".join(out).rstrip("\n")[-3000:]


def notebook_fresh(pdir: ProblemDir) -> tuple[bool, str]:
    """(ok, why not): the problem's notebook exists and is what `grader notebooks` would write now."""
    try:
        from runner.jupyter.notebooks import notebook_state
    except ImportError:
        return True, 'not checked: writing notebooks needs the lab extra (pip install -e ".[lab]")'
    state = notebook_state(pdir)
    fix = f"run `grader notebooks {pdir.meta.id}`"
    if state == "missing":
        return False, f"{pdir.notebook.name} is missing: {fix}"
    if state == "stale":
        return False, f"{pdir.notebook.name} differs from the problem's files: {fix}"
    return True, ""


def statement_renders(pdir: ProblemDir) -> tuple[bool, str]:
    """(ok, why not): statement.md is non-empty, opens with a heading and renders as markdown."""
    from io import StringIO

    from rich.console import Console
    from rich.markdown import Markdown

    text = pdir.text("statement.md")
    if not text.strip():
        return False, "statement.md is empty"
    if not text.lstrip().startswith("#"):
        return False, "statement.md should start with a heading"
    console = Console(file=StringIO(), width=100)
    console.print(Markdown(text))
    return True, ""


def statement_states_imports(pdir: ProblemDir) -> tuple[bool, str]:
    """(ok, why not): statement.md has a paragraph starting "Allowed imports:" that names every
    entry of problem.toml's `imports` in backticks (solvers read the statement, not the toml)."""
    paragraphs = re.split(r"\n\s*\n", pdir.text("statement.md"))
    stated = next((p for p in paragraphs if p.lstrip("*_ ").startswith("Allowed imports")), None)
    want = "Allowed imports: " + ", ".join(f"`{e}`" for e in pdir.meta.imports) + "."
    if stated is None:
        return False, f"statement.md has no paragraph starting with the allowed imports, e.g. {want!r}"
    missing = [e for e in pdir.meta.imports if f"`{e}`" not in stated]
    return not missing, f"its allowed imports do not name {', '.join(missing)}" if missing else ""


def validate(pdir: ProblemDir, backend: str = "local", unsafe: bool = False) -> Report:
    """Run every check of one problem: metadata, files, statement, example, coverage map, reference,
    alternatives, starter, mutants, empty answers."""
    # Dozens of gradings in a row: a warm pool starts each sandbox while the last one is graded.
    pool = None if unsafe else SandboxPool()
    try:
        return _validate(pdir, backend, unsafe, pool)
    finally:
        if pool is not None:
            pool.close()


def _validate(pdir: ProblemDir, backend: str, unsafe: bool, pool: SandboxPool | None) -> Report:
    report = Report(pdir.key)
    try:
        meta = pdir.meta
        report.add("problem.toml", True, f"{meta.title} ({meta.difficulty.value})")
    except ProblemFormatError as exc:
        report.add("problem.toml", False, str(exc))
        return report
    missing = [n for n in REQUIRED if not (pdir.folder / n).is_file()]
    missing += [str(p) for p in (pdir.solution_file, pdir.grader_dir / "test_hidden.py") if not p.is_file()]
    if not report.add("files", not missing, "missing: " + ", ".join(missing) if missing else ""):
        return report
    report.add("no placeholders left", *check_placeholders(pdir))
    report.add("notebook is up to date", *notebook_fresh(pdir))
    report.add("statement renders", *statement_renders(pdir))
    report.add("statement states the allowed imports", *statement_states_imports(pdir))
    report.add("worked example agrees with the reference", *run_worked_example(pdir))
    report.add(coverage.CHECK, *coverage.check_coverage(pdir))

    def score(path: Path, **only):
        try:
            return grade(pdir, path, backend, unsafe_inprocess=unsafe, pool=pool, **only)
        except GradingError as exc:
            report.add(f"grading {path.name}", False, str(exc))
            return None

    ref = score(pdir.solution_file)
    if ref is not None:
        # a skipped test (e.g. a GPU-only group on a CPU machine) is worth no points either way
        bad = [f"{t.name}: {t.status} {t.message[:200]}" for t in ref.tests
               if t.status not in ("passed", "skipped")]
        report.add("reference scores full marks", not bad and ref.score == ref.max_score,
                   f"{ref.score:g}/{ref.max_score:g} " + "; ".join(bad))
        hidden = [t for t in ref.tests if t.visibility == "hidden"]
        report.add("hidden tests", len(hidden) > 0, f"{len(hidden)} hidden, {len(ref.tests) - len(hidden)} public")
        if not unsafe:
            report.add("limits fit the reference", True, limits_fit(meta.limits, ref))
    check_alternatives(pdir, score, report.add)
    starter = score(pdir.starter)
    if starter is not None:
        passing = [t.name for t in starter.tests if t.status == "passed"]
        report.add("starter scores zero (every test can fail)", not passing,
                   "passes on the starter: " + ", ".join(passing) if passing else "")
    try:
        mutants = load_mutants(pdir)
    except MutantError as exc:
        report.add("mutants.toml", False, str(exc))
        mutants = []
    try:
        load_equivalents(pdir)  # only their format here: `grader validate --mutate` uses them
    except MutantError as exc:
        report.add("mutants.toml equivalents", False, str(exc))
    with tempfile.TemporaryDirectory(prefix="grader-mutants-") as tmp:
        def score_mutant(mutant: Mutant):
            return score(mutant.write(Path(tmp)))

        for mutant in mutants:
            # Caught means: a hidden test fails. The first one settles it, so the grading stops there.
            result = score(mutant.write(Path(tmp)), public=False, first_failure=True)
            if result is not None:
                caught = [t.name for t in result.tests
                          if t.visibility == "hidden" and t.status not in ("passed", "skipped")]
                report.add(f"mutant {mutant.name} is caught", bool(caught),
                           f"by {caught[0]}" if caught else f"no hidden test fails ({mutant.mistake})")
        check_empty_answers(pdir, score_mutant, report)
    return report


# A limit more than this many times what the reference needs holds a worker that long for every
# hanging submission. The floors leave room for correct solutions written with plain loops (often
# 10-100x slower than the vectorised reference) and for slower machines.
LIMIT_FACTOR = 20
TIME_FLOOR_S, TOTAL_FLOOR_S = 5.0, 30.0


def limits_fit(limits, ref: Result) -> str:
    """What the reference needs against the problem's time limits, with a warning where a limit is
    more than LIMIT_FACTOR times that (and above its floor)."""
    slowest, calls = ref.timing.get("slowest_call_s", 0.0), ref.timing.get("calls_s", 0.0)
    text = (f"slowest call {slowest:.3f} s (time_s {limits.time_s:g}), all calls {calls:.2f} s "
            f"(total_s {limits.total_s:g}), grading {ref.duration_s:.1f} s")
    warnings = [f"{name} is {limit / need:.0f}x what the reference needs" for name, limit, need, floor in
                (("time_s", limits.time_s, slowest, TIME_FLOOR_S), ("total_s", limits.total_s, calls, TOTAL_FLOOR_S))
                if need > 0 and limit > max(LIMIT_FACTOR * need, floor)]
    return text + ("; warning: " + "; ".join(warnings) if warnings else "")


def hidden_passes(result: Result) -> list[TestResult]:
    """The hidden tests a graded submission passed."""
    return [t for t in result.tests if t.visibility == "hidden" and t.status == "passed"]


def check_empty_answers(pdir: ProblemDir, score_mutant, report: Report) -> None:
    """Grade the reference with every answer emptied; it must earn no hidden points.

    Tests that also pass when no tensor is answered at all (they read numbers or errors only)
    cannot check a shape, so they are excused; that second grading runs only when needed."""
    result = score_mutant(empty_answers.empty_answers(pdir))
    if result is None:
        return
    if result.status == "invalid":  # nothing was graded: earning nothing proves nothing
        report.add(empty_answers.CHECK, False, "the build with empty answers could not be loaded: "
                   + result.tests[0].message[:300])
        return
    earned = [t for t in hidden_passes(result) if t.score > 0]
    excused: list[str] = []
    if earned:
        baseline = score_mutant(empty_answers.tensor_free(pdir))
        if baseline is None:
            return
        tensor_free = {t.name for t in hidden_passes(baseline)}
        excused = [t.name for t in earned if t.name in tensor_free]
        earned = [t for t in earned if t.name not in tensor_free]
    points = sum(t.score for t in earned)
    detail = f"{points:g} points"
    if earned:
        detail += " from " + ", ".join(t.name for t in earned)
    if excused:
        detail += "; excused, as they read no tensor: " + ", ".join(excused)
    report.add(empty_answers.CHECK, not earned, detail)
