"""The course server: an HTTP API to submit, poll and fetch results; grading goes to the queue.

Every accepted submission is stored in the gradebook before it is queued.
"""
from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, UploadFile

from runner.problems.catalogue import Catalogue, UnknownProblem
from runner.records.gradebook import Gradebook, user_for_token
from runner.grading.submission import MAX_BYTES, digest

log = logging.getLogger(__name__)
MAX_UPLOAD = 4 * MAX_BYTES  # larger files are refused; up to this they are stored and judged invalid

app = FastAPI(title="diffusion-grader course server")
_book: Gradebook | None = None


def gradebook() -> Gradebook:
    """The server's gradebook, opened on first use."""
    global _book
    if _book is None:
        _book = Gradebook()
    return _book


def solver(authorization: str = Header(default="")) -> str:
    """The user of the request's bearer token; 401 without a known one."""
    token = authorization.removeprefix("Bearer ").strip()
    user = user_for_token(gradebook(), token) if token else None
    if user is None:
        raise HTTPException(401, "missing or unknown API token (Authorization: Bearer TOKEN)")
    return user


@app.get("/api/problems")
def problems() -> list[dict]:
    """The catalogue."""
    return [{"id": p.meta.id, "key": p.key, "title": p.meta.title, "difficulty": p.meta.difficulty.value,
             "tags": p.meta.tags, "device": p.meta.device} for p in Catalogue().problems()]


@app.post("/api/submissions", status_code=202)
async def create_submission(problem: str = Form(...), file: UploadFile = File(...),
                            user: str = Depends(solver)) -> dict:
    """Store an upload, then queue it; 202 with its id."""
    from runner.service.queue import enqueue

    try:
        pdir = Catalogue().get(problem)
    except UnknownProblem as exc:
        raise HTTPException(404, str(exc)) from None
    raw = await file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        raise HTTPException(413, f"the file is larger than {MAX_UPLOAD} bytes")
    book = gradebook()
    sub_id = book.add(pdir.key, file.filename or "submission.py", raw, digest(raw),
                      backend="queue", user=user)
    book.mark_queued(sub_id)  # before enqueueing: a fast worker must not have its status overwritten
    try:
        queue = enqueue(sub_id, pdir.key)
    except Exception as exc:  # noqa: BLE001 - the broker is down: keep the submission, say so
        log.error("could not queue submission %d: %s", sub_id, exc)
        book.mark_failed(sub_id, f"could not be queued: {exc}")
        raise HTTPException(503, "the grading queue is unavailable; the submission is stored") from None
    return {"id": sub_id, "problem": pdir.key, "status": "queued", "queue": queue}


@app.get("/api/submissions/{sub_id}")
def get_submission(sub_id: int, user: str = Depends(solver)) -> dict:
    """A submission of the caller's, with its result once graded."""
    row = gradebook().get(sub_id)
    if row is None or row.user != user:
        raise HTTPException(404, f"no submission {sub_id}")
    result = row.result()
    return {"id": row.id, "problem": row.problem, "status": row.status, "score": row.score,
            "max_score": row.max_score, "attempts": row.attempts, "error": row.error,
            "result": result.model_dump() if result else None}
