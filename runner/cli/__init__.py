"""The `grader` command line (typer): `app` holds the commands, `output` what they print."""
from runner.cli.app import app, main  # noqa: F401
