"""Helpers shared by the project's tests."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def grader_cli(*args, env=None, timeout=600):
    """Run `grader ARGS` in a fresh process (from the checkout unless env has CWD)."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, text=True,
                          cwd=env.get("CWD", ROOT) if env else ROOT, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def problem_copy(root: Path, key: str, imports: list[str] | None = None):
    """A Catalogue of a root at `root` holding one problem's three folders, copied from the checkout;
    `imports` replaces the problem's allowed imports (problem.toml's `imports`)."""
    import re
    import shutil

    from runner.problems.catalogue import Catalogue

    for folder in ("problems", "solutions", "graders"):
        shutil.copytree(ROOT / folder / key, root / folder / key, ignore=shutil.ignore_patterns("__pycache__"))
    if imports is not None:
        toml = root / "problems" / key / "problem.toml"
        line = "imports = [" + ", ".join(f'"{e}"' for e in imports) + "]"
        toml.write_text(re.sub(r"(?m)^imports = .*$", line, toml.read_text(encoding="utf-8")), encoding="utf-8")
    return Catalogue(root)
