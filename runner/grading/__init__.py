"""Grading one submission: trusted pytest tests against the solver's functions in the sandbox.

    submission  the static checks of what was handed in (.py or .ipynb)
    plugin      the pytest fixtures `submission`, `reference`, `problem`
    verdicts    pytest outcomes -> per-test verdicts and points
    pipeline    `grade`: run the public and hidden tests, score them
    lifecycle   store -> grade -> store the result or mark it failed (CLI, notebook, queue)
    bench       the sandbox's overhead, measured side by side
"""
