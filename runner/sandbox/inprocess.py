"""UNSAFE stand-in for the sandbox: the solver's module imported into this process.

For a solver's own public tests (`grader test`) and for instructors checking their own reference
(`grader validate --unsafe-inprocess`); never for grading anybody else's code.
"""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from . import wire
from .failures import SolverError, SolverMemory, SubmissionInvalid, format_frames
from .proxies import SubmissionProxy


class InProcessSubmission(SubmissionProxy):
    """UNSAFE: imports the module into this process. For a solver's own public tests and for
    instructors checking their own reference; never for grading others' code."""

    def __init__(self, path: Path, functions: list[dict], name: str = "submission_inprocess",
                 handles: dict | None = None):
        self._path = str(path)
        self._generators: dict[int, Any] = {}
        self._handle_specs = {k: v for k, v in (handles or {}).items() if not k.startswith("_")}
        self._handles: dict[str, Any] = {}
        from runner.modules import import_file

        from .child import check_signature

        try:
            module = import_file(path, name)
        except Exception as exc:  # noqa: BLE001
            self._invalid = SubmissionInvalid(f"importing the submission raised {type(exc).__name__}: {exc}",
                                              at_load=True)
            return
        problems = [p for f in functions if (p := check_signature(module, f))]
        self._invalid = SubmissionInvalid("; ".join(problems), at_load=True) if problems else None
        self._module = module

    def _handle(self, name: str):
        if name not in self._handles:
            from runner.handles import build_handle

            spec = dict(self._handle_specs[name])
            spec["path"] = spec.get("host_path", spec["path"])
            self._handles[name] = build_handle(spec)
        return self._handles[name]

    def handle_method(self, handle: str, method: str, *args, **kwargs):
        """Call `method` of the named handle, built in this process."""
        return getattr(self._handle(handle), method)(*args, **kwargs)

    def _convert(self, value):
        if isinstance(value, wire.Handle):
            return self._handle(value.name)
        if isinstance(value, wire.Generator):
            import torch

            if value.id not in self._generators:
                self._generators[value.id] = torch.Generator(device=value.device).manual_seed(value.seed)
            return self._generators[value.id]
        if isinstance(value, wire.NumpyGenerator):
            import numpy as np

            if value.id not in self._generators:
                self._generators[value.id] = np.random.default_rng(value.seed)
            return self._generators[value.id]
        if isinstance(value, (list, tuple)):
            return type(value)(self._convert(v) for v in value)
        if isinstance(value, dict):
            return {k: self._convert(v) for k, v in value.items()}
        return value

    def _wrap(self, fn):
        def call(*args, **kwargs):
            try:
                result = fn(*self._convert(args), **self._convert(kwargs))
            except MemoryError as exc:
                raise self._report(SolverMemory(f"MemoryError: {exc}")) from exc
            except Exception as exc:  # noqa: BLE001
                frames = [{"line": f.lineno, "function": f.name, "code": (f.line or "").strip()}
                          for f in traceback.extract_tb(exc.__traceback__) if f.filename == self._path]
                raise SolverError(f"{type(exc).__name__}: {exc}", format_frames(frames),
                                  tuple(f["line"] for f in frames)) from exc
            if type(result).__module__ == self._module.__name__:
                return _InProcessObject(self, result)  # an instance of the solver's class
            return result
        return call

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._invalid is not None:
            raise self._report(self._invalid.again())
        return self._wrap(getattr(self._module, name))


class _InProcessObject:
    """An instance of the solver's class, its calls wrapped as the module's functions are."""

    def __init__(self, owner: InProcessSubmission, obj: Any):
        self._owner, self._obj = owner, obj

    def __call__(self, *args, **kwargs):
        return self._owner._wrap(self._obj)(*args, **kwargs)

    def __getattr__(self, name: str):
        return self._owner._wrap(getattr(self._obj, name))
