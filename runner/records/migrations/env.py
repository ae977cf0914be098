"""Alembic's environment: migrate the database whose connection runner.records.schema hands over."""
from alembic import context

from runner.records.gradebook import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
