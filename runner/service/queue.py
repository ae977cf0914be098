"""Distributed grading on Celery with a Redis broker: queues `cpu` and `gpu`.

Jobs are acknowledged late and redelivered when the grading worker holding one dies, so a worker
killed mid-grade loses nothing; the result write is conditional, so a redone job leaves exactly one
final result. Broker, backend and limit overrides come from the settings (GRADER_BROKER_URL,
GRADER_BACKEND, GRADER_LIMITS, GRADER_VISIBILITY_TIMEOUT).

"Grading worker" here is the Celery process (`grader worker`); the sandboxed processes it starts
for each submission are runner.sandbox's.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from runner.grading.lifecycle import limits_from_settings
from runner.problems.catalogue import Catalogue
from runner.records.gradebook import FINAL, Gradebook
from runner.sandbox.pool import SandboxPool
from runner.settings import current as current_settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # grading attempts of one submission before it is marked failed


def make_celery() -> Celery:
    """The Celery app of the course queue, configured so that no job is lost or done twice."""
    settings = current_settings()
    app = Celery("diffusion_grader", broker=settings.broker_url)
    visibility = settings.visibility_timeout
    app.conf.update(
        task_acks_late=True,  # acknowledge after grading, not on receipt
        task_reject_on_worker_lost=True,  # a killed child puts its job back
        worker_prefetch_multiplier=1,  # a busy worker does not sit on queued jobs
        task_default_queue="cpu",
        task_ignore_result=True,  # results live in the gradebook
        broker_connection_retry_on_startup=True,
        # How long an unacknowledged job waits before another worker may take it, and how often
        # workers look for such jobs (a cheap sorted-set query).
        broker_transport_options={"visibility_timeout": visibility,
                                  "unacked_restore_interval": min(10, visibility), "unacked_restore_throttle": 1},
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery()
_pool: SandboxPool | None = None  # this grading worker's started sandboxes (one per process)


def queue_for(problem_key: str) -> str:
    """`gpu` for problems that want CUDA, `cpu` for the rest."""
    return "gpu" if Catalogue().get(problem_key).meta.device == "cuda" else "cpu"


def enqueue(sub_id: int, problem_key: str) -> str:
    """Put a stored submission on its queue; the queue's name."""
    queue = queue_for(problem_key)
    grade_submission.apply_async((sub_id,), queue=queue)
    return queue


@celery_app.task(name="grader.grade_submission")
def grade_submission(sub_id: int) -> str:
    """Grade a stored submission through the one life cycle (runner.grading.lifecycle)."""
    from runner.grading.lifecycle import grade_stored

    book = Gradebook()
    row = book.get(sub_id)
    if row is None:
        log.error("job for submission %d, which is not in the gradebook", sub_id)
        return "missing"
    if row.status in FINAL:
        return "already done"  # a redelivered job whose result was stored
    if row.attempts >= MAX_ATTEMPTS:
        # Redelivered again and again (its workers died mid-grade): it must end some time.
        book.mark_failed(sub_id, f"grading did not finish in {MAX_ATTEMPTS} attempts")
        return "failed"
    try:
        with tempfile.TemporaryDirectory(prefix="grader-job-") as tmp:
            path = Path(tmp) / (Path(row.filename).name or "submission.py")
            path.write_bytes(row.content)
            result = grade_stored(book, sub_id, Catalogue().get(row.problem), path, current_settings().backend,
                                  limits=limits_from_settings(), pool=_pool, redelivered_on_interrupt=True)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the submission must not stay `grading`
        log.exception("job for submission %d failed", sub_id)
        if book.get(sub_id).status not in FINAL:  # grade_stored stores its own failures
            book.mark_failed(sub_id, f"the grader could not grade it: {type(exc).__name__}: {exc}")
        return "failed"
    return "stored" if result is not None else "already done"


@worker_process_init.connect
@worker_ready.connect
def _start_pool(**_):
    # A long-lived grading worker keeps a started sandbox ready for the next job.
    global _pool
    if _pool is None:
        _pool = SandboxPool()


def run_worker(queues: list[str], concurrency: int = 1, hostname: str | None = None) -> None:
    """Run a grading worker on `queues` until stopped."""
    limits_from_settings()  # a typo in $GRADER_LIMITS stops the worker here, not each job
    argv = ["worker", "--queues", ",".join(queues), "--concurrency", str(concurrency), "--pool", "solo",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    if hostname:
        argv += ["--hostname", hostname]
    celery_app.worker_main(argv)
