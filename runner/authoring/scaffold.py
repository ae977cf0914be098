"""Folders people work in: a solver's working folder, and an instructor's new problem."""
from __future__ import annotations

import shutil
from pathlib import Path

from typing import get_args

from runner.authoring.coverage import TEMPLATE as COVERAGE
from runner.problems.catalogue import ProblemDir
from runner.problems.schema import Problem

FRAMEWORKS: tuple[str, ...] = get_args(Problem.model_fields["framework"].annotation)  # torch, numpy

CONFTEST = '''# Lets plain `pytest` run the public tests here against solution.py.
pytest_plugins = ["runner.grading.plugin"]
'''


def make_workspace(pdir: ProblemDir, target: Path) -> list[Path]:
    """Copy what a solver needs; never overwrite their solution."""
    target.mkdir(parents=True, exist_ok=True)
    solution = target / "solution.py"
    if solution.exists():
        raise FileExistsError(f"{solution} exists already; choose another folder")
    copies = {pdir.starter: solution, pdir.folder / "problem.toml": target / "problem.toml",
              pdir.folder / "statement.md": target / "statement.md"}
    for test in sorted(pdir.public_tests.glob("test_*.py")):
        copies[test] = target / test.name
    written = []
    for src, dst in copies.items():
        shutil.copyfile(src, dst)
        written.append(dst)
    (target / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    written.append(target / "conftest.py")
    notebook = workspace_notebook(pdir, target)
    return written + ([notebook] if notebook else [])


def workspace_notebook(pdir: ProblemDir, target: Path) -> Path | None:
    """The problem's notebook, rendered from its folder (so a missing or stale committed copy does not
    matter); None when the notebook tools (the `lab` extra) are not installed."""
    try:
        from runner.jupyter.notebooks import render
    except ImportError:
        return None
    path = target / pdir.notebook.name
    path.write_text(render(pdir), encoding="utf-8")
    return path


# Templates of `grader new`: a working toy problem (solve(x) = 2 x) to replace, one set per
# framework. problem.toml, the statement, the starter and the reference are formatted with the
# problem's fields; the other files are written as they are.
PROBLEM_TOML = '''id = {id}
slug = "{slug}"
title = "{title}"
difficulty = "Medium"
tags = ["TODO"]
framework = "{framework}"
device = "cpu"
summary = "TODO: one line for the catalogue."
set = ""                         # the key of its set in site/problem-sets.toml ("" for none)
imports = {imports}      # what the solution may import; state it in statement.md too

[paper]
title = "TODO: paper"
section = "TODO: section"

[[functions]]
name = "solve"
params = ["x"]

[limits]
time_s = 10
memory_mb = 2048

[tolerance]
rtol = 1e-5
atol = 1e-6
'''

LEARN = "# Background\n\nTODO: the math and where it sits in the paper.\n"
HINTS = "- TODO: a first hint\n- TODO: a second hint\n"

MUTANTS = '''# Realistic mistakes: each is the reference with these edits; every one must fail a hidden test.

[returns_input]
mistake = "returns its input unchanged"
[[returns_input.edit]]
find = "return 2 * x"
replace = "return x"
'''

TORCH = {
    "imports": '["torch", "math"]',
    "statement": '''# {title}

TODO: what to implement, where it sits in the paper.

## Signature

```
solve(x: torch.Tensor) -> torch.Tensor   # (B, L) float32 -> (B, L) float32
```

## Tolerance

Floats are compared with rtol and atol from problem.toml.

Allowed imports: `torch`, `math`.

## Worked example

```python
>>> import torch
>>> solve(torch.tensor([1.0, 2.0]))
tensor([2., 4.])
```
''',
    "starter": '''"""{title}."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    """TODO: describe shapes and dtypes."""
    raise NotImplementedError
''',
    "solution": '''"""Reference solution of {key}."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    return 2 * x
''',
    "mutants": MUTANTS,
    "public_test": '''import torch

from runner.testing import assert_close


def test_example(submission, problem):
    out = submission.solve(torch.tensor([1.0, 2.0]))
    assert_close(out, torch.tensor([2.0, 4.0]), rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="solve")
''',
    "hidden_test": '''import torch

from runner.testing import assert_close


def test_random_inputs(submission, reference, problem):
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    assert_close(submission.solve(x), reference.solve(x), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="solve on random inputs")
''',
    # Correct solutions in styles unlike the reference: each must score full marks.
    "alternatives": {
        "add.py": '''"""Alternative: adds the input to itself."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    return x + x
''',
        "loop.py": '''"""Alternative: one element at a time, in float64."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1).tolist()
    out = torch.tensor([2.0 * v for v in flat], dtype=torch.float64)
    return out.to(x.dtype).reshape(x.shape)
''',
    },
}

NUMPY = {
    "imports": '["numpy", "math"]',
    "statement": '''# {title}

TODO: what to implement, where it sits in the paper.

## Signature

```
solve(x: np.ndarray) -> np.ndarray   # (B, L) float32 -> (B, L) float32
```

The answer has the dtype of `x` (numpy turns float32 into float64 when it meets a float64 value,
and an answer of another dtype fails).

## Tolerance

Floats are compared with rtol and atol from problem.toml.

Allowed imports: `numpy`, `math`.

## Worked example

```python
>>> import numpy as np
>>> solve(np.array([1.0, 2.0], dtype=np.float32))
array([2., 4.], dtype=float32)
```
''',
    "starter": '''"""{title}."""
import numpy as np


def solve(x: np.ndarray) -> np.ndarray:
    """TODO: describe shapes and dtypes."""
    raise NotImplementedError
''',
    "solution": '''"""Reference solution of {key}."""
import numpy as np


def solve(x: np.ndarray) -> np.ndarray:
    return 2 * x
''',
    "mutants": MUTANTS + '''
[float64_answer]
mistake = "computes in float64 and answers float64"
[[float64_answer.edit]]
find = "return 2 * x"
replace = "return 2 * x.astype(np.float64)"
''',
    "public_test": '''import numpy as np

from runner.testing import assert_close


def test_example(submission, problem):
    out = submission.solve(np.array([1.0, 2.0], dtype=np.float32))
    assert_close(out, np.array([2.0, 4.0], dtype=np.float32), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="solve")
''',
    "hidden_test": '''import numpy as np

from runner.testing import assert_close, rng

# Inputs are drawn from rng(seed), that is np.random.default_rng(seed). A function that draws random
# numbers itself takes a `generator: np.random.Generator` parameter: pass it NumpyGenerator(seed)
# (runner.testing), which becomes np.random.default_rng(seed) where the solver's code runs.


def test_random_inputs(submission, reference, problem):
    x = rng(0).standard_normal((4, 8), dtype=np.float32)
    assert_close(submission.solve(x), reference.solve(x), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="solve on random inputs")
''',
    "alternatives": {
        "add.py": '''"""Alternative: adds the input to itself."""
import numpy as np


def solve(x: np.ndarray) -> np.ndarray:
    return np.add(x, x)
''',
        "loop.py": '''"""Alternative: one element at a time, in Python floats."""
import numpy as np


def solve(x: np.ndarray) -> np.ndarray:
    out = np.array([2.0 * v for v in x.reshape(-1).tolist()], dtype=np.float64)
    return out.astype(x.dtype).reshape(x.shape)
''',
    },
}

TEMPLATES = {"torch": TORCH, "numpy": NUMPY}


def scaffold_problem(root: Path, ident: int, slug: str, title: str, framework: str = "torch") -> list[Path]:
    """Write a new problem's three folders with a working example to replace; the paths written.
    `framework` (torch or numpy) is what its starter, reference and tests are written in."""
    import re

    if framework not in TEMPLATES:
        raise ValueError(f"framework {framework!r}: choose one of {', '.join(FRAMEWORKS)}")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        raise ValueError(f"slug {slug!r}: use lower-case words joined by '-'")
    key = f"{ident}-{slug}"
    folders = [root / "problems" / key, root / "solutions" / key, root / "graders" / key]
    for folder in folders:
        if folder.exists():
            raise FileExistsError(f"{folder} exists already")
    t = TEMPLATES[framework]
    fields = {"id": ident, "slug": slug, "title": title, "key": key, "framework": framework,
              "imports": t["imports"]}
    formatted = {
        folders[0] / "problem.toml": PROBLEM_TOML, folders[0] / "statement.md": t["statement"],
        folders[0] / "starter.py": t["starter"], folders[1] / "solution.py": t["solution"],
    }
    verbatim = {
        folders[0] / "learn.md": LEARN, folders[0] / "hints.md": HINTS,
        folders[0] / "tests" / "test_public.py": t["public_test"], folders[2] / "test_hidden.py": t["hidden_test"],
        folders[2] / "mutants.toml": t["mutants"], folders[2] / "coverage.toml": COVERAGE,
    } | {folders[2] / "alternatives" / name: text for name, text in t["alternatives"].items()}
    files = {path: text.format(**fields) for path, text in formatted.items()} | verbatim
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
