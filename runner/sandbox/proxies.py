"""What hidden tests hold: the solver's module and objects, as proxies whose calls run in the sandbox.

    SubmissionProxy          the `submission` fixture's interface (functions by name, handles, close)
    ├── SandboxedSubmission  calls cross into the sandboxed process (runner.sandbox.client)
    ├── InvalidSubmissionProxy  a submission that failed its static checks: every use is `invalid`
    └── InProcessSubmission  UNSAFE, in this process (runner.sandbox.inprocess)
    RemoteObject             an object of the solver's that lives in the sandboxed process

Every proxy reports failures other than the solver's own exception to its `observer` (the pytest
plugin files them with the current test), so a test that catches exceptions cannot hide them.
"""
from __future__ import annotations

from typing import Any, Callable

from .client import SandboxClient
from .failures import SolverCrashed, SolverFailure, SubmissionInvalid


class SubmissionProxy:
    """The solver's module as the tests see it: `proxy.fn(...)` calls the solver's `fn`."""

    observer: Callable[[SolverFailure], None] | None = None

    def _report(self, failure: SolverFailure) -> SolverFailure:
        if failure.verdict != "error" and self.observer is not None:
            self.observer(failure)
        return failure

    def handle_method(self, handle: str, method: str, *args, **kwargs):
        """Call `method` of a named handle (the grader's side of it, e.g. the model's pass log)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the proxy holds (the sandboxed process, its folder)."""


class RemoteObject:
    """An object of the solver's that lives in the sandboxed process; method calls go over the wire."""

    def __init__(self, client: SandboxClient, ref: int, type_name: str, generation: int):
        self._client, self._ref, self._type, self._generation = client, ref, type_name, generation

    def _invoke(self, method: str, args: tuple, kwargs: dict) -> Any:
        proc = self._client.proc
        if self._generation != self._client.generation or proc is None or proc.poll() is not None:
            raise self._client.report(SolverCrashed(
                "this object was lost when the sandboxed process restarted after an earlier failure"))
        return self._client.call({"ref": self._ref}, method, args, kwargs)

    def __call__(self, *args, **kwargs):
        return self._invoke("__call__", args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._invoke(name, args, kwargs)

    def __repr__(self) -> str:
        return f"<remote {self._type}>"


class SandboxedSubmission(SubmissionProxy):
    """`submission.fn(...)` runs `fn` of the solver's module inside the sandbox."""

    def __init__(self, client: SandboxClient, names: list[str]):
        self._client = client
        self._names = set(names)

    @property
    def observer(self):
        """The client's observer: it reports, since calls of remote objects skip this proxy."""
        return self._client.observer

    @observer.setter
    def observer(self, fn) -> None:
        """Set the client's observer."""
        self._client.observer = fn

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._names:
            raise AttributeError(f"the problem does not define {name!r}")
        client = self._client
        return lambda *args, **kwargs: client.call(name, None, args, kwargs)

    def handle_method(self, handle: str, method: str, *args, **kwargs):
        """Call `method` of the named handle in the sandboxed process."""
        return self._client.call({"handle": handle}, method, args, kwargs)

    def close(self) -> None:
        """Stop the sandboxed process and remove its submission folder."""
        self._client.dispose()


class InvalidSubmissionProxy(SubmissionProxy):
    """Stands in for a submission that failed the static checks: every use is `invalid`."""

    def __init__(self, message: str):
        self.message = message

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise self._report(SubmissionInvalid(self.message, at_load=True))

    def handle_method(self, handle: str, method: str, *args, **kwargs):
        """Every use of an invalid submission is `invalid`."""
        raise self._report(SubmissionInvalid(self.message, at_load=True))
