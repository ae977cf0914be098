"""The trusted side of the sandbox: start the sandboxed process, send it calls, and turn what comes
back into values or verdict exceptions, each read and write under the call's deadline.

One `SandboxClient` serves one submission. The sandboxed process is a fork server
(runner.sandbox.forkserver): when the child serving the submission dies or overruns, the client has
the server kill it, and the next call's load forks a fresh one. When the whole process dies (or it
does not fork: a problem on the GPU), the client kills it with its process group and starts a new
one. Objects that lived in a dead child are gone, which `generation` lets proxies detect.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from typing import Any, Callable, ContextManager

from . import wire
from .backends import SANDBOX_SUBMISSION, LaunchSpec, SandboxUnavailable, popen
from .failures import (SolverCrashed, SolverFailure, SolverMemory, SolverTimeout, SubmissionInvalid,
                       failure_from_reply)

log = logging.getLogger(__name__)

SUBMISSION_FILE = "submission.py"


class SandboxClient:
    """The pipe to one sandboxed process serving one submission; restarted after a failure that killed it."""

    STARTUP_S = 120.0
    KILL_S = 5.0  # for the fork server to kill its child, before the whole process is killed instead
    OUTPUT_TAIL = 8192

    def __init__(self, backend, spec: LaunchSpec, functions: list[dict], handles: dict | None = None,
                 imports: dict | None = None):
        self.backend = backend
        self.spec = spec
        # imports: {"problem": key, "allowed": [...]} for the sandboxed process's import guard
        self.load_request = {"op": "load", "path": f"{SANDBOX_SUBMISSION}/{SUBMISSION_FILE}",
                             "functions": functions, "handles": handles or {}, "imports": imports}
        self.time_s = float(spec.limits["time_s"])
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.loaded = False
        self.load_failure: SolverFailure | None = None
        self.output = collections.deque(maxlen=64)
        self.calls = 0
        self.slowest_call_s = 0.0  # what a problem's limits should be sized from
        self.peak_rss_kb = 0  # the sandboxed process's peak resident memory, as its replies say
        self.spent_s = 0.0  # wall clock used by calls, against limits.total_s
        self.ready: dict | None = None  # the start-up message, once received
        self.forks = False  # whether the process is a fork server (said in its start-up message)
        self.broken: SandboxUnavailable | None = None  # the process could not start: grading cannot go on
        # Told of every failure but the solver's own exception, as it leaves a call: a test that
        # catches exceptions (to check that bad input raises) cannot hide a timeout or crash.
        self.observer: Callable[[SolverFailure], None] | None = None
        # Entered around every call: the grader's own clock stops while the solver's code runs.
        self.pause_clock: Callable[[], ContextManager] = contextlib.nullcontext

    def set_submission(self, code: str) -> None:
        """Put the module to grade where the sandboxed process imports it (its folder is mounted read-only)."""
        target = self.spec.submission_dir / SUBMISSION_FILE
        target.write_text(code, encoding="utf-8")
        target.chmod(0o644)

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Launch the sandboxed process; returns at once, so its start-up overlaps the caller's work."""
        launch = getattr(self.backend, "launch", None)
        self.proc = launch(self.spec) if launch else popen(self.backend.command(self.spec))
        os.set_blocking(self.proc.stdin.fileno(), False)
        self.generation += 1
        log.debug("started sandboxed process %d (generation %d, %s backend)", self.proc.pid, self.generation,
                  self.backend.name)
        self.loaded = False
        self.ready = None
        self.forks = False
        self.reader = wire.FrameReader()
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    def _drain(self, stream) -> None:
        # Keep only the tail of what the solver prints; a flood costs it time, not our memory.
        try:
            while chunk := stream.read(4096):
                self.output.append(chunk)
        except (OSError, ValueError):
            pass  # the pipe was closed under us when the process was killed: nothing more to keep

    def ensure_loaded(self) -> None:
        """Start the process if it is not running and import the submission in it; a load failure
        is remembered and raised again for every later call."""
        if self.broken is not None:
            raise self.broken
        if self.load_failure is not None:
            raise self.load_failure.again()
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.start()
        if self.loaded:
            return
        self._started()
        try:
            reply = self._load()
        except SolverFailure as exc:
            self.load_failure = exc if isinstance(exc, SolverTimeout) else SubmissionInvalid(
                f"the submission could not be loaded: {exc.message}", exc.detail, exc.lines)
            self.load_failure.at_load = True
            raise self.load_failure from None
        if not reply.get("ok"):
            self.load_failure = failure_from_reply(reply)
            if not isinstance(self.load_failure, (SolverMemory, SolverTimeout)):
                self.load_failure = SubmissionInvalid(self.load_failure.message, self.load_failure.detail,
                                                      self.load_failure.lines)
            self.load_failure.at_load = True
            self.kill()
            raise self.load_failure
        self.loaded = True

    def _started(self) -> None:
        # Before the submission is imported nothing of the solver's has run: a process that does
        # not start is the grader's installation failing, never the submission's fault.
        try:
            self.wait_ready(time.monotonic() + self.STARTUP_S)  # the grader's time: not charged
            problem = None if self.ready.get("ready") else "it said it was not ready"
        except SolverFailure as exc:
            problem = exc.message
        if problem is None:
            self.forks = self.ready.get("forks") is True
            return
        if problem is not None:
            self.kill()
            tail = self.output_tail().strip()[-1500:]
            self.broken = SandboxUnavailable(
                f"the sandboxed process did not start ({problem}); the grader's installation is at fault, "
                f"not the submission" + (f". It printed:\n{tail}" if tail else ""))
            raise self.broken

    def _load(self) -> dict:
        # Importing the submission is the solver's time: it is charged to the total budget, and
        # bounded by what is left of it, so a module that sleeps at import cannot buy time by
        # crashing every call and being imported again.
        left = self.spent_limit() - self.spent_s
        if left <= 0:
            raise SolverTimeout(f"the submission used up its total time budget ({self.spent_limit():g} s)")
        limit_s = min(self.time_s + 30, left)
        t0 = time.monotonic()
        try:
            self._send(self.load_request, [], t0 + limit_s, "importing the submission")
            if self.forks:
                self._forked(t0 + limit_s, limit_s)
            reply, _ = self._receive(t0 + limit_s, during="importing the submission", limit_s=limit_s)
        finally:
            self.spent_s += time.monotonic() - t0
        return reply

    def _forked(self, deadline: float, limit_s: float) -> None:
        # The fork server's own answer comes before anything of the new child's.
        ack, _ = self._receive(deadline, during="forking the submission's process", limit_s=limit_s)
        if ack.get("ok") is True and ack.get("forked") is True:
            self.generation += 1
            return
        self.kill()
        if ack.get("kind") == "unavailable":
            self.broken = SandboxUnavailable(f"the sandbox could not be set up: {str(ack.get('message'))[:2000]}; "
                                             f"the grader's installation is at fault, not the submission")
            raise self.broken
        raise SolverCrashed("the sandboxed process broke the protocol while forking")

    def _end_child(self) -> None:
        """After a child overran or misbehaved: have the fork server kill it (the next load forks a
        new one); kill the whole process when there is no fork server or it does not answer."""
        self.loaded = False
        if not (self.forks and self.proc is not None and self.proc.poll() is None):
            self.kill()
            return
        self.generation += 1  # the objects of the dead child are gone
        deadline = time.monotonic() + self.KILL_S
        try:
            self._send({"op": "kill"}, [], deadline, "killing the child")
            while True:  # a reply that came too late may come before the answer: skip it
                reply, _ = self._receive(deadline, during="killing the child", stop=self.kill, raw=True)
                if reply.get("killed") is True:
                    return
        except SolverFailure:
            if self.proc is not None and self.proc.poll() is None:
                self.kill()

    def kill(self) -> None:
        """Kill the process with its whole session (what it forked dies too)."""
        if self.proc is None:
            return
        try:
            if self.proc.returncode is None:  # once reaped, its pid may belong to someone else
                killpg = getattr(self.proc, "killpg", None)  # a sandbox started around a placeholder
                killpg() if killpg else os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone with its whole group
        except PermissionError as exc:
            log.warning("could not kill the process group of sandboxed process %d: %s", self.proc.pid, exc)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("sandboxed process %d did not exit within 10 s of SIGKILL", self.proc.pid)
        stop = getattr(self.backend, "stop", None)
        if stop is not None:
            stop(self.proc)  # what outlives the process (the docker backend's container)

    def close(self) -> None:
        """Kill the process and close its pipes; the next call starts a new one."""
        if self.proc is not None:
            self.kill()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass  # a pipe already broken by the dead process
            self.proc = None

    def dispose(self) -> None:
        """Close, and remove the submission folder made for this client."""
        self.close()
        shutil.rmtree(self.spec.submission_dir, ignore_errors=True)

    def wait_ready(self, deadline: float) -> None:
        """Wait for the sandboxed process's start-up message (kept for ensure_loaded)."""
        if self.proc is not None and self.ready is None:
            self.ready, _ = self._receive(deadline, during="starting", limit_s=self.STARTUP_S)

    # ------------------------------------------------------------ calls
    def call(self, target: Any, method: str | None, args: tuple, kwargs: dict) -> Any:
        """Run `target` (a function name, {"ref": n} or {"handle": name}), or its `method`, in the
        sandbox and return the decoded result; a verdict exception when it does not return."""
        try:
            with self.pause_clock():
                return self._budgeted_call(target, method, args, kwargs)
        except SandboxUnavailable as exc:
            if self.observer is not None:
                self.observer(exc)  # the grader's failure: a test must not swallow it either
            raise
        except SolverFailure as exc:
            if exc.verdict != "error" and self.observer is not None:
                self.observer(exc)
            raise

    def report(self, failure: SolverFailure) -> SolverFailure:
        """Tell the observer of a failure raised outside `call` (a proxy's own check); returns it."""
        if self.observer is not None:
            self.observer(failure)
        return failure

    def _budgeted_call(self, target: Any, method: str | None, args: tuple, kwargs: dict) -> Any:
        total = float(self.spent_limit())
        if self.spent_s >= total:
            raise SolverTimeout(f"the submission used up its total time budget ({total:g} s) in earlier tests")
        self.ensure_loaded()  # (re)starting the process is the grader's time, not the solver's
        t0 = time.monotonic()
        try:
            return self._call(target, method, args, kwargs)
        finally:
            elapsed = time.monotonic() - t0
            self.spent_s += elapsed
            self.slowest_call_s = max(self.slowest_call_s, elapsed)

    def spent_limit(self) -> float:
        """The submission's total wall-clock budget for calls, in seconds."""
        return self.spec.limits.get("total_s", float("inf"))

    def _call(self, target: Any, method: str | None, args: tuple, kwargs: dict) -> Any:
        self.ensure_loaded()
        buffers: list[bytes] = []
        try:
            header = {"op": "call", "target": target, "method": method,
                      "args": wire.encode(list(args), buffers), "kwargs": wire.encode(dict(kwargs), buffers)}
        except wire.Unencodable as exc:
            raise TypeError(f"test passed an argument that cannot cross the sandbox: {exc}") from None
        self.calls += 1
        deadline = time.monotonic() + self.time_s  # writing the request counts, too
        self._send(header, buffers, deadline, "the call")
        reply, out = self._receive(deadline, during="the call")
        peak = reply.get("peak_rss_kb")
        if isinstance(peak, int) and not isinstance(peak, bool):  # a figure to report, nothing more
            self.peak_rss_kb = max(self.peak_rss_kb, peak)
        if not reply.get("ok"):
            del out  # a failure reply carries no value: let its buffers go at once
            raise failure_from_reply(reply)
        bounds = wire.REPLY.with_limits(self.spec.limits)  # the problem's bounds on returned shapes
        try:
            return wire.decode(reply.get("value"), out, self._resolve, bounds=bounds)
        except Exception as exc:  # decode raises only WireError; anything else is as malformed
            self._end_child()  # a whole frame with a bad value: the fork server's child is ended
            del reply, out  # the failure outlives this call (the test's record): not the reply
            raise SolverCrashed(f"the sandboxed process sent a malformed return value ({exc})") from None

    def release(self, ref: int, generation: int) -> None:
        """Let the process forget an object the grader no longer holds."""
        if generation == self.generation and self.proc is not None and self.proc.poll() is None:
            deadline = time.monotonic() + self.time_s
            try:
                self._send({"op": "release", "ref": ref}, [], deadline, "releasing an object")
                self._receive(deadline, during="releasing an object")
            except SolverFailure as exc:
                log.debug("releasing object %d failed: %s", ref, exc.message)

    def _resolve(self, tag: str, node: dict):
        if tag == "__remote__":
            from .proxies import RemoteObject

            return RemoteObject(self, int(node["__remote__"]), str(node.get("type", "object")), self.generation)
        raise wire.WireError(f"{tag} is not accepted from the sandboxed process")

    def _send(self, header: dict, buffers: list[bytes], deadline: float, during: str) -> None:
        # The pipe is non-blocking: a process that stops reading its input cannot hold the grader
        # past the deadline (a blocking write into a full pipe would wait forever).
        data = memoryview(wire.pack_message(header, buffers))
        fd = self.proc.stdin.fileno()
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise SolverTimeout(f"the sandboxed process stopped reading its input during {during}")
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                continue
            try:
                data = data[os.write(fd, data[:1 << 20]):]
            except BlockingIOError:
                continue
            except OSError:
                return  # the process died; _receive reports how

    def _receive(self, deadline: float, during: str, limit_s: float | None = None, stop=None,
                 raw: bool = False) -> tuple[dict, list[bytes]]:
        # On a timeout `stop` (default: end the child) runs; `raw` returns the fork server's notice
        # of a child's death instead of raising the failure it means.
        fd = self.proc.stdout.fileno()
        while True:
            try:
                message = self.reader.message()
            except wire.WireError as exc:
                # The frame was taken whole, so the stream is intact: a fork server (which relays
                # frames without reading them) only needs its child ended.
                self._end_child()
                raise SolverCrashed(f"the sandboxed process sent a malformed reply ({exc})") from None
            if message is not None:
                if self.forks and not raw and message[0].get("ok") is False and "died" in message[0]:
                    self.loaded = False
                    self.generation += 1
                    raise child_failure(message[0], during, self.spec.limits)
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                (stop or self._end_child)()
                raise SolverTimeout(f"no answer within {limit_s or self.time_s:g} s during {during}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise self._death(during, deadline, limit_s or self.time_s)
            try:
                self.reader.feed(chunk)
            except wire.WireError as exc:
                self.kill()
                raise SolverCrashed(f"the sandboxed process sent a malformed reply ({exc})") from None

    def _death(self, during: str, deadline: float, limit_s: float) -> SolverFailure:
        # Its output closed: wait for the exit status, but never past the call's deadline (a
        # process may close the pipe and live on).
        log.info("sandboxed process %d closed its output during %s", self.proc.pid, during)
        try:
            rc = self.proc.wait(timeout=max(0.0, deadline - time.monotonic()) + 0.5)
        except subprocess.TimeoutExpired:
            self.kill()
            return SolverTimeout(f"no answer within {limit_s:g} s during {during} (the process closed its output)")
        return exit_failure(exit_signal(rc), rc, during, self.spec.limits)

    def output_tail(self) -> str:
        """The last bytes the solver's code printed (stdout and stderr together)."""
        return b"".join(self.output)[-self.OUTPUT_TAIL:].decode("utf-8", "replace")




def exit_failure(sig: int | None, rc, during: str, limits: dict) -> SolverFailure:
    """The verdict for a sandboxed process that ended by signal `sig` or with status `rc`."""
    if sig == signal.SIGXCPU:
        return SolverTimeout(f"CPU time limit ({limits['cpu_s']:g} s) exceeded during {during}")
    if sig == signal.SIGKILL:
        return SolverMemory(f"the sandboxed process was killed (out of memory?) during {during}")
    if sig is not None:
        return SolverCrashed(f"the sandboxed process died of signal {signal_name(sig)} during {during}")
    return SolverCrashed(f"the sandboxed process exited with status {rc} during {during}")


def child_failure(notice: dict, during: str, limits: dict) -> SolverFailure:
    """The verdict for the fork server's notice that the child died before answering."""
    if notice.get("kind") == "protocol":
        return SolverCrashed("the sandboxed process sent a malformed reply")
    died = notice.get("died") if isinstance(notice.get("died"), dict) else {}
    sig, rc = died.get("signal"), died.get("status")
    return exit_failure(sig if type(sig) is int else None, rc if type(rc) is int else "unknown", during, limits)


def exit_signal(rc: int | None) -> int | None:
    """The signal that ended a process: a negative status, or 128 + signal as bwrap and `docker run`
    report it (an exit status above 128 that is no signal number is an ordinary exit)."""
    if rc is None:
        return None
    if rc < 0:
        return -rc
    if 128 < rc <= 128 + signal.SIGRTMAX:
        return rc - 128
    return None


def signal_name(sig: int) -> str:
    """SIGSEGV for 11; a plain number for signals without a name."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"number {sig}"
