"""`grader validate` passes for every bundled problem: metadata, files, statement and worked
example, reference full marks and starter zero through the sandbox, every mutant caught, empty
answers earn no hidden points."""
import pytest

from runner.problems.catalogue import Catalogue
from runner.authoring.validation import validate

KEYS = Catalogue().keys()


@pytest.mark.parametrize("key", KEYS)
def test_problem_validates(key):
    report = validate(Catalogue().get(key), "local")
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    assert not failed, "\n".join(failed)
    names = [c.name for c in report.checks]
    assert "reference scores full marks" in names and "starter scores zero (every test can fail)" in names
    assert "empty answers score zero" in names


def test_the_problem_set_is_complete():
    assert {"413-forward-process", "414-entropy-bounded-sampling", "415-adaptive-stopping",
            "416-temperature-schedule", "417-attention-masking"} <= set(KEYS)


def test_the_statement_must_state_the_allowed_imports(tmp_path):
    from runner.authoring.validation import statement_states_imports
    from tests.support.helpers import problem_copy

    pdir = problem_copy(tmp_path, "418-full-inference").get("418")
    assert statement_states_imports(pdir) == (True, "")
    statement = pdir.folder / "statement.md"
    text = statement.read_text(encoding="utf-8")
    statement.write_text(text.replace("`transformers.DynamicCache`", "DynamicCache"), encoding="utf-8")
    ok, why = statement_states_imports(pdir)
    assert not ok and "do not name transformers.DynamicCache" in why
    statement.write_text(text.replace("Allowed imports:", "Imports:"), encoding="utf-8")
    ok, why = statement_states_imports(pdir)
    assert not ok and "Allowed imports: `torch`, `math`, `transformers.DynamicCache`." in why


@pytest.fixture
def scaffold(tmp_path):
    from runner.authoring.scaffold import scaffold_problem

    scaffold_problem(tmp_path, 900, "toy", "TODO title")
    return Catalogue(tmp_path).get("900")


def test_placeholders_are_named_until_each_is_replaced(scaffold):
    from runner.authoring.placeholders import check_placeholders, placeholders

    found = placeholders(scaffold)
    assert "problems/900-toy/problem.toml:3: title = \"TODO title\"" in found
    assert "problems/900-toy/statement.md:1: # TODO title" in found
    assert "problems/900-toy/hints.md:2: - TODO: a second hint" in found
    assert len(found) == 12
    ok, detail = check_placeholders(scaffold)
    assert not ok and detail.startswith("12 left, replace each TODO:\n    problems/900-toy/hints.md:1: ")
    for path in scaffold.root.rglob("*.*"):
        path.write_text(path.read_text().replace("TODO", "Toy"))
    assert check_placeholders(scaffold) == (True, "")


def test_the_notebook_must_be_there_and_fresh(scaffold):
    from runner.authoring.validation import notebook_fresh
    from runner.jupyter.notebooks import write_notebook

    assert notebook_fresh(scaffold) == (False, "900-toy.ipynb is missing: run `grader notebooks 900`")
    assert write_notebook(scaffold) is True and write_notebook(scaffold) is False  # "unchanged"
    assert notebook_fresh(scaffold) == (True, "")
    learn = scaffold.folder / "learn.md"
    learn.write_text(learn.read_text() + "\nOne more paragraph.\n")
    assert notebook_fresh(scaffold) == (False, "900-toy.ipynb differs from the problem's files: "
                                               "run `grader notebooks 900`")


def test_a_failing_worked_example_points_at_the_statements_own_line(scaffold):
    from runner.authoring.validation import run_worked_example

    statement = scaffold.folder / "statement.md"
    line = statement.read_text().splitlines().index(">>> solve(torch.tensor([1.0, 2.0]))") + 1
    scaffold.solution_file.write_text("def solve(x):\n    return 3 * x\n")
    assert run_worked_example(scaffold) == (False, f"statement.md, line {line}: >>> solve(torch.tensor([1.0, 2.0]))\n"
                                                   "  expected: tensor([2., 4.])\n  got: tensor([3., 6.])")
    scaffold.solution_file.write_text("def solve(x):\n    raise ValueError('no')\n")
    assert run_worked_example(scaffold) == (False, f"statement.md, line {line}: >>> solve(torch.tensor([1.0, 2.0]))\n"
                                                   "  raised ValueError: no")
