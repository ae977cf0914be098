"""Graded coding exercises for machine-learning papers.

The pipeline, one subpackage a stage:

    problems   problem folders -> validated metadata (schema, catalogue)
    authoring  scaffolding, mutants and validation of problems
    handles    objects that exist only inside the sandbox (the capstone's model)
    sandbox    the sandboxed process, its wire, backends, client, pool and proxies
    grading    trusted pytest tests -> verdicts; the submission life cycle
    records    results, exports and the gradebook
    jupyter    %%solution cells, generated notebooks, nbgrader courses
    site       the static problem site
    service    the course server and its Celery queue
    cli        the `grader` command
    settings   every GRADER_* variable, read in one place
    testing    helpers for writing public and hidden tests

Keep this file free of imports: the sandboxed process imports the package.
"""
