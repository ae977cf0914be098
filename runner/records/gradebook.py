"""The gradebook: every submission is stored before grading and its result after (SQLAlchemy)."""
from __future__ import annotations

import datetime as dt
import functools
import os
import logging
from pathlib import Path

from sqlalchemy import DateTime, Float, Integer, LargeBinary, String, Text, create_engine, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from runner.records.results import Result
from runner.settings import current as current_settings

log = logging.getLogger(__name__)
# A submission ends graded, invalid (it could not be graded: its result says why) or failed (the
# grader could not grade it); received, queued and grading come before.
FINAL = ("graded", "invalid", "failed")


def default_url() -> str:
    """$GRADER_DB_URL, or SQLite in the data folder."""
    return current_settings().gradebook_url


class Base(DeclarativeBase):
    """The gradebook's tables."""


class SubmissionRow(Base):
    """One submission: what was handed in, its status, and its result once graded."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem: Mapped[str] = mapped_column(String(200), index=True)
    user: Mapped[str] = mapped_column(String(200), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    backend: Mapped[str] = mapped_column(String(50))
    # received (or queued) -> grading -> graded or invalid, or failed when the grader itself broke
    status: Mapped[str] = mapped_column(String(20), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # > 1 when a job was redone
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    def result(self) -> Result | None:
        """The stored result, or None while it is not graded."""
        return Result.model_validate_json(self.result_json) if self.result_json else None


def _login() -> str:
    """The local user's name, for submissions graded on this machine."""
    return os.environ.get("USER") or "solver"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@functools.lru_cache(maxsize=8)
def _engine(url: str):
    """One engine (and connection pool) per database per process, its schema checked (a SQLite file:
    made or upgraded) on first use: a course worker opens the gradebook for every job."""
    from runner.records import schema

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    schema.prepare(engine)
    return engine


class Gradebook:
    """Submissions and their results in one SQLAlchemy database (SQLite or PostgreSQL)."""

    def __init__(self, url: str | None = None):
        self.engine = _engine(url or default_url())

    def add(self, problem: str, filename: str, content: bytes, sha256: str, backend: str,
            user: str | None = None, size: int | None = None) -> int:
        """Store a submission as `received`; its id."""
        with Session(self.engine) as s:
            row = SubmissionRow(problem=problem, user=user or _login(), filename=filename,
                                content=content, size=len(content) if size is None else size, sha256=sha256,
                                backend=backend, status="received", attempts=0, created_at=_now())
            s.add(row)
            s.commit()
            log.debug("stored submission %d of %s (%s, %d bytes)", row.id, problem, filename, row.size)
            return row.id

    def _update(self, sub_id: int, **fields) -> None:
        with Session(self.engine) as s:
            row = s.get(SubmissionRow, sub_id)
            for k, v in fields.items():
                setattr(row, k, v)
            s.commit()

    def mark_queued(self, sub_id: int) -> None:
        """The submission waits in the course queue."""
        self._update(sub_id, status="queued")

    def mark_grading(self, sub_id: int) -> None:
        """Grading has started (once more, when a job is redone); a final status is never undone."""
        with Session(self.engine) as s:
            s.execute(update(SubmissionRow)
                      .where(SubmissionRow.id == sub_id, SubmissionRow.status.not_in(FINAL))
                      .values(status="grading", attempts=SubmissionRow.attempts + 1))
            s.commit()

    def store_result(self, sub_id: int, result: Result) -> bool:
        """Write the final result once: a redone job finds it there and changes nothing."""
        with Session(self.engine) as s:
            done = s.execute(
                update(SubmissionRow)
                .where(SubmissionRow.id == sub_id, SubmissionRow.status.not_in(("graded", "invalid")))
                .values(status=result.status, score=result.score, max_score=result.max_score,
                        result_json=result.model_dump_json(), finished_at=_now()))
            s.commit()
            log.debug("result of submission %d: %g / %g (%s)", sub_id, result.score, result.max_score,
                      "stored" if done.rowcount == 1 else "already there")
            return done.rowcount == 1

    def mark_failed(self, sub_id: int, error: str) -> None:
        """The grader could not grade it; `error` says why (the submission stays). A stored result wins."""
        with Session(self.engine) as s:
            s.execute(update(SubmissionRow)
                      .where(SubmissionRow.id == sub_id, SubmissionRow.status.not_in(("graded", "invalid")))
                      .values(status="failed", error=error[-20000:], finished_at=_now()))
            s.commit()

    def get(self, sub_id: int) -> SubmissionRow | None:
        """One submission, or None."""
        with Session(self.engine) as s:
            return s.get(SubmissionRow, sub_id)

    def history(self, problem: str | None = None, limit: int = 200) -> list[SubmissionRow]:
        """Submissions, newest first, optionally of one problem."""
        with Session(self.engine) as s:
            q = select(SubmissionRow).order_by(SubmissionRow.id.desc()).limit(limit)
            if problem:
                q = q.where(SubmissionRow.problem == problem)
            return list(s.scalars(q))


class TokenRow(Base):
    """A solver's API token for the course server; only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(200), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)


def _token_hash(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def create_token(book: Gradebook, user: str) -> str:
    """A new API token for `user`; only its hash is stored."""
    import secrets

    token = secrets.token_urlsafe(32)
    with Session(book.engine) as s:
        s.add(TokenRow(user=user, token_sha256=_token_hash(token), created_at=_now()))
        s.commit()
    return token


def user_for_token(book: Gradebook, token: str) -> str | None:
    """The user a token belongs to, or None."""
    with Session(book.engine) as s:
        row = s.scalars(select(TokenRow).where(TokenRow.token_sha256 == _token_hash(token))).first()
        return row.user if row else None
