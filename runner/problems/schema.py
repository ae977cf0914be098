"""The `problem.toml` schema: one pydantic model, errors that name the file and the field."""
from __future__ import annotations

import re
import tomllib
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runner.sandbox.wire import MAX_DIM, MAX_ELEMENTS, MAX_TOTAL


class ProblemFormatError(Exception):
    """A problem folder that does not follow the format; the message names the file and field."""


class Difficulty(str, Enum):
    """How hard a problem is; Hard◆ marks a capstone."""

    easy = "Easy"
    medium = "Medium"
    hard = "Hard"
    capstone = "Hard◆"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paper(_Strict):
    """The paper (and section) a problem teaches."""

    title: str = Field(min_length=1)
    section: str = ""
    url: str = ""


class FunctionSpec(_Strict):
    """A function or class the solver implements, with the parameters the tests pass."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: Literal["function", "class"] = "function"
    params: list[str] = []
    methods: list[str] = []


class HandleSpec(_Strict):
    """An object that exists only inside the sandbox, passed to the solver's code by name
    (`runner.testing.Handle(name)`); built by the sandboxed process from read-only assets."""
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: str  # a kind of runner.handles.KINDS

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        from runner.handles import KINDS

        if kind not in KINDS:
            raise ValueError(f"unknown handle kind {kind!r} (known: {', '.join(KINDS)})")
        return kind


class Limits(_Strict):
    """Resource limits of the sandboxed process (overridable per run with --limit / GRADER_LIMITS)."""

    time_s: float = Field(10, gt=0, le=600)  # wall clock per call
    total_s: float = Field(120, gt=0, le=7200)  # wall clock for all calls of one submission
    cpu_s: int = Field(120, gt=0, le=3600)  # CPU seconds per call, all threads together
    memory_mb: int = Field(4096, ge=256, le=262144)
    processes: int = Field(64, ge=1, le=4096)
    file_size_mb: int = Field(16, ge=1, le=4096)
    tmp_mb: int = Field(64, ge=1, le=4096)  # the private /tmp (a tmpfs; its pages count as memory too)
    open_files: int = Field(256, ge=16, le=65536)
    check_s: float = Field(30, gt=0, le=3600)  # wall clock of a test's own checks, beyond time_s
    # Tensors and arrays the solver's code returns: no dimension over max_dim and at most
    # max_elements elements, zero dimensions counted as 1 (a forged shape (2**59, 0) holds nothing
    # but would make a test loop for ever). The wire carries at most MAX_TOTAL bytes anyway.
    max_elements: int = Field(MAX_ELEMENTS, ge=1, le=MAX_TOTAL)
    max_dim: int = Field(MAX_DIM, ge=1, le=MAX_TOTAL)


def parse_limit_overrides(items, where: str) -> dict[str, float]:
    """`["time_s=2", "total_s=12"]` -> overrides of a problem's [limits]; a ValueError that names
    `where` for an unknown limit or a value that is not a number."""
    out: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in Limits.model_fields:
            raise ValueError(f"{where}: no limit named {name!r} (choose from {', '.join(Limits.model_fields)})")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"{where}: {item!r}: the value is not a number") from None
    return out


IMPORT_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def check_import_entries(entries: list[str]) -> list[str]:
    """Validate `imports`: dotted names ("torch": the module and all in it; "transformers.DynamicCache":
    that name only), no repeats, never `builtins` (it holds the import function the guard watches)."""
    for entry in entries:
        if not IMPORT_ENTRY.fullmatch(entry):
            raise ValueError(f"{entry!r} is not a module or module.name "
                             "(e.g. \"torch\", \"transformers.DynamicCache\")")
        if entry.partition(".")[0] == "builtins":
            raise ValueError(f"{entry!r}: builtins cannot be allowed (it holds the import function itself)")
    repeated = sorted({e for e in entries if entries.count(e) > 1})
    if repeated:
        raise ValueError(f"entries repeat: {', '.join(repeated)}")
    return entries


class Tolerance(_Strict):
    """Numeric tolerance of the checks: |actual - expected| <= atol + rtol * |expected|."""

    rtol: float = Field(1e-5, ge=0)
    atol: float = Field(1e-6, ge=0)


class Problem(_Strict):
    """A problem.toml, validated."""

    id: int = Field(ge=1, le=9999)
    slug: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title: str = Field(min_length=1)
    difficulty: Difficulty
    tags: list[str] = Field(min_length=1)
    framework: Literal["torch", "numpy"]
    device: Literal["cpu", "cuda"] = "cpu"
    # With device = "cuda": grade on the CPU where no GPU is visible (the result says so). Without
    # it, grading such a problem with no GPU visible is an error, never a silent move to the CPU.
    cpu_fallback: bool = False
    summary: str = ""
    # the set it belongs to on the site's index: a `key` of site/problem-sets.toml ("" for none)
    set: str = Field("", pattern=r"^([a-z0-9]+(-[a-z0-9]+)*)?$")
    imports: list[str]  # what the solution may import (runner.sandbox.imports); the statement says it too
    paper: Paper
    functions: list[FunctionSpec] = Field(min_length=1)
    handles: list[HandleSpec] = []
    limits: Limits = Limits()
    tolerance: Tolerance = Tolerance()

    @field_validator("functions")
    @classmethod
    def _unique_names(cls, functions: list[FunctionSpec]) -> list[FunctionSpec]:
        names = [f.name for f in functions]
        if len(names) != len(set(names)):
            raise ValueError(f"function names repeat: {names}")
        return functions

    @field_validator("imports")
    @classmethod
    def _import_entries(cls, entries: list[str]) -> list[str]:
        return check_import_entries(entries)

    @property
    def key(self) -> str:
        """The folder name, `NNN-slug`."""
        return f"{self.id}-{self.slug}"


def _field_path(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def read_toml(path: Path, error: type[Exception]) -> dict:
    """A TOML file's table; `error` naming the file when it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def load_problem(path: Path) -> Problem:
    """Parse and validate one `problem.toml`; raise ProblemFormatError naming file and field."""
    data = read_toml(path, ProblemFormatError)
    try:
        problem = Problem.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {_field_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ProblemFormatError("\n".join(lines)) from None
    expected = path.parent.name
    if problem.key != expected:
        raise ProblemFormatError(
            f"{path}: id/slug: the folder is named {expected!r} but id and slug give {problem.key!r}"
        )
    return problem
