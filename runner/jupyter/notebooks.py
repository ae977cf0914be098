"""Generating each problem's Jupyter notebook from its folder (`problems/NNN-slug/NNN-slug.ipynb`).

The notebook is a build product: `grader notebooks` rewrites it from problem.toml, statement.md,
learn.md and starter.py, and a test fails when a committed notebook differs from a fresh one.
Cell ids are fixed and the JSON is written the way nbformat always writes it, so the same folder
always gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from runner.problems.catalogue import Catalogue, ProblemDir

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

HOW_IT_WORKS = """\
**How this notebook works.** Write your code in the cell that starts with `%%solution`: running
that cell records it as your answer (no need to save the notebook first). Run the public tests, then
submit: the hidden tests grade your functions in a sandbox and the result goes to your gradebook
(`grader results`). Every other cell is scratch space and is never submitted."""


def header(pdir: ProblemDir, about: str = HOW_IT_WORKS) -> str:
    """The notebook's first markdown cell: title, difficulty, tags, paper, how it works."""
    m = pdir.meta
    paper = m.paper.title + (f", {m.paper.section}" if m.paper.section else "")
    return (f"# {m.id}. {m.title}\n\n**{m.difficulty.value}** · {', '.join(m.tags)}  \n"
            f"*{paper}*\n\n{about}")


def build_notebook(pdir: ProblemDir) -> nbformat.NotebookNode:
    """The solver's notebook of one problem, generated from its folder."""
    key = pdir.key
    cells = [new_markdown_cell(header(pdir), id="about")]
    for cell_id, name in (("statement", "statement.md"), ("learn", "learn.md")):
        text = pdir.text(name).strip()
        if text:
            cells.append(new_markdown_cell(text, id=cell_id))
    cells += [
        new_code_cell("%load_ext runner.jupyter\nfrom runner.jupyter import public_tests, submit", id="setup"),
        new_markdown_cell("## Your solution\n\nRun this cell after every change: the `%%solution` line "
                          "records it as your answer.", id="solution-intro"),
        new_code_cell(f"%%solution {key}\n{pdir.starter.read_text(encoding='utf-8').strip()}",
                      id="solution", metadata={"tags": ["solution"]}),
        new_markdown_cell("## Scratch\n\nTry your code here; these cells are not submitted.", id="scratch-intro"),
        new_code_cell("", id="scratch"),
        new_markdown_cell("## Public tests\n\nThe public tests, run on your recorded solution in the sandbox. "
                          "Nothing is stored.", id="public-intro"),
        new_code_cell(f'public_tests("{key}")', id="public-tests"),
        new_markdown_cell("## Submit\n\nThe public and hidden tests, in the sandbox; the result is stored in "
                          "your gradebook.", id="submit-intro"),
        new_code_cell(f'submit("{key}")', id="submit"),
    ]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        "grader": {"problem": key, "generated": "by `grader notebooks` from the problem folder; do not edit"},
    })
    nb.nbformat_minor = 5
    nbformat.validate(nb)
    return nb


def render(pdir: ProblemDir) -> str:
    """The notebook as the text of its .ipynb file."""
    return nbformat.writes(build_notebook(pdir)) + "\n"


def write_notebook(pdir: ProblemDir, path: Path | None = None) -> bool:
    """Write the notebook (default: next to the problem's files) unless it is fresh already;
    whether it was written."""
    path = path or pdir.notebook
    text = render(pdir)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def notebook_state(pdir: ProblemDir) -> str:
    """"fresh", "missing", or "stale" (it differs from what `grader notebooks` would write now)."""
    if not pdir.notebook.is_file():
        return "missing"
    return "fresh" if pdir.notebook.read_text(encoding="utf-8") == render(pdir) else "stale"


def stale_notebooks(catalogue: Catalogue | None = None) -> list[ProblemDir]:
    """Problems whose committed notebook is missing or differs from a fresh rendering."""
    pdirs = (catalogue or Catalogue()).problems()
    return [p for p in pdirs if notebook_state(p) != "fresh"]
