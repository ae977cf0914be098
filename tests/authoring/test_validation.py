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


# A numpy problem written from `grader new --framework numpy`: softmax over the last axis.
SOFTMAX = {
    "problems/901-softmax/statement.md": '''# Softmax

Turn each row of logits into probabilities: `softmax(x)[..., i] = exp(x[..., i]) / sum_j exp(x[..., j])`,
over the last axis, without overflowing for large logits.

## Signature

```
softmax(x: np.ndarray) -> np.ndarray   # (..., V) float32 -> (..., V) float32
```

## Tolerance

Floats are compared with rtol and atol from problem.toml.

Allowed imports: `numpy`, `math`.

## Worked example

```python
>>> import numpy as np
>>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]], dtype=np.float32))
array([[0.5 , 0.5 ],
       [0.25, 0.75]], dtype=float32)
```
''',
    "problems/901-softmax/learn.md": "# Softmax\n\nThe softmax of $x$ is $e^{x_i} / \\sum_j e^{x_j}$.\n",
    "problems/901-softmax/hints.md": "- Subtract the row's largest logit first.\n- Keep the dtype of `x`.\n",
    "problems/901-softmax/starter.py": '''"""Softmax."""
import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """(..., V) float32 logits -> (..., V) float32 probabilities over the last axis."""
    raise NotImplementedError
''',
    "problems/901-softmax/tests/test_public.py": '''import numpy as np

from runner.testing import assert_close


def test_example(submission, problem):
    out = submission.softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]], dtype=np.float32))
    assert_close(out, np.array([[0.5, 0.5], [0.25, 0.75]], dtype=np.float32), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="softmax")
''',
    "solutions/901-softmax/solution.py": '''"""Reference solution of 901-softmax."""
import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
''',
    "graders/901-softmax/test_hidden.py": '''import numpy as np

from runner.testing import assert_close, assert_shape_dtype, rng


def test_random_rows(submission, reference, problem):
    x = 3 * rng(1).standard_normal((5, 7), dtype=np.float32)
    assert_close(submission.softmax(x), reference.softmax(x), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="softmax of random rows")


def test_large_logits(submission, reference, problem):
    x = rng(2).uniform(500, 1000, (3, 4)).astype(np.float32)
    assert_close(submission.softmax(x), reference.softmax(x), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="softmax of large logits")


def test_rows_of_a_batch_sum_to_one(submission):
    x = rng(3).standard_normal((2, 3, 4), dtype=np.float32)
    out = submission.softmax(x)
    assert_shape_dtype(out, (2, 3, 4), np.float32, what="softmax of a (2, 3, 4) batch")
    assert_close(out.sum(axis=-1), np.ones((2, 3), dtype=np.float32), rtol=0, atol=1e-5,
                 what="the sum of each row")
''',
    "graders/901-softmax/mutants.toml": '''[no_shift]
mistake = "does not subtract the largest logit, so large logits overflow"
[[no_shift.edit]]
find = "shifted = x - x.max(axis=-1, keepdims=True)"
replace = "shifted = x"

[wrong_axis]
mistake = "normalises over the first axis"
[[wrong_axis.edit]]
find = "e.sum(axis=-1, keepdims=True)"
replace = "e.sum(axis=0, keepdims=True)"

[float64_answer]
mistake = "computes in float64 and answers float64"
[[float64_answer.edit]]
find = "e = np.exp(shifted)"
replace = "e = np.exp(shifted.astype(np.float64))"
''',
    "graders/901-softmax/coverage.toml": '''[[clause]]
id = "formula"
text = "exp(x_i) / sum_j exp(x_j) over the last axis"
tests = ["test_example", "test_random_rows", "test_rows_of_a_batch_sum_to_one"]

[[clause]]
id = "stable"
text = "without overflowing for large logits"
tests = ["test_large_logits"]

[[clause]]
id = "shape-dtype"
text = "(..., V) float32 -> (..., V) float32"
tests = ["test_rows_of_a_batch_sum_to_one"]
''',
    "graders/901-softmax/alternatives/rows.py": '''"""Alternative: row by row with math.exp, in Python floats."""
import math

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    rows = x.reshape(-1, x.shape[-1]).tolist()
    out = []
    for row in rows:
        top = max(row)
        e = [math.exp(v - top) for v in row]
        out.append([v / sum(e) for v in e])
    return np.array(out, dtype=x.dtype).reshape(x.shape)
''',
    "graders/901-softmax/alternatives/logsumexp.py": '''"""Alternative: through the log-sum-exp, in float64."""
import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64)
    top = z.max(axis=-1, keepdims=True)
    lse = top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True))
    return np.exp(z - lse).astype(x.dtype)
''',
}


def test_a_numpy_problem_from_the_scaffold_validates(tmp_path):
    from runner.authoring.scaffold import scaffold_problem
    from runner.jupyter.notebooks import write_notebook

    scaffold_problem(tmp_path, 901, "softmax", "Softmax", "numpy")
    toml = tmp_path / "problems/901-softmax/problem.toml"
    text = toml.read_text(encoding="utf-8")
    assert 'framework = "numpy"' in text and 'imports = ["numpy", "math"]' in text
    toml.write_text(text.replace('name = "solve"', 'name = "softmax"').replace('"TODO"', '"Softmax"')
                    .replace("TODO: ", ""), encoding="utf-8")
    for old in ("alternatives/add.py", "alternatives/loop.py"):
        (tmp_path / "graders/901-softmax" / old).unlink()
    for path, content in SOFTMAX.items():
        (tmp_path / path).write_text(content, encoding="utf-8")
    pdir = Catalogue(tmp_path).get("901")
    assert pdir.meta.framework == "numpy"
    write_notebook(pdir)
    report = validate(pdir, "local")
    checks = {c.name: c for c in report.checks}
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    assert not failed, "\n".join(failed)
    assert checks["reference scores full marks"].detail.startswith("4/4")
    assert checks["hidden tests"].detail == "3 hidden, 1 public"
    assert {"alternative rows scores full marks", "alternative logsumexp scores full marks",
            "starter scores zero (every test can fail)", "mutant no_shift is caught", "mutant wrong_axis is caught",
            "mutant float64_answer is caught"} <= set(checks)
    # the first hidden test that fails settles it: the grading stops there
    assert checks["mutant float64_answer is caught"].detail == "by test_random_rows"
    assert checks["empty answers score zero"].detail == "0 points"


def test_the_scaffold_refuses_an_unknown_framework(tmp_path):
    from runner.authoring.scaffold import scaffold_problem

    with pytest.raises(ValueError, match=r"^framework 'jax': choose one of torch, numpy$"):
        scaffold_problem(tmp_path, 902, "toy", "Toy", "jax")
    assert not any(tmp_path.iterdir())
