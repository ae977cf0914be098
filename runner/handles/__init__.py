"""Named handles: objects that exist only inside the sandbox (like problem 418's model), passed to
the solver's code by name (`runner.testing.Handle("model")`).

A kind of handle is declared once, as a `HandleKind` in `KINDS`: the read-only folder it is built
from (mounted into the sandbox), how it is built there, and what of it to disarm there (the
library's own solution of the exercise, reachable from the object). `problem.toml` names kinds
from this registry; the grader asks `handles_for(problem)` what to mount and what to tell the
sandboxed process, which calls `build_handle(spec, refuse=...)`.

Keep this module light: the sandboxed process imports it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn

if TYPE_CHECKING:
    from runner.problems.schema import Problem

@dataclass(frozen=True)
class HandleKind:
    """One kind of handle: its asset folder's name inside the sandbox, where that folder is on the
    host, and how to build the object from it on a device."""

    name: str
    asset: str
    folder: Callable[[], Path]
    build: Callable[[Path, str], Any]
    # Inside the sandbox only: make what must not serve the solver call `refuse(what)` instead.
    disarm: Callable[[Any, Callable[[str], NoReturn]], None] | None = None
    # On the grader: limits (names of [limits]) that the object needs on a device, beyond the
    # problem's own; the grader takes the larger of the two (a large model graded on the CPU).
    limits: Callable[[str], dict[str, float]] | None = None


def _diffusiongemma_folder() -> Path:
    from .diffusiongemma import model_folder

    return model_folder()


def _diffusiongemma_build(path: Path, device: str):
    from .diffusiongemma import load_model

    return load_model(path, device=device)


def _diffusiongemma_disarm(model, refuse) -> None:
    from .diffusiongemma import disarm_sampler

    disarm_sampler(model, refuse)


def _diffusiongemma_limits(device: str) -> dict[str, float]:
    from .diffusiongemma import cpu_limits

    return cpu_limits() if device == "cpu" else {}


KINDS: dict[str, HandleKind] = {k.name: k for k in (
    HandleKind("diffusiongemma", "diffusiongemma-tiny", _diffusiongemma_folder, _diffusiongemma_build,
               _diffusiongemma_disarm, _diffusiongemma_limits),
)}


def cuda_available() -> bool:
    """Whether this process can put a handle on a GPU."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


class GPUUnavailable(RuntimeError):
    """A problem runs on the GPU, none is visible, and the problem does not allow the CPU."""


class HandleUnavailable(RuntimeError):
    """What a handle is built from is not where the settings say: the installation's fault."""


def check_handles(problem: "Problem") -> None:
    """HandleUnavailable, naming the setting, unless every handle's folder holds what it is built
    from: said before grading starts, never as a failure inside a submission's tests."""
    for h in problem.handles:
        KINDS[h.kind].folder()


def handle_device(problem: "Problem") -> str:
    """Where a problem's handles run: "cuda" when it asks for the GPU and one is visible, "cpu"
    when it runs on the CPU or allows the CPU in place of a missing GPU; GPUUnavailable otherwise."""
    if problem.device != "cuda":
        return "cpu"
    if cuda_available():
        return "cuda"
    if problem.cpu_fallback:
        return "cpu"
    raise GPUUnavailable(f"{problem.key} runs on the GPU (device = \"cuda\" in its problem.toml) and no GPU is "
                         f"visible to torch here: grade it on a machine with a GPU (a `grader worker --queues gpu`), "
                         f"or set cpu_fallback = true in its problem.toml to allow grading on the CPU")


def handles_for(problem: "Problem", mount_root: str) -> tuple[dict[str, Path], dict]:
    """(host folders to mount read-only, handle specs for the sandboxed process) for one problem.

    The sandbox mounts each folder at `mount_root`/NAME; a spec's "path" is where the process
    finds the files there, "host_path" is the same
    folder outside it, for in-process runs. "_cuda": True asks the sandbox for the GPU devices."""
    if not problem.handles:
        return {}, {}
    cuda = handle_device(problem) == "cuda"
    assets: dict[str, Path] = {}
    handles: dict = {}
    for h in problem.handles:
        kind = KINDS[h.kind]
        folder = kind.folder().resolve()
        assets[kind.asset] = folder
        handles[h.name] = {"kind": h.kind, "path": f"{mount_root}/{kind.asset}", "host_path": str(folder),
                           "device": "cuda" if cuda else "cpu"}
    if cuda:
        handles["_cuda"] = True
    return assets, handles


def handle_limits(problem: "Problem") -> dict[str, float]:
    """What a problem's handles need of each limit where they will run (none for most): the grader
    raises the problem's [limits] to these, and explicit overrides (--limit, GRADER_LIMITS) win."""
    needs: dict[str, float] = {}
    if problem.handles:
        device = handle_device(problem)
        for h in problem.handles:
            kind = KINDS[h.kind]
            for name, value in (kind.limits(device) if kind.limits else {}).items():
                needs[name] = max(needs.get(name, 0), value)
    return needs


def grader_methods(obj) -> dict[str, Callable]:
    """The methods of a handle that only the grader calls (named `grader_*`), bound now."""
    return {name: getattr(obj, name) for name in dir(obj) if name.startswith("grader_")}


def build_handle(spec: dict, refuse: Callable[[str], NoReturn] | None = None):
    """Build a handle from its spec (inside the sandbox, or in-process for instructors' own runs).
    The sandboxed process passes `refuse`: what the kind disarms then calls it instead of running."""
    kind = KINDS.get(spec.get("kind"))
    if kind is None:
        raise ValueError(f"unknown handle kind {spec.get('kind')!r} (known: {', '.join(KINDS)})")
    obj = kind.build(Path(spec["path"]), spec.get("device", "cpu"))
    if refuse is not None and kind.disarm is not None:
        kind.disarm(obj, refuse)
    return obj
