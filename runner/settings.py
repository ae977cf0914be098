"""Every `GRADER_*` environment variable, read in one place, with its type, default and meaning.

`current()` returns the settings for the environment as it is now. The object is cached per
environment, so a process reads its variables once, and a test that changes one (monkeypatch)
gets settings that agree with it. `grader config` prints the effective values.
"""
from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "GRADER_"
APP_NAME = "diffusion-grader"


class Settings(BaseSettings):
    """The platform's configuration; each field is the variable GRADER_<FIELD NAME>."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, frozen=True,
                                      extra="ignore")

    root: Optional[Path] = Field(None, description="folder holding problems/, solutions/ and graders/ "
                                                   "(default: the checkout the package runs from)")
    data_dir: Optional[Path] = Field(None, description="where the default SQLite gradebook lives "
                                                       "(default: the user data folder)")
    db_url: Optional[str] = Field(None, description="SQLAlchemy URL of the gradebook "
                                                    "(default: sqlite in the data folder)")
    backend: Literal["local", "docker"] = Field("local", description="sandbox a course worker grades with")
    zygote: bool = Field(True, description="start each local sandbox by forking a process that has imported the "
                                           "frameworks once (0: every sandbox starts its own interpreter)")
    limits: str = Field("", description="overrides of every problem's [limits] on a course worker and in grader submit, "
                                        "e.g. time_s=2,total_s=12")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="the Celery broker (Redis) of the course queue")
    visibility_timeout: int = Field(3600, gt=0, description="seconds before an unacknowledged job is "
                                                            "handed to another worker")
    docker_image: str = Field("diffusion-grader-worker:latest", description="image of the docker backend")
    diffusiongemma_path: Optional[Path] = Field(None, description="local folder of DiffusionGemma weights "
                                                                  "for the model handle (default: the bundled tiny checkpoint)")
    server: Optional[str] = Field(None, description="course server `grader submit` sends to (instead of grading here)")
    token: Optional[SecretStr] = Field(None, description="the solver's API token for the course server")

    @property
    def project_root(self) -> Path:
        """$GRADER_ROOT, or the checkout this package runs from (the folder above `runner/`)."""
        return (self.root or Path(__file__).resolve().parent.parent).resolve()

    @property
    def gradebook_dir(self) -> Path:
        """The data folder, defaulting to the per-user one."""
        if self.data_dir is not None:
            return self.data_dir
        import platformdirs

        return Path(platformdirs.user_data_dir(APP_NAME))

    @property
    def gradebook_url(self) -> str:
        """The gradebook's database URL, defaulting to SQLite in the data folder."""
        return self.db_url or f"sqlite:///{self.gradebook_dir / 'gradebook.sqlite'}"

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(variable, effective value, where it came from, meaning) of every setting; secrets hidden."""
        out = []
        for name, field in type(self).model_fields.items():
            var = PREFIX + name.upper()
            value = getattr(self, name)
            shown = "***" if isinstance(value, SecretStr) else ("" if value is None else str(value))
            out.append((var, shown, "environment" if var in os.environ else "default", field.description or ""))
        return out


def _grader_environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))


@lru_cache(maxsize=16)
def _settings_for(env: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()


def current() -> Settings:
    """The settings of this process's environment (cached while the GRADER_* variables are unchanged)."""
    return _settings_for(_grader_environment())


@contextlib.contextmanager
def overridden(**values):
    """Settings changed while the block runs, through their variables (child processes see them too)."""
    saved = {}
    for name, value in values.items():
        var = PREFIX + name.upper()
        saved[var] = os.environ.get(var)
        os.environ[var] = str(int(value) if isinstance(value, bool) else value)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
