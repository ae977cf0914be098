"""How a call into the solver's code can fail: one exception class per verdict.

    SolverFailure            a call did not return normally; `verdict` names how
    ├── SolverError          "error"    the solver's code raised (traceback trimmed to its own lines)
    ├── SolverTimeout        "timeout"  wall clock, CPU time or the submission's total budget ran out
    ├── SolverMemory         "memory"   the memory limit stopped it
    ├── SolverCrashed        "crashed"  the sandboxed process died, or broke the protocol
    └── SubmissionInvalid    "invalid"  the submission cannot be loaded (static check or import)

The grader's own failures are not here: they are `GradingError` (runner.grading.pipeline) and
`SandboxUnavailable` (runner.sandbox.backends), never a verdict against the solver.
"""
from __future__ import annotations


class SolverFailure(Exception):
    """A call into the solver's code did not return normally; `verdict` names how."""

    verdict = "error"

    def __init__(self, message: str, detail: str = "", lines: tuple[int, ...] = (), *, at_load: bool = False):
        super().__init__(message)
        self.message = message
        self.detail = detail  # traceback lines in the solver's own file
        self.lines = lines  # their line numbers: all a hidden test's verdict may show
        # Loading (static checks, import) happens before any test input reaches the solver's code,
        # so its message cannot carry hidden inputs and is shown in full everywhere.
        self.at_load = at_load

    def again(self) -> "SolverFailure":
        """The same failure raised anew (a remembered one is met again by a later test)."""
        return type(self)(self.message, self.detail, self.lines, at_load=self.at_load)


class SolverError(SolverFailure):
    """The solver's code raised an exception."""

    verdict = "error"


class SolverTimeout(SolverFailure):
    """A time limit (wall clock per call, CPU seconds, or the total budget) ran out."""

    verdict = "timeout"


class SolverMemory(SolverFailure):
    """The memory limit stopped the solver's code."""

    verdict = "memory"


class SolverCrashed(SolverFailure):
    """The sandboxed process died of a signal, exited, or sent a malformed reply."""

    verdict = "crashed"


class SubmissionInvalid(SolverFailure):
    """The submission cannot be graded at all; the message says why and names the file or cell."""

    verdict = "invalid"


FAILURES = {cls.verdict: cls for cls in (SolverError, SolverTimeout, SolverMemory, SolverCrashed, SubmissionInvalid)}


def format_frames(frames: list[dict]) -> str:
    """The solver's own traceback frames, as the verdict message shows them."""
    return "\n".join(f'  line {f["line"]}, in {f["function"]}\n    {f["code"]}' for f in frames)


def failure_from_reply(reply: dict) -> SolverFailure:
    """The verdict exception for a failed reply of the sandboxed process."""
    kind = reply.get("kind")
    if kind == "protocol":
        return SolverCrashed(f"the sandboxed process broke the protocol: {str(reply.get('message'))[:200]}")
    # The reply is the sandbox's word: it may say the solver's code raised, ran out of memory or
    # could not be used, never that a limit of the grader's ran out (only the grader says that).
    cls = {"error": SolverError, "memory": SolverMemory, "invalid": SubmissionInvalid}.get(kind)
    if cls is None:
        return SolverCrashed("the sandboxed process sent a reply of an unknown kind")
    frames = reply.get("frames") or []
    if not (isinstance(frames, list) and all(_is_frame(f) for f in frames)
            and isinstance(reply.get("type", ""), str) and isinstance(reply.get("message", ""), str)):
        return SolverCrashed("the sandboxed process sent a malformed failure reply")
    head = f"{reply.get('type', 'Error')}: {reply.get('message', '')}".strip()
    return cls(head[:4000], format_frames(frames[:50]), tuple(f["line"] for f in frames[:50]))


def _is_frame(frame) -> bool:
    return (isinstance(frame, dict) and type(frame.get("line")) is int and isinstance(frame.get("function"), str)
            and isinstance(frame.get("code"), str))
