"""Finding problems: folders under problems/, solutions/, graders/ of one root.

The platform runs from a checkout of the repository (or from $GRADER_ROOT, a folder laid out like
one): problems, references, hidden tests, the site's templates and the bundled model are files
beside the package, not package data.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from runner.problems.schema import Problem, ProblemFormatError, load_problem


class UnknownProblem(LookupError):
    """No problem has that id or slug; the message lists the known ones."""


class NoProblemsFolder(UnknownProblem):
    """The root has no problems/ folder (e.g. the package was installed without a checkout)."""


def default_root() -> Path:
    """The folder holding problems/, solutions/ and graders/: $GRADER_ROOT or this checkout."""
    from runner.settings import current

    return current().project_root


@dataclass(frozen=True)
class ProblemDir:
    """One problem's three folders (problems/, solutions/, graders/) under a root."""

    root: Path
    key: str  # NNN-slug

    @property
    def folder(self) -> Path:
        """problems/NNN-slug: what solvers see."""
        return self.root / "problems" / self.key

    @property
    def solution_file(self) -> Path:
        """The reference solution (trusted grader only)."""
        return self.root / "solutions" / self.key / "solution.py"

    @property
    def grader_dir(self) -> Path:
        """graders/NNN-slug: the hidden tests and mutants (trusted grader only)."""
        return self.root / "graders" / self.key

    @property
    def public_tests(self) -> Path:
        """The public tests' folder."""
        return self.folder / "tests"

    @property
    def starter(self) -> Path:
        """The stub the solver starts from."""
        return self.folder / "starter.py"

    @property
    def notebook(self) -> Path:
        """The problem's generated notebook."""
        return self.folder / f"{self.key}.ipynb"

    @cached_property
    def meta(self) -> Problem:
        """The validated problem.toml (ProblemFormatError naming file and field)."""
        return load_problem(self.folder / "problem.toml")

    def text(self, name: str) -> str:
        """A file of the problem folder as text ("" when absent)."""
        path = self.folder / name
        return path.read_text(encoding="utf-8") if path.exists() else ""


class Catalogue:
    """The problems of one root, in id order."""

    def __init__(self, root: Path | None = None):
        from runner.settings import current

        self.root = (root or default_root()).resolve()
        if root is None and current().root is None and not (self.root / "problems").is_dir():
            raise NoProblemsFolder(
                f"no problems/ folder in {self.root}: the grader runs from a checkout of its repository "
                "(install it there with `pip install -e .`), or set GRADER_ROOT to a folder holding "
                "problems/, solutions/ and graders/")

    def keys(self) -> list[str]:
        """NNN-slug of every problem folder with a problem.toml."""
        base = self.root / "problems"
        if not base.is_dir():
            return []
        found = [p.name for p in base.iterdir() if (p / "problem.toml").is_file()]
        return sorted(found, key=lambda k: (int(k.split("-", 1)[0]) if k.split("-", 1)[0].isdigit() else 10**9, k))

    def problems(self) -> list[ProblemDir]:
        """Every problem, in id order."""
        return [ProblemDir(self.root, k) for k in self.keys()]

    def get(self, ident: str | int) -> ProblemDir:
        """Resolve `413` or `413-forward-process` (or the bare slug)."""
        ident = str(ident).strip()
        keys = self.keys()
        matches = [k for k in keys if k == ident or k.split("-", 1)[0] == ident or k.split("-", 1)[-1] == ident]
        if len(matches) != 1:
            known = ", ".join(keys) or "none"
            raise UnknownProblem(f"no problem {ident!r} (known: {known})")
        return ProblemDir(self.root, matches[0])


def find_problem_for_path(path: Path) -> ProblemDir | None:
    """The problem a test file or working folder belongs to, by walking up to a problem.toml."""
    path = path.resolve()
    for parent in [path, *path.parents]:
        if parent.parent.name in ("problems", "graders", "solutions"):
            root = parent.parent.parent
            if (root / "problems" / parent.name / "problem.toml").is_file():
                return ProblemDir(root, parent.name)
        toml = parent / "problem.toml"
        if toml.is_file() and parent.parent.name != "problems":
            # a solver's working folder: `grader start` copies problem.toml there
            try:
                key = load_problem_key(toml)
            except ProblemFormatError:
                return None
            cat = Catalogue()
            return cat.get(key) if key in cat.keys() else None
    return None


def load_problem_key(toml: Path) -> str:
    """NNN-slug read from a problem.toml without validating the rest."""
    import tomllib

    data = tomllib.loads(toml.read_text(encoding="utf-8"))
    return f"{data['id']}-{data['slug']}"
