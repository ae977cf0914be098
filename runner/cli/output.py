"""What the CLI prints: the consoles, error exits, and the verdict table of a result."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from runner.records.results import Result

# Piped or captured output is read by scripts, logs and `grep`: nothing is wrapped there, so a path,
# command or option is never cut mid-word. Tables get room for their widest row; rules and
# markdown, which fill the width, are written as plain text instead (`rule`, `markdown`).
PIPED_WIDTH = 10_000


def make_console(stderr: bool = False) -> Console:
    """A console at the terminal's width, or, when piped or captured, one that never wraps."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    # stderr keeps its width for the log lines, which are padded to it; its prints never wrap.
    return Console(stderr=stderr, width=None if stderr else PIPED_WIDTH, soft_wrap=True)


console = make_console()
err = make_console(stderr=True)

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "memory": "yellow",
                "crashed": "magenta", "invalid": "magenta", "skipped": "dim"}


def fail(message: str, code: int = 2) -> None:
    """Print `error: message` on stderr (as plain text: `[name]` stays) and exit with `code`."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def rule(title: str, style: str = "rule.line") -> None:
    """A titled horizontal rule on a terminal; `── title ──` when piped or captured."""
    if console.is_terminal:
        console.rule(title, style=style)
    else:
        console.print(f"── {title} ──", markup=False, highlight=False)


def markdown(text: str) -> None:
    """Markdown rendered on a terminal; its source as it is when piped or captured."""
    if console.is_terminal:
        console.print(Markdown(text))
    else:
        console.print(text.rstrip("\n"), markup=False, highlight=False)


def print_result(result: Result, file=None) -> None:
    """The verdict table of a graded submission, then the file graded (when given), where and how
    long it was graded."""
    title = f"{result.problem}: {result.score:g} / {result.max_score:g}"
    if result.status == "invalid":
        title += " (the file could not be graded)"
    table = Table(title=title, show_lines=False)
    table.add_column("test")
    table.add_column("verdict")
    table.add_column("points", justify="right")
    table.add_column("message", overflow="fold")
    for t in result.tests:
        name = t.name + (" [dim](hidden)[/]" if t.visibility == "hidden" else "")
        table.add_row(name, f"[{STATUS_STYLE.get(t.status, '')}]{t.status}[/]", f"{t.score:g}/{t.max_score:g}",
                      t.message)
    console.print(table)
    sub = f"submission #{result.submission_id}, " if result.submission_id else ""
    graded = f"graded {file}, " if file is not None else ""
    where = ", on the CPU" if result.device == "cpu" else ", on the GPU" if result.device == "cuda" else ""
    peak = result.timing.get("peak_memory_mb")
    memory = f", worker peak memory {peak:g} MB" if peak else ""
    console.print(f"[dim]{escape(graded + sub)}{result.backend} backend{where}, {result.duration_s:.1f} s{memory}[/]")


def equivalent_entry(original: str, mutated: str) -> str:
    """A mutants.toml [[equivalent]] entry for a survivor, to paste and give a reason."""
    import json

    # a JSON string with its escapes is a TOML basic string
    return (f"[[equivalent]]\noriginal = {json.dumps(original)}\nmutated = {json.dumps(mutated)}\n"
            'reason = "TODO: why no test can tell it from the reference"')


def print_mutation_report(report, min_score: float) -> bool:
    """A mutation report (runner.authoring.mutation): the counts and score, then each survivor with
    its diff; whether the score reaches `min_score` with no grader errors."""
    from rich.markup import escape
    from rich.syntax import Syntax

    from runner.authoring.mutation import EQUIVALENT, ERROR, KILLED, SURVIVED

    total = len(report.outcomes)
    judged = report.count(KILLED) + report.count(SURVIVED)
    table = Table(title=f"{report.problem}: mutation analysis")
    table.add_column("mutants", justify="right")
    table.add_column("killed", justify="right", style="green")
    table.add_column("survived", justify="right", style="red")
    table.add_column("equivalent", justify="right")
    table.add_column("grader errors", justify="right")
    table.add_column("mutation score", justify="right")
    table.add_column("time", justify="right")
    graded = f"{total}" + (f" of {report.generated}" if total < report.generated else "")
    table.add_row(graded, str(report.count(KILLED)), str(report.count(SURVIVED)), str(report.count(EQUIVALENT)),
                  str(report.count(ERROR)), f"{report.score:.3f} ({report.count(KILLED)}/{judged})",
                  f"{report.seconds:.0f} s")
    console.print(table)
    made = report.generated + report.uncompilable + report.duplicates
    console.print(f"[dim]cosmic-ray's operators made {made} mutants: kept {report.generated}; skipped {report.uncompilable} "
                  f"that do not compile and {report.duplicates} that run as the reference or an earlier mutant does[/]",
                  highlight=False)
    for outcome in report.outcomes:
        if outcome.status == ERROR:
            err.print(f"[red]grader error[/] on mutant {outcome.mutant.name}: {escape(outcome.detail)}", highlight=False)
    for entry in report.stale:
        err.print(escape(f"stale: no mutant matches the [[equivalent]] entry original = {entry.original!r}, "
                         f"mutated = {entry.mutated!r} (remove it, or update it to the reference)"), highlight=False)
    for outcome in report.survivors():
        mutant = outcome.mutant
        rule(f"survived: mutant {mutant.name}", style="red")
        console.print(Syntax(mutant.diff.rstrip("\n"), "diff", theme="ansi_dark", background_color="default"))
        console.print("[dim]write a test that kills it, or declare it in mutants.toml:[/]", highlight=False)
        console.print(equivalent_entry(mutant.original, mutant.mutated), markup=False, highlight=False)
    ok = report.score >= min_score and not report.count(ERROR)
    verdict = "[green]ok[/]" if ok else "[red]FAIL[/]"
    console.print(f"{verdict} {report.problem}: mutation score {report.score:.3f} (minimum {min_score:g})",
                  highlight=False)
    return ok
