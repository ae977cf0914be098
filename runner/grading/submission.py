"""Turning what a solver hands in (.py or .ipynb) into module source, or an `invalid` verdict.

Nothing here executes the submission: these are static checks, before the sandbox.
"""
from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from runner.sandbox.failures import SubmissionInvalid

MAX_BYTES = 1 << 20
# said when a notebook lacks a function: which of its cells were read
NOTEBOOK_CELLS = (" (a notebook is graded from its code cells tagged `solution`, or from all of them when "
                  "none is tagged; a cell that starts with `%%solution ID` is tagged for you)")


@dataclass(frozen=True)
class Source:
    """A submission that passed the static checks: the module to grade and the bytes handed in."""

    filename: str  # what the solver handed in
    code: str  # the module that is graded
    raw: bytes  # exactly what was handed in (stored in the gradebook)

    @property
    def sha256(self) -> str:
        """The digest of what was handed in, as the gradebook stores it."""
        return digest(self.raw)


def digest(raw: bytes) -> str:
    """The sha256 of what was handed in, gradable or not, as the gradebook and the result record keep it."""
    return hashlib.sha256(raw).hexdigest()


def read_submission(path: Path, functions: list[str] | None = None) -> Source:
    """Read and statically check a submission. Never executes it."""
    path = Path(path)
    if path.is_dir():
        path = path / "solution.py"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SubmissionInvalid(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SubmissionInvalid(f"{path}: is a folder, not a file") from None
    return check_source(path.name, raw, functions)


def check_source(filename: str, raw: bytes, functions: list[str] | None = None) -> Source:
    """Type, size, encoding, syntax and the names the problem asks for; SubmissionInvalid naming the file."""
    if not filename.endswith((".py", ".ipynb")):
        raise SubmissionInvalid(f"{filename}: only a Python file (.py) or a notebook (.ipynb) can be graded: "
                                "save your functions as solution.py and submit that",
                                at_load=True)
    if len(raw) == 0 or not raw.strip():
        raise SubmissionInvalid(f"{filename}: the file is empty")
    if len(raw) > MAX_BYTES:
        raise SubmissionInvalid(f"{filename}: the file is {len(raw)} bytes; the limit is {MAX_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionInvalid(f"{filename}: not UTF-8 text (byte {exc.start} is invalid)") from None
    if "\x00" in text:
        raise SubmissionInvalid(f"{filename}: contains NUL bytes")
    code = notebook_to_module(filename, text) if filename.endswith(".ipynb") else text
    try:
        tree = ast.parse(code, filename=filename)
    except SyntaxError as exc:
        raise SubmissionInvalid(f"{filename}: syntax error at line {exc.lineno}: {exc.msg}") from None
    if functions:
        defined = top_level_names(tree)
        missing = [f for f in functions if f not in defined]
        if missing:
            where = NOTEBOOK_CELLS if filename.endswith(".ipynb") else ""
            raise SubmissionInvalid(f"{filename}: does not define {', '.join(missing)}{where}")
    return Source(filename, code, raw)


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (also inside if/try/with blocks)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            names.update(top_level_names(ast.Module(body=node.body, type_ignores=[])))
    return names


def notebook_to_module(filename: str, text: str) -> str:
    """The solution cells (tagged `solution`, or starting with `%%solution ID`), or every code cell
    when there is none.

    IPython magics and shell lines (% and !) become empty lines: they are not Python, and a
    single cell keeps its own line numbers in syntax errors and tracebacks.
    """
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError):
        raise SubmissionInvalid(f"{filename}: not a Jupyter notebook (no readable 'cells')") from None
    code_cells = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    chosen = [cell_source(c) for c in ([c for c in code_cells if is_solution_cell(c)] or code_cells)]
    if not chosen:
        raise SubmissionInvalid(f"{filename}: the notebook has no code cell to grade: write your solution in a "
                                "code cell that starts with `%%solution ID`, or tag its cell `solution` "
                                "(JupyterLab: the cell's property inspector, Common Tools > Cell Tags)")
    parts = []
    for src in chosen:
        lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def is_solution_cell(cell: dict) -> bool:
    """Tagged `solution`, or a `%%solution ID` cell (the one the kernel records as the solution)."""
    return "solution" in (cell.get("metadata", {}).get("tags") or []) or \
        cell_source(cell).lstrip().startswith("%%solution")


def cell_source(cell: dict) -> str:
    """A cell's source, stored as one string or as a list of lines."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)
