"""`python -m runner.cli ARGS` runs the `grader` command."""
from runner.cli.app import main

main()
