"""Clients with their sandboxed process already started, so that a submission does not wait for
the interpreter and the framework to start inside the sandbox.

Long-lived graders (a course's grading worker, the benchmark) make one `SandboxPool` and pass it to
`grade(..., pool=)`; one-shot graders pass none. Each client serves exactly one submission.
"""
from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from .backends import LaunchSpec
from .client import SandboxClient

log = logging.getLogger(__name__)


def new_client(backend, spec: LaunchSpec, functions: list[dict], handles: dict,
               imports: dict | None = None) -> SandboxClient:
    """A client whose process is starting, with a fresh private folder for the submission."""
    folder = Path(tempfile.mkdtemp(prefix="grader-submission-"))
    folder.chmod(0o755)  # the sandboxed process runs as nobody
    client = SandboxClient(backend, replace(spec, submission_dir=folder), functions, handles, imports)
    client.start()
    return client


class SandboxPool:
    """Keeps one started client per configuration ready. The next spare starts as soon as one is
    taken: its interpreter and framework start while the submission that took the last one is
    graded, so that a busy grader (a queue near a deadline) never waits for a sandbox to start."""

    def __init__(self):
        self._spares: dict[str, SandboxClient] = {}
        self._lock = threading.Lock()

    def checkout(self, backend, spec: LaunchSpec, functions: list[dict], handles: dict, code: str,
                 imports: dict | None = None) -> SandboxClient:
        """A started client for this configuration, holding `code` as its submission."""
        key = json.dumps([backend.name, spec.limits, {k: str(v) for k, v in spec.assets.items()},
                          [str(p) for p in spec.protected], spec.cuda, functions, handles, imports], sort_keys=True)
        with self._lock:
            client = self._spares.pop(key, None)
        if client is None or client.proc is None or client.proc.poll() is not None:
            log.debug("no live spare for this configuration: starting a client")
            client = new_client(backend, spec, functions, handles, imports)
        self._refill(key, backend, spec, functions, handles, imports)
        client.set_submission(code)
        return client

    def _refill(self, key, backend, spec, functions, handles, imports) -> None:
        spare = new_client(backend, spec, functions, handles, imports)
        with self._lock:
            old, self._spares[key] = self._spares.get(key), spare
        if old is not None:
            old.dispose()

    def wait_ready(self, timeout: float = 120) -> None:
        """Block until every spare has started (benchmarks time the steady state)."""
        for client in list(self._spares.values()):
            client.wait_ready(time.monotonic() + timeout)

    def close(self) -> None:
        """Stop every spare."""
        with self._lock:
            for client in self._spares.values():
                client.dispose()
            self._spares.clear()


def checkout(pool: SandboxPool | None, backend, spec: LaunchSpec, functions: list[dict], handles: dict,
             code: str, imports: dict | None = None) -> SandboxClient:
    """A client for one submission: from `pool` when there is one, else started now. `imports` is
    what the sandboxed process's import guard allows ({"problem": key, "allowed": [...]})."""
    if pool is not None:
        return pool.checkout(backend, spec, functions, handles, code, imports)
    client = new_client(backend, spec, functions, handles, imports)
    client.set_submission(code)
    return client
