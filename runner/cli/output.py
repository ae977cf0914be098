"""What the CLI prints: the consoles, error exits, and the verdict table of a result."""
from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from runner.records.results import Result

console = Console()
err = Console(stderr=True)

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "memory": "yellow",
                "crashed": "magenta", "invalid": "magenta", "skipped": "dim"}


def fail(message: str, code: int = 2) -> None:
    """Print `error: message` on stderr and exit with `code`."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def print_result(result: Result) -> None:
    """The verdict table of a graded submission, then where and how long it was graded."""
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
    console.print(f"[dim]{sub}{result.backend} backend, {result.duration_s:.1f} s[/]")
