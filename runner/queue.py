"""Distributed grading on Celery with a Redis broker: queues `cpu` and `gpu`.

Jobs are acknowledged late and redelivered when the worker holding one dies, so a worker killed
mid-grade loses nothing; the result write is conditional, so a redone job leaves exactly one
final result. The broker is $GRADER_BROKER_URL (default redis://127.0.0.1:6379/0). A worker grades
with $GRADER_BACKEND (default local) and $GRADER_LIMITS (overrides of the problems' limits).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from .catalogue import Catalogue
from .gradebook import Gradebook


def make_celery() -> Celery:
    app = Celery("diffusion_grader", broker=os.environ.get("GRADER_BROKER_URL", "redis://127.0.0.1:6379/0"))
    visibility = int(os.environ.get("GRADER_VISIBILITY_TIMEOUT", "3600"))
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


def limits_from_env() -> dict:
    """$GRADER_LIMITS, e.g. `time_s=2,total_s=10`: overrides of every problem's [limits] on this
    worker (a course may want shorter limits under load; the load test uses it for hanging code)."""
    from .schema import parse_limit_overrides

    items = filter(None, (p.strip() for p in os.environ.get("GRADER_LIMITS", "").split(",")))
    return parse_limit_overrides(items, "GRADER_LIMITS")


def queue_for(problem_key: str) -> str:
    return "gpu" if Catalogue().get(problem_key).meta.device == "cuda" else "cpu"


def enqueue(sub_id: int, problem_key: str) -> str:
    queue = queue_for(problem_key)
    grade_submission.apply_async((sub_id,), queue=queue)
    return queue


@celery_app.task(name="grader.grade_submission")
def grade_submission(sub_id: int) -> str:
    from .grading import GradingError, grade

    book = Gradebook()
    row = book.get(sub_id)
    if row is None:
        return "missing"
    if row.status in ("graded", "failed"):
        return "already done"  # a redelivered job whose result was stored
    book.mark_grading(sub_id)
    with tempfile.TemporaryDirectory(prefix="grader-job-") as tmp:
        path = Path(tmp) / (Path(row.filename).name or "submission.py")
        path.write_bytes(row.content)
        try:
            result = grade(Catalogue().get(row.problem), path, os.environ.get("GRADER_BACKEND", "local"),
                           limits=limits_from_env())
        except GradingError as exc:
            book.mark_failed(sub_id, str(exc))
            return "failed"
    result.submission_id = sub_id
    return "stored" if book.store_result(sub_id, result) else "already done"


@worker_process_init.connect
@worker_ready.connect
def _warm_pool(**_):
    # Long-lived worker: keep a started sandbox ready for the next job.
    from . import rpc

    if rpc.POOL is None:
        rpc.POOL = rpc.WorkerPool()


def run_worker(queues: list[str], concurrency: int = 1, hostname: str | None = None) -> None:
    limits_from_env()  # a typo in $GRADER_LIMITS stops the worker here, not each job
    argv = ["worker", "--queues", ",".join(queues), "--concurrency", str(concurrency), "--pool", "solo",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
    if hostname:
        argv += ["--hostname", hostname]
    celery_app.worker_main(argv)
