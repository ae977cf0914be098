"""Objects that exist only inside the sandbox (named handles) and the read-only files behind them."""
from __future__ import annotations

import os
from pathlib import Path

from .schema import Problem

# A local folder with other weights (e.g. the released google/diffusiongemma-26B-A4B-it) replaces
# the bundled tiny checkpoint; nothing is ever downloaded.
MODEL_ENV = "GRADER_DIFFUSIONGEMMA_PATH"


def model_folder() -> Path:
    from .model import bundled_checkpoint

    return Path(os.environ.get(MODEL_ENV) or bundled_checkpoint()).resolve()


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def handles_for(problem: Problem) -> tuple[dict[str, Path], dict]:
    """(host folders to mount read-only, handle specs for the worker) for one problem.

    A spec's "path" is where the worker finds the files inside the sandbox; "host_path" is the same
    folder outside it, for in-process runs. "_cuda": True asks the sandbox for the GPU devices."""
    if not problem.handles:
        return {}, {}
    from .model import BUNDLED_NAME
    from .sandbox import SANDBOX_ASSETS

    folder = model_folder()  # every kind so far is the DiffusionGemma model
    cuda = problem.device == "cuda" and cuda_available()
    handles: dict = {h.name: {"kind": h.kind, "path": f"{SANDBOX_ASSETS}/{BUNDLED_NAME}", "host_path": str(folder),
                              "device": "cuda" if cuda else "cpu"} for h in problem.handles}
    if cuda:
        handles["_cuda"] = True
    return {BUNDLED_NAME: folder}, handles
