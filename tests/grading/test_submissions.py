"""Malformed submissions get the `invalid` verdict with a message naming the problem; notebooks
are graded from their `solution` cells. All through the real sandbox on problem 413."""
import json

import pytest

from runner.grading.pipeline import grade


def grade_bytes(catalogue, tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return grade(catalogue.get("413"), path, "local")


def only_invalid(result, needle: str):
    # one verdict for the file, not one per test; the score is out of the problem's full marks
    assert result.status == "invalid" and result.score == 0 and result.max_score > 1
    (entry,) = result.tests
    assert entry.status == "invalid" and entry.max_score == result.max_score
    assert needle in entry.message, entry.message


@pytest.mark.parametrize("name,data,needle", [
    ("syntax.py", b"def sample_noise_level(:\n    pass\n", "syntax error at line 1"),
    ("latin1.py", "x = 'caf\xe9'\n".encode("latin-1"), "not UTF-8"),
    ("empty.py", b"", "empty"),
    ("blank.py", b"\n\n   \n", "empty"),
    ("huge.py", b"# " + b"x" * (2 << 20) + b"\n", "the limit is"),
    ("missing.py", b"def sample_noise_level(batch_size):\n    pass\n", "does not define corrupt_canvas"),
    ("nul.py", b"x = 1\x00\n", "NUL"),
    ("broken.ipynb", b"{not json", "not a Jupyter notebook"),
    ("notes.txt", b"def sample_noise_level(batch_size):\n    pass\n", "only a Python file (.py) or a notebook"),
    ("empty.ipynb", json.dumps({"cells": [{"cell_type": "markdown", "source": "# hi", "metadata": {}}]}).encode(),
     "%%solution"),
], ids=lambda v: v if isinstance(v, str) and v.endswith((".py", ".ipynb", ".txt")) else "")
def test_static_problems(catalogue, tmp_path, name, data, needle):
    only_invalid(grade_bytes(catalogue, tmp_path, name, data), needle)


def test_wrong_signature(catalogue, tmp_path):
    ref = catalogue.get("413").solution_file.read_text()
    code = ref + "\n\ndef corrupt_canvas(x):\n    return x\n"
    only_invalid(grade_bytes(catalogue, tmp_path, "sig.py", code.encode()), "corrupt_canvas")


def test_raises_at_import(catalogue, tmp_path):
    ref = catalogue.get("413").solution_file.read_text()
    result = grade_bytes(catalogue, tmp_path, "boom.py", (ref + "\nraise ValueError('boom')\n").encode())
    only_invalid(result, "ValueError")


def notebook(cells: list[tuple[str, list[str]]]) -> bytes:
    return json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "metadata": {"tags": tags}, "source": src, "outputs": [],
                   "execution_count": None} for src, tags in cells],
    }).encode()


@pytest.mark.parametrize("head,tags", [("%matplotlib inline\n", ["solution"]), ("%%solution 413\n", [])],
                         ids=["tagged", "solution-magic"])
def test_notebook_solution_cells_are_graded(catalogue, tmp_path, head, tags):
    ref = catalogue.get("413").solution_file.read_text()
    data = notebook([("raise SystemExit('scratch cell, not part of the submission')", []), (head + ref, tags)])
    result = grade_bytes(catalogue, tmp_path, "nb.ipynb", data)
    assert result.score == result.max_score


def test_a_notebook_without_the_functions_says_which_cells_were_read():
    from runner.grading.submission import check_source
    from runner.sandbox.failures import SubmissionInvalid

    data = notebook([("import torch\nx = torch.zeros(3)", []), ("def helper():\n    pass", [])])
    with pytest.raises(SubmissionInvalid) as err:
        check_source("nb.ipynb", data, ["sample_noise_level"])
    assert err.value.message.startswith("nb.ipynb: does not define sample_noise_level (a notebook is graded from ")
    assert "tagged `solution`" in err.value.message and "%%solution ID" in err.value.message
    with pytest.raises(SubmissionInvalid) as err:  # a .py file is read whole: nothing to say about cells
        check_source("nb.py", b"x = 1\n", ["sample_noise_level"])
    assert err.value.message == "nb.py: does not define sample_noise_level"


def test_notebook_without_tags_uses_all_code_cells(catalogue, tmp_path):
    starter = catalogue.get("413").starter.read_text()
    result = grade_bytes(catalogue, tmp_path, "nb.ipynb", notebook([(starter, [])]))
    assert result.score == 0 and {t.status for t in result.tests} == {"error"}


def test_a_mistake_graded_on_the_hidden_tests_alone_stops_at_the_first_failure(catalogue, tmp_path):
    # what `grader validate` asks of each mutants.toml entry: does a hidden test fail?
    from runner.authoring.mutants import load_mutants

    pdir = catalogue.get("413")
    mutant = load_mutants(pdir)[0].write(tmp_path)
    full = grade(pdir, mutant, "local")
    quick = grade(pdir, mutant, "local", public=False, first_failure=True)
    assert {t.visibility for t in quick.tests} == {"hidden"}
    failed = [t for t in quick.tests if t.status != "passed"]
    assert len(failed) == 1 and quick.tests[-1] is failed[0], [t.status for t in quick.tests]
    assert len(quick.tests) < len([t for t in full.tests if t.visibility == "hidden"])
