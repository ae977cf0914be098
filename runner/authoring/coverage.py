"""The coverage map: every behaviour a statement specifies, and the tests that fail when only it is
violated. `grader validate` checks that the map is complete.

`graders/NNN-slug/coverage.toml` holds one `[[clause]]` per behaviour:

    [[clause]]
    id = "shape-dtype"                               # short unique key
    text = "returns a LongTensor of shape (B, L)"    # the statement's words
    tests = ["test_shape_and_dtype"]                 # test function names

A test is named as pytest names its function: `test_x` (a module-level function, or a method of a
`Test*` class) or `TestClass::test_x`. The names are looked up, without importing anything, in the
hidden tests (`graders/NNN-slug/test_*.py`) and the public ones (`problems/NNN-slug/tests/test_*.py`).
"""
from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runner.problems.catalogue import ProblemDir
from runner.problems.schema import read_toml

CHECK = "coverage map complete"

TEMPLATE = '''# Every behaviour the statement specifies, and the tests that fail when only it is violated.
# One [[clause]] per sentence of statement.md that specifies behaviour (a shape, a dtype, a range,
# an edge case, an order, a formula, a "never"); `tests` names test functions of test_hidden.py
# or tests/test_public.py (`test_x`, or `TestClass::test_x`).

[[clause]]
id = "doubles"                                   # short unique key
text = "returns twice its input, same shape"     # the statement's words
tests = ["test_example", "test_random_inputs"]   # tests that fail when only this is violated
'''


class CoverageError(ValueError):
    """A coverage.toml that does not follow the format; the message names the file and clause."""


class Clause(BaseModel):
    """One behaviour of the statement and the tests that check it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^\S+$")
    text: str = Field(min_length=1)
    tests: list[str] = Field(min_length=1)

    @field_validator("tests")
    @classmethod
    def _test_names(cls, tests: list[str]) -> list[str]:
        bad = [t for t in tests if not t.strip()]
        if bad:
            raise ValueError("a test name is empty")
        return tests


class CoverageMap(BaseModel):
    """A coverage.toml, validated: at least one clause, ids unique."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clause: list[Clause] = Field(min_length=1)

    @field_validator("clause")
    @classmethod
    def _unique_ids(cls, clauses: list[Clause]) -> list[Clause]:
        ids = [c.id for c in clauses]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"clause ids repeat: {', '.join(repeated)}")
        return clauses


def coverage_file(pdir: ProblemDir) -> Path:
    """The problem's graders/NNN-slug/coverage.toml."""
    return pdir.grader_dir / "coverage.toml"


def _where(loc: tuple, data: dict) -> str:
    """A validation error's place, with the clause's id where it has one: `clause[2] (id "x").tests`."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
            if i == 1 and loc[0] == "clause":
                clauses = data.get("clause")
                entry = clauses[item] if isinstance(clauses, list) and item < len(clauses) else None
                if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"].strip():
                    parts[-1] += f" (id {entry['id']!r})"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def parse_coverage(path: Path) -> CoverageMap:
    """Parse and validate one coverage.toml; CoverageError naming the file and the clause's field."""
    data = read_toml(path, CoverageError)
    try:
        return CoverageMap.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {_where(e['loc'], data)}: {e['msg']}" for e in exc.errors()]
        raise CoverageError("\n".join(lines)) from None


def defined_tests(path: Path) -> set[str]:
    """The test names a file defines, found by parsing it: `test_x` for module-level functions,
    and both `TestClass::test_x` and `test_x` for methods of `Test*` classes."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, functions) and item.name.startswith("test"):
                    names.update({item.name, f"{node.name}::{item.name}"})
    return names


def files_with_tests(pdir: ProblemDir) -> list[Path]:
    """The files a coverage map may name tests of: the hidden and the public test modules."""
    return sorted(pdir.grader_dir.glob("test_*.py")) + sorted(pdir.public_tests.glob("test_*.py"))


def check_coverage(pdir: ProblemDir) -> tuple[bool, str]:
    """(ok, detail): coverage.toml exists, parses, and every test it lists exists."""
    path = coverage_file(pdir)
    if not path.is_file():
        return False, (f"{path} is missing: write one [[clause]] per behaviour the statement specifies, "
                       'e.g. [[clause]] id = "shape-dtype", text = "returns a LongTensor of shape (B, L)", '
                       'tests = ["test_shape_and_dtype"] (`grader new` writes a starter)')
    try:
        coverage = parse_coverage(path)
    except CoverageError as exc:
        return False, str(exc)
    known: set[str] = set()
    for file in files_with_tests(pdir):
        try:
            known |= defined_tests(file)
        except SyntaxError as exc:
            return False, f"{file}: cannot be parsed: {exc}"
    missing = [f"clause {c.id!r}: {t}" for c in coverage.clause for t in c.tests if t not in known]
    if missing:
        return False, f"{path}: no such test function: " + "; ".join(missing)
    listed = {t.rpartition("::")[2] for c in coverage.clause for t in c.tests}
    unlisted = sorted(n for n in known if "::" not in n and n not in listed)
    detail = f"{len(coverage.clause)} clauses, {len(listed)} tests"
    return True, detail + (f"; tests in no clause: {', '.join(unlisted)}" if unlisted else "")
