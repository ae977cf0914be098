"""The import guard of the sandboxed process: the solver's code imports only what its problem allows.

A problem's `imports` (problem.toml) lists what its solution may import. An entry is a dotted name:
  "torch"                       the module and everything in it (`import torch.nn.functional as F`)
  "transformers.DynamicCache"   that one name only: `from transformers import DynamicCache`, never
                                `import transformers` (which would bind the whole package)
`__future__` is always allowed (compiler directives); `builtins` never is.

The guard judges an import by the frame that runs it: the submission's module and everything it
defines (their globals are the module's dict; code it runs through exec/eval counts as its own).
Imports that libraries make while the solver's code runs (torch loading a submodule lazily) are
theirs, and pass. Covered routes: `import x`, `from x import y`, `__import__`,
`importlib.import_module`, and, as a backstop on `sys.meta_path`, any other route (importlib's
internals) that would load a module not loaded yet on the submission's behalf. `sys` and
`importlib` are refused like any module the problem does not list.

What it cannot do: it is not a security boundary (the sandbox is). Python code reaches modules
through object graphs: `torch.sys.modules[...]`, a function's `__globals__` (the guard's own hold the
original `__import__`), library helpers that import by name (`torch._utils._import_dotted_name`),
code compiled under a library's file name and run with its globals. A determined solver gets
past it; it stops plain delegation to the library the exercise re-implements, and handles disarm
what is cheap to disarm (problem 418's model refuses transformers' own sampler in the sandbox).
"""
from __future__ import annotations

import builtins
import importlib
import importlib.machinery
import importlib.util
import re
import sys
from typing import Callable, NoReturn

ALWAYS = ("__future__",)
NEVER = ("builtins",)
_DOTTED = re.compile(r"\.*[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\.\*)?")
_MALFORMED = "a malformed name"
_NAME_LIMIT = 200


class NotAllowed(ImportError):
    """The solver's code tried an import (or a library's own solution) that its problem does not allow."""


class Allowed:
    """What one problem's `imports` entries permit."""

    def __init__(self, entries):
        self.entries = tuple(entries)

    def covers(self, name: str) -> bool:
        """Whether the submission may bind `name` (a module or module.attribute)."""
        if _within(name, NEVER):
            return False
        return _within(name, self.entries + ALWAYS)

    def loadable(self, module: str) -> bool:
        """Whether `module` may be loaded on the submission's behalf: it is covered, or it is a
        package on the way to an allowed name (`transformers` for "transformers.DynamicCache")."""
        return self.covers(module) or any(e.startswith(module + ".") for e in self.entries)

    def __str__(self) -> str:
        return ", ".join(self.entries) or "nothing"


def _within(name: str, entries) -> bool:
    return any(name == e or name.startswith(e + ".") for e in entries)


def refused_import(allowed: Allowed, name: str, fromlist, level: int) -> str | None:
    """The name an import statement would bind that `allowed` does not cover, else None.
    `import a.b` binds `a`; `from a import b, c` binds `a.b` and `a.c`; `from a import *` all of `a`."""
    if level:
        return "." * level + name  # relative to a package the solver could name itself: never
    if not fromlist:
        return None if allowed.covers(name.partition(".")[0]) else name
    if "*" in fromlist:
        return None if allowed.covers(name) else f"{name}.*"
    return next((f"{name}.{item}" for item in fromlist if not allowed.covers(f"{name}.{item}")), None)


class ImportGuard:
    """Refuses the imports of the submission's code that its problem does not allow, and records
    each refusal, so that a call is `invalid` even when the solver's code catches the error."""

    def __init__(self, problem: str, allowed: Allowed | None, module_globals: dict, path: str):
        self.problem = problem
        self.allowed = allowed  # None: the problem sets no limit (only refusals of handles apply)
        self.globals = module_globals
        self.path = path
        self.refusals: list[str] = []
        self.during_call = False  # names seen during calls are cut to their top level (see refuse_import)

    # ------------------------------------------------------------ recording
    def refuse(self, message: str) -> NoReturn:
        """Record a refusal and raise it in the solver's code."""
        self.refusals.append(message)
        raise NotAllowed(message)

    def refuse_use(self, what: str) -> NoReturn:
        """Refuse a library's own solution reached through a handle (e.g. `model.generate`)."""
        self.refuse(f"use of {what} is not allowed in {self.problem}: the exercise is to write it yourself")

    def refuse_import(self, name: str, hint: str = "") -> NoReturn:
        """Refuse an import, naming it and the allowed list."""
        self.refuse(f"import of {self.shown(name)} is not allowed in {self.problem} "
                    f"(allowed: {self.allowed}){hint}")

    def shown(self, name: str) -> str:
        """How a refused name appears in the verdict. During a call only its installed top-level
        module is named: the solver could spell hidden inputs into a name, and hidden tests must
        show no text the solver can shape."""
        if not (_DOTTED.fullmatch(name) and len(name) <= _NAME_LIMIT):
            return _MALFORMED
        if not self.during_call:
            return name
        top = name.lstrip(".").partition(".")[0]
        # PathFinder directly: a lookup through sys.meta_path would meet the backstop again.
        installed = top in sys.modules or top in sys.stdlib_module_names \
            or importlib.machinery.PathFinder.find_spec(top) is not None
        return (top if name == top else f"{top}.*") if installed else "a module that is not installed"

    def take(self) -> str | None:
        """The first refusal since the last take (then forget them all), or None."""
        first = self.refusals[0] if self.refusals else None
        self.refusals = []
        return first

    # ------------------------------------------------------------ judging frames
    def is_submission(self, frame) -> bool:
        """Whether a frame runs the submission's code."""
        return (frame.f_globals is self.globals or frame.f_code.co_filename == self.path
                or frame.f_globals.get("__name__") == "submission")

    def importer(self, frame, through_machinery: bool = False):
        """The submission's frame behind an import that starts at `frame`, or None when the import
        is a library's. Code without a file (exec/eval strings) is skipped: its caller imports.
        With `through_machinery`, import machinery (importlib, this guard) is skipped too."""
        while frame is not None:
            if self.is_submission(frame):
                return frame
            name = frame.f_globals.get("__name__") or ""
            filename = frame.f_code.co_filename
            machinery = name == __name__ or name == "importlib" or name.startswith("importlib.")
            generated = filename.startswith("<") and not filename.startswith("<frozen")
            if not (generated or (through_machinery and machinery)):
                return None
            frame = frame.f_back
        return None

    # ------------------------------------------------------------ the hooks
    def install(self) -> None:
        """Put the hooks in place (for the rest of this process: it serves one submission)."""
        if self.allowed is None:
            return
        original_import, original_import_module = builtins.__import__, importlib.import_module
        builtins.__import__ = self._import_hook(original_import)
        importlib.import_module = self._import_module_hook(original_import_module)
        sys.meta_path.insert(0, _Backstop(self))

    def _import_hook(self, original: Callable) -> Callable:
        def __import__(name, globals=None, locals=None, fromlist=(), level=0):
            if isinstance(name, str) and not _from_c(globals, locals, fromlist, level) \
                    and self.importer(sys._getframe(1)) is not None:
                refused = refused_import(self.allowed, name, fromlist or (), level)
                if refused is not None:
                    self.refuse_import(refused, self._hint(name, fromlist))
            return original(name, globals, locals, fromlist, level)

        return __import__

    def _import_module_hook(self, original: Callable) -> Callable:
        def import_module(name, package=None):
            if isinstance(name, str) and self.importer(sys._getframe(1)) is not None:
                absolute = importlib.util.resolve_name(name, package) if name.startswith(".") else name
                if not self.allowed.covers(absolute):
                    self.refuse_import(absolute)
            return original(name, package)

        return import_module

    def _hint(self, name: str, fromlist) -> str:
        # `import a.b` with only "a.b" allowed: the statement binds all of `a`. (Only for a name
        # of the list: a verdict shows no other text the solver can shape.)
        parent, _, last = name.rpartition(".")
        if not fromlist and parent and name in self.allowed.entries:
            return f"; `import {name}` binds all of {name.partition('.')[0]}: write `from {parent} import {last}`"
        return ""


def _from_c(globals, locals, fromlist, level) -> bool:
    """Whether an __import__ call has the arguments C code passes (PyImport_Import: the current
    frame's globals twice, an empty list): C functions the solver calls (`tensor.numpy()`) import
    modules the library needs, and the current Python frame is then the solver's. The solver
    can pass the same arguments itself; the backstop still judges modules not loaded yet."""
    return type(fromlist) is list and not fromlist and level == 0 and globals is not None and locals is globals


class _Backstop:
    """First on sys.meta_path: a module that is not loaded yet and is being loaded for the
    submission's code by any route must be one its problem allows."""

    def __init__(self, guard: ImportGuard):
        self.guard = guard

    def find_spec(self, name, path=None, target=None):
        """Refuse a module the submission may not load; otherwise let the next finder find it."""
        if not self.guard.allowed.loadable(name) \
                and self.guard.importer(sys._getframe(1), through_machinery=True) is not None:
            self.guard.refuse_import(name)
        return None


def install_guard(spec: dict | None, module_globals: dict, path: str) -> ImportGuard:
    """The guard for one submission, installed. `spec` is the load request's "imports":
    {"problem": key, "allowed": [entries]}, or None when the problem sets no limit."""
    spec = spec or {}
    allowed = Allowed(spec["allowed"]) if spec.get("allowed") is not None else None
    guard = ImportGuard(str(spec.get("problem", "this problem")), allowed, module_globals, path)
    guard.install()
    return guard
