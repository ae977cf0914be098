"""The one life cycle of a graded submission: store it, grade it, store its result, or mark it
failed. The CLI, the notebook and the course queue all go through here, so they agree on what
is stored and on which exceptions fail a submission:

- the grader's own failure (GradingError, or any other exception while grading): the submission
  is marked `failed` with the reason, and the exception is raised to the caller;
- an interruption (Ctrl-C, a worker shutting down): `failed` as well, unless the caller will grade
  the submission again (the queue redelivers an unacknowledged job), in which case it is left as is.
"""
from __future__ import annotations

import logging
import traceback
from pathlib import Path

from runner.grading.pipeline import GradingError, grade
from runner.grading.submission import MAX_BYTES, digest
from runner.problems.catalogue import ProblemDir
from runner.records.gradebook import Gradebook
from runner.records.results import Result
from runner.sandbox.pool import SandboxPool

log = logging.getLogger(__name__)


def limits_from_settings() -> dict:
    """$GRADER_LIMITS, e.g. `time_s=2,total_s=10`: overrides of every problem's [limits] wherever
    this machine grades (a course may want shorter limits under load; a slow model longer ones)."""
    from runner.problems.schema import parse_limit_overrides
    from runner.settings import current

    items = filter(None, (p.strip() for p in current().limits.split(",")))
    return parse_limit_overrides(items, "GRADER_LIMITS")


def store_submission(book: Gradebook, pdir: ProblemDir, path: Path, backend: str, user: str | None = None) -> int:
    """Store what was handed in (at most MAX_BYTES of it, with the full size and digest); its id."""
    raw = path.read_bytes() if path.is_file() else b""
    return book.add(pdir.key, path.name, raw[:MAX_BYTES], digest(raw), backend,
                    user=user, size=len(raw))


def grade_stored(book: Gradebook, sub_id: int, pdir: ProblemDir, path: Path, backend: str, *,
                 limits: dict | None = None, pool: SandboxPool | None = None,
                 redelivered_on_interrupt: bool = False) -> Result | None:
    """Grade a stored submission and store its result; None when a result was stored already
    (a redelivered job). A failure of the grader is stored, then raised."""
    book.mark_grading(sub_id)
    try:
        result = grade(pdir, path, backend, limits=limits, pool=pool)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, GradingError) else "".join(traceback.format_exception(exc))
        log.error("grading submission %d failed: %s", sub_id, reason.splitlines()[-1] if reason else exc)
        book.mark_failed(sub_id, reason)
        raise
    except BaseException as exc:
        if not redelivered_on_interrupt:
            book.mark_failed(sub_id, f"grading was interrupted ({type(exc).__name__})")
        raise
    result.submission_id = sub_id
    if not book.store_result(sub_id, result):
        log.info("submission %d already had a result; this one was not stored", sub_id)
        return None
    return result


def submit(pdir: ProblemDir, submission: Path, gradebook: Gradebook, backend: str = "local",
           user: str | None = None, limits: dict | None = None, pool: SandboxPool | None = None) -> Result:
    """Store the submission, grade it, store the result. A grader failure is stored, then raised."""
    path = Path(submission)
    sub_id = store_submission(gradebook, pdir, path, backend, user)
    result = grade_stored(gradebook, sub_id, pdir, path, backend, limits=limits, pool=pool)
    assert result is not None, "a new submission has no stored result yet"
    return result
