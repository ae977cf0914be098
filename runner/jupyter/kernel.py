"""Solving in Jupyter: `%%solution` cells, and the calls that grade what they recorded.

A problem's notebook loads it with `%load_ext runner.jupyter` (which re-exports this module). The solver's code lives in
one cell whose first line is `%%solution ID`: running the cell records its source for that problem
and then runs it as usual. `public_tests(ID)` and `submit(ID)` grade the recorded source through the
sandbox, so the notebook does not have to be saved first, and scratch cells are never submitted.

Why the live cell and not the saved .ipynb: the kernel cannot reliably tell which file it belongs to
(nbclient and nbgrader set no session name), and a file on disk lags behind unsaved edits. The
source graded is exactly the code the solver last ran, which is also what their scratch cells see.
"""
from __future__ import annotations

import contextlib
import html
import io
import sys
import tempfile
import warnings
from pathlib import Path

from runner.problems.catalogue import Catalogue, ProblemDir
from runner.records.results import Result

MARKER = "%%solution"
_recorded: dict[str, str] = {}  # problem key -> source of its %%solution cell, as last run
_last: list[str] = []  # the key of the problem whose %%solution cell ran last

STATUS_COLOUR = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#cf222e", "timeout": "#9a6700",
                 "memory": "#9a6700", "crashed": "#8250df", "invalid": "#8250df", "skipped": "#6e7781"}
CELL = "padding:.25em .9em .25em 0;text-align:left;vertical-align:top;border-bottom:1px solid #d0d7de;"
HEAD = "border-bottom:2px solid #8c959f;"
MESSAGE = "margin:0;padding:0;border:0;background:none;white-space:pre-wrap;font-size:90%"


class NoSolution(LookupError):
    """No `%%solution` cell has been run for the problem in this kernel."""


def load_ipython_extension(ipython) -> None:
    """`%load_ext runner.jupyter`: record `%%solution` cells from now on, and confirm each one."""
    if record_solution_cell not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(record_solution_cell)
    if confirm_solution_cell not in ipython.events.callbacks["post_run_cell"]:
        ipython.events.register("post_run_cell", confirm_solution_cell)


def record_solution_cell(lines: list[str]) -> list[str]:
    """IPython input transformer: a cell whose first line is `%%solution ID` is recorded as the
    solution of problem ID, then runs as ordinary Python. Rewriting the cell instead of running it
    from a magic keeps IPython's own tracebacks and error status, and the cell's line numbers.
    An unknown ID records nothing; `confirm_solution_cell` says so after the cell ran."""
    if lines and lines[0].startswith(MARKER):
        with contextlib.suppress(LookupError):
            record(lines[0][len(MARKER):].strip(), "".join(lines[1:]))
        return ["# " + lines[0], *lines[1:]]
    return lines


def confirm_solution_cell(result) -> None:
    """IPython post_run_cell hook: after a `%%solution` cell, one line saying what was recorded
    (or, for an unknown or missing ID, which IDs there are)."""
    cell = result.info.raw_cell or ""
    if not cell.startswith(MARKER):
        return
    ident = cell.split("\n", 1)[0][len(MARKER):].strip()
    try:
        pdir = Catalogue().get(ident) if ident else None
    except LookupError as exc:
        print(f"{MARKER} {ident}: {exc}; nothing recorded", file=sys.stderr)
        return
    if pdir is None:
        print(f"{MARKER} needs a problem id, e.g. `{MARKER} 413` ({known_ids()}); nothing recorded",
              file=sys.stderr)
        return
    if result.success:
        lines = len(cell.rstrip().splitlines()) - 1
        print(f"{pdir.key}: recorded {lines} lines as your solution; run submit() to grade it "
              "(public_tests() to check it first)")


def known_ids() -> str:
    """`known: 413-forward-process, ...`, the problems a `%%solution` cell may name."""
    try:
        return "known: " + (", ".join(Catalogue().keys()) or "none")
    except LookupError as exc:
        return str(exc)


def record(ident: str, source: str) -> None:
    """Remember `source`, a `%%solution` cell with or without its first line, as the solution of
    problem `ident`. The module graded keeps the cell's line numbers: an empty line stands for the
    `%%solution` line, and for each magic or shell line (they are not Python)."""
    key = Catalogue().get(ident).key
    _recorded[key] = module_source(source)
    _last[:] = [key]


def module_source(source: str) -> str:
    """The module graded for a `%%solution` cell's source (with or without its first line): an
    empty line stands for the `%%solution` line and for each magic or shell line, so tracebacks
    and syntax errors keep the cell's own line numbers."""
    lines = source.splitlines()
    if lines and lines[0].startswith(MARKER):
        lines = lines[1:]
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines]
    return "\n".join(["", *lines]) + "\n"


def recorded_solution(ident: str | None = None) -> tuple[ProblemDir, str]:
    """(problem, source of its last run `%%solution` cell); NoSolution when none ran. Without an
    ident: the problem whose `%%solution` cell ran last."""
    if ident is None:
        if not _last:
            raise NoSolution(f"no solution in this kernel: run your `{MARKER} ID` cell first")
        ident = _last[0]
    pdir = Catalogue().get(ident)
    if pdir.key not in _recorded:
        raise NoSolution(f"no solution for {pdir.key} in this kernel: run its `%%solution {pdir.key}` cell first")
    return pdir, _recorded[pdir.key]


def is_starter(pdir: ProblemDir, source: str) -> bool:
    """Whether `source` is the problem's starter, blank lines and trailing spaces aside."""
    def code(text: str) -> list[str]:
        return [ln.rstrip() for ln in text.splitlines() if ln.strip()]

    return code(source) == code(pdir.starter.read_text(encoding="utf-8"))


@contextlib.contextmanager
def solution_file(source: str):
    """A temporary solution.py holding `source`, for the grader to read."""
    with tempfile.TemporaryDirectory(prefix="grader-notebook-") as tmp:
        path = Path(tmp) / "solution.py"
        path.write_text(source, encoding="utf-8")
        yield path


class ResultView:
    """A graded result that Jupyter shows as a verdict table (plain text elsewhere)."""

    def __init__(self, result: Result, title: str):
        self.result = result
        self.title = title

    @property
    def score(self) -> float:
        """Points earned."""
        return self.result.score

    @property
    def max_score(self) -> float:
        """Points possible."""
        return self.result.max_score

    def _repr_html_(self) -> str:
        # Inline styles only: they survive JupyterLab's output sanitiser and nbgrader's feedback page,
        # whose Bootstrap would otherwise pack the columns together and box every <pre>.
        def cell(content: str, style: str = "") -> str:
            return f"<td style='{CELL}{style}'>{content}</td>"

        rows = "".join(
            "<tr>"
            + cell(html.escape(t.name) + (" <i>(hidden)</i>" if t.visibility == "hidden" else ""))
            + cell(f"<b>{t.status}</b>", f"color:{STATUS_COLOUR.get(t.status, 'inherit')}")
            + cell(f"{t.score:g}/{t.max_score:g}", "text-align:right")
            + cell(f"<pre style='{MESSAGE}'>{html.escape(t.message)}</pre>" if t.message else "")
            + "</tr>" for t in self.result.tests)
        head = "".join(f"<th style='{CELL}{HEAD}'>{name}</th>" for name in ("test", "verdict", "points", "message"))
        sub = f"submission #{self.result.submission_id}, " if self.result.submission_id else ""
        return (f"<div class='grader-result'><p style='margin:0 0 .3em'><b>{html.escape(self.title)}: "
                f"{self.score:g} / {self.max_score:g}</b></p>"
                f"<table style='border-collapse:collapse;margin:0 0 .3em'><thead><tr>{head}</tr></thead>"
                f"<tbody>{rows}</tbody></table>"
                f"<small>{sub}{self.result.backend} sandbox, {self.result.duration_s:.1f} s</small></div>")

    def __repr__(self) -> str:
        lines = [f"{self.title}: {self.score:g} / {self.max_score:g}"]
        lines += [f"  {t.status:8} {t.score:g}/{t.max_score:g}  {t.name}"
                  + (" (hidden)" if t.visibility == "hidden" else "")
                  + (f"\n           {t.message}" if t.message else "") for t in self.result.tests]
        return "\n".join(lines)


def public_tests(ident: str | None = None, backend: str = "local") -> ResultView:
    """Run the public tests on the recorded solution (default: of the `%%solution` cell run last),
    in the sandbox. Nothing is stored."""
    from runner.grading.pipeline import grade

    pdir, source = recorded_solution(ident)
    with solution_file(source) as path:
        result = grade(pdir, path, backend, hidden=False)
    return ResultView(result, f"{pdir.key}, public tests")


def submit(ident: str | None = None, backend: str = "local") -> ResultView | None:
    """Grade the recorded solution (default: of the `%%solution` cell run last) with the public and
    hidden tests and store it in the gradebook, exactly as `grader submit` does. The untouched
    starter is not graded (Run All would store a zero): None, and a line saying so."""
    pdir, source = recorded_solution(ident)
    if is_starter(pdir, source):
        print(f"{pdir.key}: not submitted: your solution is still the starter. Write your code in the "
              f"`{MARKER}` cell, run it, then run submit() again.")
        return None
    return ResultView(submit_source(pdir, source, backend), f"{pdir.key}, submission")


def submit_source(pdir: ProblemDir, source: str, backend: str = "local") -> Result:
    """Grade a solution's module source with the public and hidden tests in the sandbox and store
    it in the gradebook, as `grader submit` does (also what the JupyterLab panel's Submit runs)."""
    from runner.records.gradebook import Gradebook
    from runner.grading.lifecycle import submit as grade_and_store

    with solution_file(source) as path:
        return grade_and_store(pdir, path, Gradebook(), backend)


def autograde(ident: str, points: float, backend: str = "local") -> float:
    """The body of an nbgrader test cell: grade the recorded solution, show the verdicts, and
    return the points earned, which nbgrader reads from the cell's value as partial credit."""
    from IPython.display import display

    from runner.grading.pipeline import grade

    pdir, source = recorded_solution(ident)
    # nbgrader gives a cell zero points when it writes anything to stderr; grading is quiet
    # on purpose, so keep stray library warnings from costing the student their points.
    with solution_file(source) as path, warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        result = grade(pdir, path, backend)
    display(ResultView(result, pdir.key))
    return round(points * result.score / result.max_score, 6) if result.max_score else 0.0
