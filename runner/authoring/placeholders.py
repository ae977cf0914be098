"""Placeholders: what `grader new` leaves for the instructor to replace, each marked `TODO`.

`grader validate` fails while any remains in the problem's folders, and names each by file and line.
"""
from __future__ import annotations

import re

from runner.problems.catalogue import ProblemDir

TAG = re.compile(r"\bTODO\b")
CHECKED = (".md", ".toml", ".py")  # the files an instructor writes (the notebook is generated)


def placeholders(pdir: ProblemDir) -> list[str]:
    """Each line of the problem's files still holding a `TODO`, as `path:line: text` (path from the root)."""
    found = []
    for folder in (pdir.folder, pdir.solution_file.parent, pdir.grader_dir):
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.suffix in CHECKED and "__pycache__" not in p.parts):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            found += [f"{path.relative_to(pdir.root)}:{n}: {line.strip()}"
                      for n, line in enumerate(lines, 1) if TAG.search(line)]
    return found


def check_placeholders(pdir: ProblemDir) -> tuple[bool, str]:
    """(ok, the placeholders left): ok when no file holds a `TODO` any more."""
    found = placeholders(pdir)
    if not found:
        return True, ""
    return False, f"{len(found)} left, replace each TODO:" + "".join(f"\n    {line}" for line in found)
