"""`grader submit --server URL`: send a file to a course server and wait for its verdicts.

This module talks HTTP only; the CLI shows the progress and the result.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import httpx

from runner.records.results import Result

POLL_S = 0.5
WAIT_S = 1800


class RemoteError(RuntimeError):
    """The server refused the submission or could not grade it; `exit_code` is the CLI's status."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def submit_remote(server: str, token: str | None, ident: str, file: Path,
                  on_status: Callable[[str], None] = lambda status: None) -> Result:
    """Upload `file` for problem `ident`, wait until it is graded, and return the result."""
    if not token:
        raise RemoteError("--token (or GRADER_TOKEN) is needed to submit to a server", 2)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=30) as http:
        reply = http.post("/api/submissions", data={"problem": ident},
                          files={"file": (file.name, file.read_bytes())})
        if reply.status_code != 202:
            raise RemoteError(f"the server refused the submission: {reply.status_code} {reply.text}", 2)
        sub_id = reply.json()["id"]
        record = wait(http, sub_id, on_status)
    if record["status"] not in ("graded", "invalid"):
        raise RemoteError(f"submission {sub_id} {record['status']}: {record.get('error')}", 3)
    return Result.model_validate(record["result"])


def wait(http: httpx.Client, sub_id: int, on_status: Callable[[str], None]) -> dict:
    """Poll the submission until it is graded or failed; its record."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        record = http.get(f"/api/submissions/{sub_id}").json()
        if record["status"] in ("graded", "invalid", "failed"):
            return record
        on_status(f"submission {sub_id}: {record['status']}")
        time.sleep(POLL_S)
    raise RemoteError(f"submission {sub_id} was not graded within {WAIT_S} s", 3)
