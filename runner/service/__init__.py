"""The course server and its queue: solvers submit over HTTP, grading workers take the jobs.

    server  the HTTP API (FastAPI): submit, poll, fetch results
    queue   Celery on Redis: the `cpu` and `gpu` queues and the grading task
    remote  the client side of `grader submit --server`
"""
