"""One settings object reads every GRADER_* variable, with types and defaults; nothing else reads them."""
import re

import pytest
from pydantic import ValidationError

from runner.settings import Settings, current
from tests.support.helpers import ROOT, grader_cli


def test_defaults(monkeypatch):
    for var in [v for v, *_ in Settings().rows()]:
        monkeypatch.delenv(var, raising=False)
    s = current()
    assert s.backend == "local" and s.visibility_timeout == 3600 and s.limits == ""
    assert s.broker_url == "redis://127.0.0.1:6379/0"
    assert s.project_root == ROOT
    assert s.gradebook_url.startswith("sqlite:///") and s.gradebook_url.endswith("gradebook.sqlite")


def test_current_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "a"))
    assert current().gradebook_url == f"sqlite:///{tmp_path / 'a' / 'gradebook.sqlite'}"
    monkeypatch.setenv("GRADER_DB_URL", "sqlite:///elsewhere.sqlite")
    assert current().gradebook_url == "sqlite:///elsewhere.sqlite"
    monkeypatch.setenv("GRADER_VISIBILITY_TIMEOUT", "5")
    assert current().visibility_timeout == 5
    monkeypatch.setenv("GRADER_DB_URL", "")  # empty means unset
    assert current().db_url is None


def test_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("GRADER_VISIBILITY_TIMEOUT", "soon")
    with pytest.raises(ValidationError, match="visibility_timeout"):
        current()
    monkeypatch.delenv("GRADER_VISIBILITY_TIMEOUT")
    monkeypatch.setenv("GRADER_BACKEND", "chroot")
    with pytest.raises(ValidationError, match="backend"):
        current()


def test_no_other_module_reads_grader_variables():
    readers = []
    for path in (ROOT / "runner").rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"(environ(\.get)?[\[(]|getenv\()\s*['\"]GRADER_", text) or "envvar=" in text:
            readers.append(str(path.relative_to(ROOT)))
    assert readers == [], f"read GRADER_* outside runner/settings.py: {readers}"


def script_variables():
    """GRADER_* variables the operator scripts read (the worker image's build): not runtime settings."""
    return {v for path in (ROOT / "scripts").glob("*.sh")
            for v in re.findall(r"\$\{(GRADER_[A-Z_]+[A-Z])", path.read_text(encoding="utf-8"))}


def test_every_variable_the_docs_name_is_a_setting():
    known = {v for v, *_ in Settings().rows()} | script_variables()
    named = set(re.findall(r"GRADER_[A-Z_]+[A-Z]", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert named and named <= known, f"the README names unknown settings: {sorted(named - known)}"


def test_grader_config_prints_every_setting_and_hides_the_token(tmp_path):
    out = grader_cli("config", "--json", env={"GRADER_TOKEN": "s3cret-token", "GRADER_VISIBILITY_TIMEOUT": "7"})
    assert out.returncode == 0, out.stderr
    assert "s3cret-token" not in out.stdout
    rows = {r["variable"]: r for r in __import__("json").loads(out.stdout)}
    assert set(rows) == {v for v, *_ in Settings().rows()}
    assert rows["GRADER_TOKEN"]["value"] == "***" and rows["GRADER_TOKEN"]["source"] == "environment"
    assert rows["GRADER_VISIBILITY_TIMEOUT"]["value"] == "7"
    assert rows["GRADER_BROKER_URL"]["source"] == "default" and rows["GRADER_BROKER_URL"]["help"]
    table = grader_cli("config")
    assert table.returncode == 0 and "GRADER_DIFFUSIONGEMMA_PATH" in table.stdout


def test_grader_refuses_bad_settings_with_the_variable_named():
    out = grader_cli("config", env={"GRADER_BACKEND": "chroot"})
    assert out.returncode == 2
    assert "GRADER_BACKEND" in out.stderr and "Traceback" not in out.stderr
