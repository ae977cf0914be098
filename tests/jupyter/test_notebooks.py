"""The problems' notebooks: generated from the folders, committed fresh, and solvable in a real kernel.

The execution tests run the committed notebook with nbclient in a python3 kernel (ipykernel of this
environment), exactly as JupyterLab's "Run All" would, and grade through the real sandbox.
"""
import json

import nbformat
from nbclient import NotebookClient

from tests.support.helpers import ROOT, grader_cli, write
from runner.problems.catalogue import Catalogue
from runner.records.gradebook import Gradebook
from runner.jupyter.notebooks import render
from runner.grading.submission import read_submission

PROBLEM = "413-forward-process"


def test_committed_notebooks_are_fresh(tmp_path, catalogue):
    """Each problem's notebook equals one regenerated now from its folder (`grader notebooks` fixes it)."""
    stale = []
    for pdir in catalogue.problems():
        fresh = write(tmp_path / pdir.notebook.name, render(pdir))
        committed = pdir.notebook.read_text(encoding="utf-8") if pdir.notebook.is_file() else ""
        if committed != fresh.read_text(encoding="utf-8"):
            stale.append(pdir.key)
    assert catalogue.problems() and not stale, f"stale or missing notebooks (run `grader notebooks`): {stale}"


def test_notebook_carries_the_problem_and_submits_as_a_file(catalogue):
    pdir = catalogue.get(PROBLEM)
    nb = nbformat.read(pdir.notebook, as_version=4)
    nbformat.validate(nb)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert pdir.meta.title in markdown and pdir.text("statement.md").strip() in markdown
    assert pdir.text("learn.md").strip() in markdown
    tagged = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].source.startswith(f"%%solution {PROBLEM}\n")
    # `grader submit ID notebook.ipynb` grades the same cell: the tagged one, magic line dropped.
    code = read_submission(pdir.notebook, [f.name for f in pdir.meta.functions]).code
    assert code.strip() == pdir.starter.read_text(encoding="utf-8").strip()
    assert nb.cells[-1].source == f'submit("{PROBLEM}")'


def test_cli_regenerates_and_checks(tmp_path):
    env = {"GRADER_ROOT": str(tmp_path)}
    assert grader_cli("new", "999", "demo", "--title", "Demo", env=env).returncode == 0
    missing = grader_cli("notebooks", "--check", env=env)
    assert missing.returncode == 1 and "999-demo.ipynb" in missing.stderr
    first = grader_cli("notebooks", env=env)
    assert first.returncode == 0 and first.stdout == f"  wrote {tmp_path / 'problems/999-demo/999-demo.ipynb'}\n"
    again = grader_cli("notebooks", env=env)
    assert again.stdout == f"  unchanged {tmp_path / 'problems/999-demo/999-demo.ipynb'}\n"
    assert grader_cli("notebooks", "--check", env=env).returncode == 0
    statement = tmp_path / "problems/999-demo/statement.md"
    statement.write_text(statement.read_text() + "\nOne more sentence.\n")
    assert grader_cli("notebooks", "--check", env=env).returncode == 1
    # `grader start` hands the solver the notebook next to solution.py
    assert grader_cli("notebooks", "999", env=env).returncode == 0
    assert grader_cli("start", "999", str(tmp_path / "ws"), env=env).returncode == 0
    nb = json.loads((tmp_path / "ws/999-demo.ipynb").read_text())
    assert "One more sentence." in "".join("".join(c["source"]) for c in nb["cells"])


def run_notebook(nb, cwd, allow_errors=False):
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return {c.get("id"): c for c in nb.cells}


def with_solution(source: str):
    pdir = Catalogue(ROOT).get(PROBLEM)
    nb = nbformat.read(pdir.notebook, as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == "solution")
    cell.source = f"%%solution {PROBLEM}\n{source}"
    return nb


def html_of(cell) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def stream(cell, name: str = "stdout") -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def test_run_all_on_the_untouched_notebook_grades_the_public_tests_and_submits_nothing(tmp_path, catalogue):
    nb = nbformat.read(catalogue.get(PROBLEM).notebook, as_version=4)
    cells = run_notebook(nb, tmp_path)  # raises CellExecutionError on any failing cell
    solution = cells["solution"]
    lines = solution.source.splitlines()
    assert stream(solution) == (f"{PROBLEM}: recorded {len(lines) - 1} lines as your solution; run submit() "
                                "to grade it (public_tests() to check it first)\n")
    public = html_of(cells["public-tests"])
    assert f"{PROBLEM}, public tests: 0 / " in public and "NotImplementedError" in public
    # a traceback names the cell's own line (the %%solution line is line 1)
    first_raise = next(i for i, line in enumerate(lines, 1) if "raise NotImplementedError" in line)
    assert f"line {first_raise}, in " in public
    # Run All reaches submit(): the untouched starter is not graded, and nothing is stored
    assert stream(cells["submit"]).startswith(f"{PROBLEM}: not submitted: your solution is still the starter.")
    assert not cells["submit"].outputs[1:] and Gradebook().history(PROBLEM) == []


def test_a_solution_cell_without_a_known_id_names_the_known_ids(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext runner.jupyter", id="setup"),
        nbformat.v4.new_code_cell("%%solution 999\nx = 1", id="unknown"),
        nbformat.v4.new_code_cell("%%solution\ny = 2", id="missing"),
        nbformat.v4.new_code_cell("print(x + y)", id="ran")])
    cells = run_notebook(nb, tmp_path)  # no traceback: CellExecutionError otherwise
    known = ", ".join(Catalogue(ROOT).keys())
    assert stream(cells["unknown"], "stderr") == f"%%solution 999: no problem '999' (known: {known}); nothing recorded\n"
    assert stream(cells["missing"], "stderr") == (f"%%solution needs a problem id, e.g. `%%solution 413` "
                                                  f"(known: {known}); nothing recorded\n")
    assert stream(cells["ran"]) == "3\n", "the cell's code still runs"


def test_reference_pasted_into_the_notebook_scores_full_marks(tmp_path, catalogue):
    reference = catalogue.get(PROBLEM).solution_file.read_text(encoding="utf-8")
    nb = with_solution(reference)
    nb.cells.insert(-1, nbformat.v4.new_code_cell("scratch_only = 1\nundefined_name  # a failing scratch cell"))
    cells = run_notebook(nb, tmp_path, allow_errors=True)
    [row] = Gradebook().history(PROBLEM)  # the kernel shares this test's private gradebook
    assert row.status == "graded" and row.score == row.max_score > 0, row.result()
    assert f"{PROBLEM}, submission: {row.score:g} / {row.max_score:g}" in html_of(cells["submit"])
    assert {t.visibility for t in row.result().tests} == {"visible", "hidden"}
    # what was graded is the solution cell as run, not the scratch cells
    assert row.content.decode().strip() == reference.strip()


def test_syntax_error_in_the_solution_cell_is_invalid_at_the_cells_own_line(tmp_path):
    nb = with_solution("import torch\n%time 1\n\ndef corrupt_canvas(tokens:\n    return tokens\n")
    cells = run_notebook(nb, tmp_path, allow_errors=True)
    [error] = [o for o in cells["solution"].outputs if o.output_type == "error"]
    assert error.ename == "SyntaxError" and "line 5" in error.evalue  # IPython's, counting the %%solution line
    assert "invalid" in html_of(cells["submit"])
    [row] = Gradebook().history(PROBLEM)
    tests = row.result().tests
    assert tests and {t.status for t in tests} == {"invalid"} and row.score == 0
    assert "syntax error at line 5" in tests[0].message
