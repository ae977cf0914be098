import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_gradebook(tmp_path, monkeypatch):
    """Each test gets its own data folder, so nothing touches the user's gradebook."""
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GRADER_DB_URL", raising=False)
    return tmp_path / "data"


@pytest.fixture
def catalogue():
    from runner.problems.catalogue import Catalogue

    return Catalogue(ROOT)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def grader_cli(*args, env=None, timeout=600):
    import subprocess

    return subprocess.run([sys.executable, "-m", "runner.cli", *args], capture_output=True, text=True,
                          cwd=env.get("CWD", ROOT) if env else ROOT, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
