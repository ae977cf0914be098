"""The trusted side of the sandbox: start the worker, send calls, turn what comes back into values
or verdict exceptions. Also the unsafe in-process stand-in used for instructors' own code."""
from __future__ import annotations

import collections
import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import wire
from .catalogue import import_file
from .sandbox import SANDBOX_SUBMISSION, LaunchSpec

SUBMISSION_FILE = "submission.py"


class SolverFailure(Exception):
    """A call into the solver's code did not return normally; `verdict` names how."""

    verdict = "error"

    # Failures other than the solver's own exception, in the order they happened. A test that
    # catches exceptions (to check that bad input raises) cannot hide a timeout or crash this way.
    observed: list["SolverFailure"] = []

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail  # traceback lines in the solver's own file
        if self.verdict != "error":
            SolverFailure.observed.append(self)

    def again(self) -> "SolverFailure":
        """The same failure raised anew (a remembered one is observed again in this test)."""
        return type(self)(self.message, self.detail)


class SolverError(SolverFailure):
    verdict = "error"


class SolverTimeout(SolverFailure):
    verdict = "timeout"


class SolverMemory(SolverFailure):
    verdict = "memory"


class SolverCrashed(SolverFailure):
    verdict = "crashed"


class SubmissionInvalid(SolverFailure):
    verdict = "invalid"


FAILURES = {"error": SolverError, "memory": SolverMemory, "invalid": SubmissionInvalid,
            "timeout": SolverTimeout, "crashed": SolverCrashed}


def format_frames(frames: list[dict]) -> str:
    return "\n".join(f'  line {f["line"]}, in {f["function"]}\n    {f["code"]}' for f in frames)


def failure_from_reply(reply: dict) -> SolverFailure:
    kind = reply.get("kind")
    if kind == "protocol":
        return SolverCrashed(f"the worker broke the protocol: {str(reply.get('message'))[:200]}")
    cls = FAILURES.get(kind, SolverError)
    head = f"{reply.get('type', 'Error')}: {reply.get('message', '')}".strip()
    return cls(head, format_frames(reply.get("frames") or []))


class WorkerClient:
    """One sandboxed worker for one submission; restarted after a failure that killed it."""

    STARTUP_S = 120.0
    OUTPUT_TAIL = 8192

    def __init__(self, backend, spec: LaunchSpec, functions: list[dict], handles: dict | None = None):
        self.backend = backend
        self.spec = spec
        self.load_request = {"op": "load", "path": f"{SANDBOX_SUBMISSION}/{SUBMISSION_FILE}",
                             "functions": functions, "handles": handles or {}}
        self.time_s = float(spec.limits["time_s"])
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.loaded = False
        self.load_failure: SolverFailure | None = None
        self.output = collections.deque(maxlen=64)
        self.calls = 0
        self.spent_s = 0.0  # wall clock used by calls, against limits.total_s
        self.ready: dict | None = None  # the start-up message, once received
        self.on_dispose = None

    def set_submission(self, code: str) -> None:
        """Put the module to grade where the worker will import it (its folder is mounted read-only)."""
        target = self.spec.submission_dir / SUBMISSION_FILE
        target.write_text(code, encoding="utf-8")
        target.chmod(0o644)

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Launch the worker; returns at once, so its start-up overlaps the caller's work."""
        cmd = self.backend.command(self.spec)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True, bufsize=0)
        self.generation += 1
        self.loaded = False
        self.ready = None
        self.reader = wire.FrameReader()
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    def _drain(self, stream) -> None:
        # Keep only the tail of what the solver prints; a flood costs it time, not our memory.
        try:
            while chunk := stream.read(4096):
                self.output.append(chunk)
        except (OSError, ValueError):
            pass

    def ensure_loaded(self) -> None:
        if self.load_failure is not None:
            raise self.load_failure.again()
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.start()
        if self.loaded:
            return
        try:
            self.wait_ready(time.monotonic() + self.STARTUP_S)
            if not self.ready.get("ready"):
                raise SolverCrashed("the worker did not start")
            self._send(self.load_request, [])
            reply, _ = self._receive(time.monotonic() + self.time_s + 30, during="importing the submission")
        except SolverFailure as exc:
            self.load_failure = exc if isinstance(exc, SolverTimeout) else SubmissionInvalid(
                f"the submission could not be loaded: {exc.message}", exc.detail)
            raise self.load_failure from None
        if not reply.get("ok"):
            self.load_failure = failure_from_reply(reply)
            if not isinstance(self.load_failure, (SolverMemory, SolverTimeout)):
                self.load_failure = SubmissionInvalid(self.load_failure.message, self.load_failure.detail)
            self.kill()
            raise self.load_failure
        self.loaded = True

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        stop = getattr(self.backend, "stop", None)
        if stop is not None:
            stop(self.proc)  # what outlives the process (the docker backend's container)

    def close(self) -> None:
        if self.proc is not None:
            self.kill()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass
            self.proc = None

    def dispose(self) -> None:
        """Close and remove the submission folder made for this worker."""
        self.close()
        shutil.rmtree(self.spec.submission_dir, ignore_errors=True)
        hook, self.on_dispose = self.on_dispose, None
        if hook is not None:
            hook()

    def wait_ready(self, deadline: float) -> None:
        """Wait for the worker's start-up message (keeps it for ensure_loaded)."""
        if self.proc is not None and self.ready is None:
            self.ready, _ = self._receive(deadline, during="starting")

    # ------------------------------------------------------------ calls
    def call(self, target: Any, method: str | None, args: tuple, kwargs: dict) -> Any:
        total = float(self.spent_limit())
        if self.spent_s >= total:
            raise SolverTimeout(f"the submission used up its total time budget ({total:g} s) in earlier tests")
        self.ensure_loaded()  # (re)starting the worker is the grader's time, not the solver's
        t0 = time.monotonic()
        try:
            return self._call(target, method, args, kwargs)
        finally:
            self.spent_s += time.monotonic() - t0

    def spent_limit(self) -> float:
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
        self._send(header, buffers)
        reply, out = self._receive(time.monotonic() + self.time_s, during="the call")
        if not reply.get("ok"):
            raise failure_from_reply(reply)
        try:
            return wire.decode(reply.get("value"), out, self._resolve)
        except (wire.WireError, KeyError, TypeError, ValueError) as exc:
            self.kill()
            raise SolverCrashed(f"the worker sent a malformed reply ({exc})") from None

    def release(self, ref: int, generation: int) -> None:
        if generation == self.generation and self.proc is not None and self.proc.poll() is None:
            self._send({"op": "release", "ref": ref}, [])
            try:
                self._receive(time.monotonic() + self.time_s, during="releasing an object")
            except SolverFailure:
                pass

    def _resolve(self, tag: str, node: dict):
        if tag == "__remote__":
            return RemoteObject(self, int(node["__remote__"]), str(node.get("type", "object")), self.generation)
        raise wire.WireError(f"{tag} is not accepted from the worker")

    def _send(self, header: dict, buffers: list[bytes]) -> None:
        data = wire.pack_message(header, buffers)
        proc = self.proc

        def write():
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the worker died; _receive reports how

        if len(data) < 32768:
            write()
        else:
            threading.Thread(target=write, daemon=True).start()

    def _receive(self, deadline: float, during: str) -> tuple[dict, list[bytes]]:
        fd = self.proc.stdout.fileno()
        while True:
            try:
                message = self.reader.message()
            except wire.WireError as exc:
                self.kill()
                raise SolverCrashed(f"the worker sent a malformed reply ({exc})") from None
            if message is not None:
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise SolverTimeout(f"no answer within {self.time_s:g} s during {during}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise self._death(during)
            try:
                self.reader.feed(chunk)
            except wire.WireError as exc:
                self.kill()
                raise SolverCrashed(f"the worker sent a malformed reply ({exc})") from None

    def _death(self, during: str) -> SolverFailure:
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc is not None and rc > 128 else None)
        if sig == signal.SIGXCPU:
            return SolverTimeout(f"CPU time limit ({self.spec.limits['cpu_s']:g} s) exceeded during {during}")
        if sig == signal.SIGKILL:
            return SolverMemory(f"the worker was killed (out of memory?) during {during}")
        if sig is not None:
            return SolverCrashed(f"the worker died of signal {signal.Signals(sig).name} during {during}")
        return SolverCrashed(f"the worker exited with status {rc} during {during}")

    def output_tail(self) -> str:
        return b"".join(self.output)[-self.OUTPUT_TAIL:].decode("utf-8", "replace")


def new_worker(backend, spec: LaunchSpec, functions: list[dict], handles: dict) -> WorkerClient:
    """A started worker with a fresh private folder for the submission."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="grader-submission-"))
    folder.chmod(0o755)  # the worker runs as nobody
    client = WorkerClient(backend, replace(spec, submission_dir=folder), functions, handles)
    client.start()
    return client


class WorkerPool:
    """Keeps one started worker per configuration ready, so that a submission does not wait for
    the interpreter and framework to start inside the sandbox. Each worker serves one submission."""

    def __init__(self):
        self._spares: dict[str, WorkerClient] = {}
        self._lock = threading.Lock()

    def checkout(self, backend, spec: LaunchSpec, functions: list[dict], handles: dict, code: str) -> WorkerClient:
        key = json.dumps([backend.name, spec.limits, {k: str(v) for k, v in spec.assets.items()},
                          [str(p) for p in spec.protected], spec.cuda, functions, handles], sort_keys=True)
        with self._lock:
            client = self._spares.pop(key, None)
        if client is None or client.proc is None or client.proc.poll() is not None:
            client = new_worker(backend, spec, functions, handles)
        # The next spare starts when this submission is done, not while it is being graded.
        client.on_dispose = lambda: self._refill(key, backend, spec, functions, handles)
        client.set_submission(code)
        return client

    def _refill(self, key, backend, spec, functions, handles) -> None:
        spare = new_worker(backend, spec, functions, handles)
        with self._lock:
            old, self._spares[key] = self._spares.get(key), spare
        if old is not None:
            old.dispose()

    def wait_ready(self, timeout: float = 120) -> None:
        """Block until every spare has started (benchmarks time the steady state)."""
        for client in list(self._spares.values()):
            client.wait_ready(time.monotonic() + timeout)

    def close(self) -> None:
        with self._lock:
            for client in self._spares.values():
                client.dispose()
            self._spares.clear()


POOL: WorkerPool | None = None  # set by long-lived graders (bench, servers, notebook kernels)


def checkout_worker(backend, spec: LaunchSpec, functions: list[dict], handles: dict, code: str) -> WorkerClient:
    if POOL is not None:
        return POOL.checkout(backend, spec, functions, handles, code)
    client = new_worker(backend, spec, functions, handles)
    client.set_submission(code)
    return client


class RemoteObject:
    """An object of the solver's that lives in the worker; method calls go over the wire."""

    def __init__(self, client: WorkerClient, ref: int, type_name: str, generation: int):
        self._client, self._ref, self._type, self._generation = client, ref, type_name, generation

    def _invoke(self, method: str, args: tuple, kwargs: dict) -> Any:
        if self._generation != self._client.generation:
            raise SolverCrashed("this object was lost when the worker restarted after an earlier failure")
        return self._client.call({"ref": self._ref}, method, args, kwargs)

    def __call__(self, *args, **kwargs):
        return self._invoke("__call__", args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._invoke(name, args, kwargs)

    def __repr__(self) -> str:
        return f"<remote {self._type}>"


class SandboxedSubmission:
    """`submission.fn(...)` runs `fn` of the solver's module inside the sandbox."""

    def __init__(self, client: WorkerClient, names: list[str]):
        self._client = client
        self._names = set(names)

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._names:
            raise AttributeError(f"the problem does not define {name!r}")
        client = self._client
        return lambda *args, **kwargs: client.call(name, None, args, kwargs)

    def handle_method(self, handle: str, method: str, *args, **kwargs):
        """Call `method` of the named handle in the worker (the grader's view of the handle)."""
        return self._client.call({"handle": handle}, method, args, kwargs)

    def close(self) -> None:
        self._client.dispose()


class InProcessSubmission:
    """UNSAFE: imports the module into this process. For a solver's own public tests and for
    instructors checking their own reference; never for grading others' code."""

    def __init__(self, path: Path, functions: list[dict], name: str = "submission_inprocess",
                 handles: dict | None = None):
        from .worker import check_signature

        self._path = str(path)
        self._generators: dict[int, Any] = {}
        self._handle_specs = {k: v for k, v in (handles or {}).items() if not k.startswith("_")}
        self._handles: dict[str, Any] = {}
        try:
            module = import_file(path, name)
        except Exception as exc:  # noqa: BLE001
            self._invalid = SubmissionInvalid(f"importing the submission raised {type(exc).__name__}: {exc}")
            return
        problems = [p for f in functions if (p := check_signature(module, f))]
        self._invalid = SubmissionInvalid("; ".join(problems)) if problems else None
        self._module = module

    def _handle(self, name: str):
        if name not in self._handles:
            from .worker import build_handle

            spec = dict(self._handle_specs[name])
            spec["path"] = spec.get("host_path", spec["path"])
            self._handles[name] = build_handle(spec)
        return self._handles[name]

    def handle_method(self, handle: str, method: str, *args, **kwargs):
        return getattr(self._handle(handle), method)(*args, **kwargs)

    def _convert(self, value):
        if isinstance(value, wire.Handle):
            return self._handle(value.name)
        if isinstance(value, wire.Generator):
            import torch

            if value.id not in self._generators:
                self._generators[value.id] = torch.Generator(device=value.device).manual_seed(value.seed)
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
                raise SolverMemory(f"MemoryError: {exc}") from exc
            except Exception as exc:  # noqa: BLE001
                import traceback

                frames = [f"  line {f.lineno}, in {f.name}\n    {(f.line or '').strip()}"
                          for f in traceback.extract_tb(exc.__traceback__) if f.filename == self._path]
                raise SolverError(f"{type(exc).__name__}: {exc}", "\n".join(frames)) from exc
            if type(result).__module__ == self._module.__name__:
                return _InProcessObject(self, result)  # an instance of the solver's class
            return result
        return call

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._invalid is not None:
            raise self._invalid.again()
        return self._wrap(getattr(self._module, name))

    def close(self) -> None:
        pass


class _InProcessObject:
    def __init__(self, owner: InProcessSubmission, obj: Any):
        self._owner, self._obj = owner, obj

    def __call__(self, *args, **kwargs):
        return self._owner._wrap(self._obj)(*args, **kwargs)

    def __getattr__(self, name: str):
        return self._owner._wrap(getattr(self._obj, name))
