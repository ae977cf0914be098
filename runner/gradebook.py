"""The gradebook: every submission is stored before grading and its result after (SQLAlchemy)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from sqlalchemy import DateTime, Float, Integer, LargeBinary, String, Text, create_engine, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .results import Result

APP_NAME = "diffusion-grader"


def default_data_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("GRADER_DATA_DIR") or platformdirs.user_data_dir(APP_NAME))


def default_url() -> str:
    return os.environ.get("GRADER_DB_URL") or f"sqlite:///{default_data_dir() / 'gradebook.sqlite'}"


class Base(DeclarativeBase):
    pass


class SubmissionRow(Base):
    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    problem: Mapped[str] = mapped_column(String(200), index=True)
    user: Mapped[str] = mapped_column(String(200), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    backend: Mapped[str] = mapped_column(String(50))
    # received (or queued) -> grading -> graded, or failed when the grader itself broke
    status: Mapped[str] = mapped_column(String(20), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # > 1 when a job was redone
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    def result(self) -> Result | None:
        return Result.model_validate_json(self.result_json) if self.result_json else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Gradebook:
    def __init__(self, url: str | None = None):
        url = url or default_url()
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(url)
        Base.metadata.create_all(self.engine)

    def add(self, problem: str, filename: str, content: bytes, sha256: str, backend: str,
            user: str | None = None, size: int | None = None) -> int:
        with Session(self.engine) as s:
            row = SubmissionRow(problem=problem, user=user or os.environ.get("USER", "solver"), filename=filename,
                                content=content, size=len(content) if size is None else size, sha256=sha256,
                                backend=backend, status="received", attempts=0, created_at=_now())
            s.add(row)
            s.commit()
            return row.id

    def _update(self, sub_id: int, **fields) -> None:
        with Session(self.engine) as s:
            row = s.get(SubmissionRow, sub_id)
            for k, v in fields.items():
                setattr(row, k, v)
            s.commit()

    def mark_queued(self, sub_id: int) -> None:
        self._update(sub_id, status="queued")

    def mark_grading(self, sub_id: int) -> None:
        with Session(self.engine) as s:
            s.execute(update(SubmissionRow).where(SubmissionRow.id == sub_id)
                      .values(status="grading", attempts=SubmissionRow.attempts + 1))
            s.commit()

    def store_result(self, sub_id: int, result: Result) -> bool:
        """Write the final result once: a redone job finds it there and changes nothing."""
        with Session(self.engine) as s:
            done = s.execute(
                update(SubmissionRow)
                .where(SubmissionRow.id == sub_id, SubmissionRow.status != "graded")
                .values(status="graded", score=result.score, max_score=result.max_score,
                        result_json=result.model_dump_json(), finished_at=_now()))
            s.commit()
            return done.rowcount == 1

    def mark_failed(self, sub_id: int, error: str) -> None:
        self._update(sub_id, status="failed", error=error[-20000:], finished_at=_now())

    def get(self, sub_id: int) -> SubmissionRow | None:
        with Session(self.engine) as s:
            return s.get(SubmissionRow, sub_id)

    def history(self, problem: str | None = None, limit: int = 200) -> list[SubmissionRow]:
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
    import secrets

    token = secrets.token_urlsafe(32)
    with Session(book.engine) as s:
        s.add(TokenRow(user=user, token_sha256=_token_hash(token), created_at=_now()))
        s.commit()
    return token


def user_for_token(book: Gradebook, token: str) -> str | None:
    with Session(book.engine) as s:
        row = s.scalars(select(TokenRow).where(TokenRow.token_sha256 == _token_hash(token))).first()
        return row.user if row else None
