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
