"""Alternatives: other correct solutions, written from the statement alone in styles unlike the
reference (plain loops instead of vectorised code, float64 inside, another allowed order of random
draws). Each must score full marks; one that does not shows a test stricter than the statement.

They live in `graders/NNN-slug/alternatives/*.py`, one complete solution per file (files whose
name starts with `_` are left out); `grader validate` grades each as it grades the reference.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runner.problems.catalogue import ProblemDir
from runner.records.results import Result

MISSING = "no alternatives"


def alternatives_dir(pdir: ProblemDir) -> Path:
    """The problem's graders/NNN-slug/alternatives/ folder."""
    return pdir.grader_dir / "alternatives"


def alternative_files(pdir: ProblemDir) -> list[Path]:
    """The problem's alternative solutions, by name."""
    folder = alternatives_dir(pdir)
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")) if folder.is_dir() else []


def full_marks(result: Result) -> tuple[bool, str]:
    """(ok, detail): every test passed (or was skipped) and the score is the maximum."""
    bad = [f"{t.name}: {t.status} {t.message[:200]}".rstrip() for t in result.tests
           if t.status not in ("passed", "skipped")]
    ok = not bad and result.score == result.max_score
    return ok, f"{result.score:g}/{result.max_score:g}" + ("; failing: " + "; ".join(bad) if bad else "")


def check_alternatives(pdir: ProblemDir, score: Callable[[Path], Result | None],
                       add: Callable[[str, bool, str], object]) -> None:
    """Grade every alternative with `score` (None: grading failed, already reported) and `add` a
    check per file; with none at all, a failing check that says what to write."""
    files = alternative_files(pdir)
    if not files:
        add(MISSING, False, f"add 2-3 correct solutions, written from the statement alone in styles unlike "
                            f"the reference, as {alternatives_dir(pdir)}/NAME.py")
        return
    for path in files:
        result = score(path)
        if result is not None:
            add(f"alternative {path.stem} scores full marks", *full_marks(result))
