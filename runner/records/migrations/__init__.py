"""Alembic migrations of the gradebook: `grader db upgrade` runs them (runner.records.schema)."""
