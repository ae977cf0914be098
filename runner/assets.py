"""Objects that exist only inside the sandbox (named handles) and the read-only files behind them."""
from __future__ import annotations

from pathlib import Path

from .schema import Problem


def handles_for(problem: Problem) -> tuple[dict[str, Path], dict]:
    """(host folders to mount read-only, handle specs for the worker) for one problem."""
    return {}, {}
