"""Graded coding exercises for machine-learning papers.

The pipeline, one module a stage:
  schema / catalogue   problem folders -> validated metadata
  submission           a solver's .py or .ipynb -> module source, or an `invalid` verdict
  wire / worker        the sandboxed side: JSON + raw tensor bytes, never pickle
  sandbox / rpc        starting the worker (bubblewrap, docker, or unsafe in-process) and calling it
  pytest_plugin        the `submission`, `reference`, `problem` fixtures of trusted tests
  grading / results    run the tests, map outcomes to verdicts, score
  gradebook            every submission and result, SQLAlchemy
  cli                  the `grader` command

Keep this file free of heavy imports: the sandboxed worker imports the package.
"""
