"""`grader submit --server URL`: send a file to a course server and wait for its verdicts."""
from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console

from .results import Result

POLL_S = 0.5
WAIT_S = 1800


def submit_remote(server: str, token: str | None, ident: str, file: Path, as_json: bool, console: Console) -> None:
    if not token:
        console.print("[red]error:[/] --token (or GRADER_TOKEN) is needed to submit to a server")
        raise typer.Exit(2)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=30) as http:
        reply = http.post("/api/submissions", data={"problem": ident},
                          files={"file": (file.name, file.read_bytes())})
        if reply.status_code != 202:
            console.print(f"[red]error:[/] the server refused the submission: {reply.status_code} {reply.text}")
            raise typer.Exit(2)
        sub_id = reply.json()["id"]
        record = wait(http, sub_id, console, quiet=as_json)
    if record["status"] != "graded":
        console.print(f"[red]error:[/] submission {sub_id} {record['status']}: {record.get('error')}")
        raise typer.Exit(3)
    result = Result.model_validate(record["result"])
    if as_json:
        print(json.dumps(result.model_dump(), indent=2))
    else:
        from .cli import print_result

        print_result(result)


def wait(http: httpx.Client, sub_id: int, console: Console, quiet: bool) -> dict:
    deadline = time.monotonic() + WAIT_S
    with console.status(f"submission {sub_id}: queued", spinner="dots") as status:
        while time.monotonic() < deadline:
            record = http.get(f"/api/submissions/{sub_id}").json()
            if record["status"] in ("graded", "failed"):
                return record
            if not quiet:
                status.update(f"submission {sub_id}: {record['status']}")
            time.sleep(POLL_S)
    raise TimeoutError(f"submission {sub_id} was not graded within {WAIT_S} s")
