"""What grading produces and keeps.

    results    the result record, and its exports (Gradescope, Exercism)
    gradebook  every submission and result, in SQLAlchemy (SQLite or PostgreSQL)
"""
