"""Folders people work in: a solver's working folder, and an instructor's new problem."""
from __future__ import annotations

import shutil
from pathlib import Path

from runner.authoring.coverage import TEMPLATE as COVERAGE
from runner.problems.catalogue import ProblemDir

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
    if pdir.notebook.exists():
        copies[pdir.notebook] = target / pdir.notebook.name
    written = []
    for src, dst in copies.items():
        shutil.copyfile(src, dst)
        written.append(dst)
    (target / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    return written + [target / "conftest.py"]


PROBLEM_TOML = '''id = {id}
slug = "{slug}"
title = "{title}"
difficulty = "Medium"
tags = ["TODO"]
framework = "torch"
device = "cpu"
summary = "TODO: one line for the catalogue."
set = ""                         # the key of its set in site/problem-sets.toml ("" for none)
imports = ["torch", "math"]      # what the solution may import; state it in statement.md too

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

STATEMENT = '''# {title}

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
'''

STARTER = '''"""{title}."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    """TODO: describe shapes and dtypes."""
    raise NotImplementedError
'''

SOLUTION = '''"""Reference solution of {key}."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    return 2 * x
'''

MUTANTS = '''# Realistic mistakes: each is the reference with these edits; every one must fail a hidden test.

[returns_input]
mistake = "returns its input unchanged"
[[returns_input.edit]]
find = "return 2 * x"
replace = "return x"
'''

PUBLIC_TEST = '''import torch

from runner.testing import assert_close


def test_example(submission, problem):
    out = submission.solve(torch.tensor([1.0, 2.0]))
    assert_close(out, torch.tensor([2.0, 4.0]), rtol=problem.tolerance.rtol, atol=problem.tolerance.atol,
                 what="solve")
'''

HIDDEN_TEST = '''import torch

from runner.testing import assert_close


def test_random_inputs(submission, reference, problem):
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    assert_close(submission.solve(x), reference.solve(x), rtol=problem.tolerance.rtol,
                 atol=problem.tolerance.atol, what="solve on random inputs")
'''


# Correct solutions in styles unlike the reference: each must score full marks.
ALTERNATIVE_ADD = '''"""Alternative: adds the input to itself."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    return x + x
'''

ALTERNATIVE_LOOP = '''"""Alternative: one element at a time, in float64."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1).tolist()
    out = torch.tensor([2.0 * v for v in flat], dtype=torch.float64)
    return out.to(x.dtype).reshape(x.shape)
'''


def scaffold_problem(root: Path, ident: int, slug: str, title: str) -> list[Path]:
    """Write a new problem's three folders with a working example to replace; the paths written."""
    import re

    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug):
        raise ValueError(f"slug {slug!r}: use lower-case words joined by '-'")
    key = f"{ident}-{slug}"
    folders = [root / "problems" / key, root / "solutions" / key, root / "graders" / key]
    for folder in folders:
        if folder.exists():
            raise FileExistsError(f"{folder} exists already")
    fields = {"id": ident, "slug": slug, "title": title, "key": key}
    files = {
        folders[0] / "problem.toml": PROBLEM_TOML, folders[0] / "statement.md": STATEMENT,
        folders[0] / "learn.md": "# Background\n\nTODO: the math and where it sits in the paper.\n",
        folders[0] / "hints.md": "- TODO: a first hint\n- TODO: a second hint\n",
        folders[0] / "starter.py": STARTER, folders[0] / "tests" / "test_public.py": PUBLIC_TEST,
        folders[1] / "solution.py": SOLUTION, folders[2] / "test_hidden.py": HIDDEN_TEST,
        folders[2] / "mutants.toml": MUTANTS, folders[2] / "coverage.toml": COVERAGE,
        folders[2] / "alternatives" / "add.py": ALTERNATIVE_ADD,
        folders[2] / "alternatives" / "loop.py": ALTERNATIVE_LOOP,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**fields) if "{" in text and path.suffix in (".toml", ".md", ".py")
                        and path.name not in ("test_public.py", "test_hidden.py", "mutants.toml", "coverage.toml")
                        and path.parent.name != "alternatives" else text, encoding="utf-8")
    return list(files)
