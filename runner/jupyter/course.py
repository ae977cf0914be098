"""An nbgrader course built from the problems: source notebooks, and the config that grades them.

Each problem becomes one notebook of the assignment. Its solution cell holds the starter with the
reference below it between `### BEGIN SOLUTION` / `### END SOLUTION` (so `nbgrader
generate_assignment` releases the starter alone), and its locked test cell calls our grader: the
hidden tests stay in graders/ and the student's functions run in the sandbox. The test cell's value
is the points earned, which nbgrader takes as partial credit.

`nbgrader autograde` normally runs every cell of a student's notebook in its kernel, where the code
could read the hidden tests or patch the grader. The course config swaps nbgrader's Execute for
`SandboxedExecute`, which runs only the locked test cells and hands the solution cells to the
sandbox as text: no student code runs outside the sandbox.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import Execute
from traitlets import Bool

from runner.problems.catalogue import ProblemDir
from runner.jupyter.notebooks import KERNELSPEC, header

CODE_STUB = "# YOUR CODE HERE: fill in the code above"

CONFIG = '''# nbgrader configuration of a course built by `grader course build`.
c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "{course_id}"
# The release keeps the starter code above the solution region; the region becomes this line.
c.ClearSolutions.code_stub = {{"python": "{code_stub}"}}
# Autograding runs only the locked test cells; the solution cells are graded in the sandbox.
c.Autograde.autograde_preprocessors = [
    "runner.jupyter.course.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# A test cell grades one problem through the sandbox: allow for its time limits.
c.Execute.timeout = {timeout}
# Feedback pages: formulas rendered to MathML here, as on the problem site (nbgrader's page would
# fetch MathJax from a CDN), with the stylesheet for them.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "runner.jupyter.course.RenderMath",
]
'''

ABOUT = """\
Write your code in the cell that starts with `%%solution` (fill in the starter's functions). Run
the public tests to check it. When the assignment is graded, that cell's functions are called by
hidden tests in a sandbox; the other cells are your scratch space and are not graded."""


class CourseError(RuntimeError):
    """The course cannot be built; the message says why."""

    pass


@dataclass
class CourseReport:
    """What `build_course` wrote and each problem's points."""

    assignment_dir: Path
    notebooks: list[Path] = field(default_factory=list)
    points: dict[str, float] = field(default_factory=dict)
    config_written: bool = False


def nbgrader_meta(grade_id: str, *, solution=False, grade=False, locked=False, points: float | None = None) -> dict:
    """A cell's nbgrader metadata (schema version 3)."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def split_future_imports(source: str) -> tuple[list[str], str]:
    """`from __future__` lines must open a module; take them out so two sources can be stacked."""
    tree = ast.parse(source)
    lines = source.splitlines()
    spans = [(n.lineno, n.end_lineno) for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    futures = ["\n".join(lines[a - 1:b]) for a, b in spans]
    keep = [ln for i, ln in enumerate(lines, 1) if not any(a <= i <= b for a, b in spans)]
    return futures, "\n".join(keep).strip()


def solution_source(pdir: ProblemDir) -> str:
    """The source notebook's solution cell: starter, then the reference inside the solution region.
    The reference's definitions come later, so they replace the starter's when the cell runs."""
    f1, starter = split_future_imports(pdir.starter.read_text(encoding="utf-8"))
    f2, reference = split_future_imports(pdir.solution_file.read_text(encoding="utf-8"))
    futures = list(dict.fromkeys(f1 + f2))
    head = "\n".join([f"%%solution {pdir.key}", *futures])
    return f"{head}\n{starter}\n\n### BEGIN SOLUTION\n{reference}\n### END SOLUTION"


def course_notebook(pdir: ProblemDir, points: float) -> nbformat.NotebookNode:
    """The nbgrader source notebook of one problem, worth `points`."""
    key = pdir.key
    cells = [new_markdown_cell(header(pdir, ABOUT), id="about")]
    for cell_id, name in (("statement", "statement.md"), ("learn", "learn.md")):
        text = pdir.text(name).strip()
        if text:
            cells.append(new_markdown_cell(text, id=cell_id))
    cells += [
        new_code_cell("%load_ext runner.jupyter\nfrom runner.jupyter import public_tests", id="setup",
                      metadata={"nbgrader": nbgrader_meta(f"setup-{key}", locked=True)}),
        new_code_cell(solution_source(pdir), id="solution",
                      metadata={"tags": ["solution"], "nbgrader": nbgrader_meta(f"solution-{key}", solution=True)}),
        new_code_cell("", id="scratch"),
        new_code_cell(f'public_tests("{key}")', id="public-tests"),
        new_markdown_cell("## Submit (optional)\n\nThe public and hidden tests, in the sandbox; the result goes to "
                          "your own gradebook (`grader results`), not the course's.", id="submit-intro"),
        new_code_cell(f'from runner.jupyter import submit\nsubmit("{key}")', id="submit"),
        new_markdown_cell("## Autograder\n\nThe hidden tests, run in the sandbox when the assignment is graded.",
                          id="tests-intro"),
        new_code_cell(f'from runner.jupyter import autograde\nautograde("{key}", points={points:g})', id="tests",
                      metadata={"nbgrader": nbgrader_meta(f"tests-{key}", grade=True, locked=True, points=points)}),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    nb.nbformat_minor = 5
    nbformat.validate(nb)
    return nb


def reference_points(pdir: ProblemDir, backend: str = "local") -> float:
    """The problem's points: what the reference scores through the sandbox (it must score all)."""
    from runner.grading.pipeline import grade

    result = grade(pdir, pdir.solution_file, backend)
    if result.score != result.max_score:
        raise CourseError(f"{pdir.key}: the reference scores {result.score:g} of {result.max_score:g}; "
                          f"run `grader validate {pdir.key}`")
    return result.max_score


def build_course(course_dir: Path, pdirs: list[ProblemDir], assignment: str = "ps1",
                 course_id: str = "diffusion-grader", backend: str = "local") -> CourseReport:
    """Write source/ASSIGNMENT/NNN-slug.ipynb for each problem, and nbgrader_config.py when absent."""
    if not pdirs:
        raise CourseError("no problems to put in the course")
    out = course_dir / "source" / assignment
    out.mkdir(parents=True, exist_ok=True)
    report = CourseReport(out)
    timeout = 60
    for pdir in pdirs:
        points = reference_points(pdir, backend)
        path = out / pdir.notebook.name
        path.write_text(nbformat.writes(course_notebook(pdir, points)) + "\n", encoding="utf-8")
        report.notebooks.append(path)
        report.points[pdir.key] = points
        timeout = max(timeout, int(pdir.meta.limits.total_s) + 60)
    config = course_dir / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG.format(course_id=course_id, timeout=timeout, code_stub=CODE_STUB), encoding="utf-8")
        report.config_written = True
    return report


class SandboxedExecute(Execute):
    """nbgrader's Execute for autograding, minus the student's code: the locked test cells run; each
    solution cell is recorded as text for the sandbox (`runner.jupyter.record`); other cells are
    skipped. Test cells are restored from nbgrader's database before this runs, so the kernel runs
    instructor code only."""

    def preprocess_cell(self, cell, resources, index):
        """Run locked test cells, record solution cells as text, skip the rest."""
        nbg = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or (nbg.get("grade") and nbg.get("locked")):
            return super().preprocess_cell(cell, resources, index)
        grade_id = nbg.get("grade_id", "")
        if nbg.get("solution") and grade_id.startswith("solution-"):
            key = grade_id.removeprefix("solution-")
            probe = new_code_cell(f"import runner.jupyter\nrunner.jupyter.record({key!r}, {cell.source!r})")
            probe, resources = super().preprocess_cell(probe, resources, index)
            cell.outputs = probe.outputs  # shows why, should recording fail
            self.nb.cells[index] = cell  # executing the probe put it in the cell's place
        return cell, resources


FEEDBACK_CSS = """
math { font-size: 1.1em; }
.math.block { overflow-x: auto; overflow-y: hidden; padding: 0.3em 0; margin: 0 0 1em; }
.math.inline { display: inline-block; max-width: 100%; overflow-x: auto; overflow-y: hidden; vertical-align: middle; }
.rendered_html pre.highlight { padding: 0.6em; overflow-x: auto; }
.rendered_html table { margin: 0 0 1em; }
"""


class RenderMath(Preprocessor):
    """Feedback pages: each markdown cell's formulas become MathML at build time, as on the site.

    The cell's markdown is rendered by the site's renderer and handed to nbconvert as one raw HTML
    block. Markdown ends such a block at an empty line, so the HTML is written without any: newlines
    inside <pre> become character references and other runs of newlines collapse.
    """

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess(self, nb, resources):
        """Add the stylesheet, then render every markdown cell."""
        from runner.site.markdown import pygments_css

        resources.setdefault("inlining", {}).setdefault("css", []).append(FEEDBACK_CSS + pygments_css())
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        """One markdown cell's source becomes its rendered HTML; other cells pass through."""
        from runner.site.markdown import render_markdown

        if cell.cell_type == "markdown" and cell.source.strip():
            page = render_markdown(cell.source, id_prefix=cell.get("id") or f"cell-{index}", top_level=None).html
            cell.source = f"<div class=\"grader-markdown\">\n{one_block(page)}\n</div>"
        return cell, resources


def one_block(page: str) -> str:
    """HTML with no empty line, so that markdown keeps it as a single raw block."""
    parts = re.split(r"(<pre\b.*?</pre>)", page, flags=re.S)
    return "".join(part.replace("\n", "&#10;") if part.startswith("<pre") else re.sub(r"\n\s*\n+", "\n", part)
                   for part in parts).strip()
