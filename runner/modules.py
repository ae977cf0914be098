"""Loading a Python module from a file outside sys.path: a reference solution, a script, or (in the
unsafe in-process mode) one's own submission. It runs in this process: trusted code only."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def import_file(path: Path, name: str):
    """The module the file at `path` defines, imported under `name`; whatever the file raises propagates."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
