"""How each backend starts the worker. The docker backend's container specification is checked
here; running it needs a Docker engine and is skipped where none is reachable."""
import shutil
import subprocess
from pathlib import Path

import pytest

from runner.sandbox import DockerBackend, LaunchSpec, LocalBackend, SandboxUnavailable

LIMITS = {"time_s": 5, "total_s": 60, "cpu_s": 30, "memory_mb": 2048, "processes": 32, "file_size_mb": 8}


def spec(tmp_path, **kw):
    return LaunchSpec(tmp_path, dict(LIMITS), **kw)


def test_local_mounts_nothing_secret(tmp_path, catalogue):
    secret = catalogue.root / "solutions"
    cmd = LocalBackend().command(spec(tmp_path, protected=[secret]))
    assert "--unshare-net" in cmd and "--unshare-pid" in cmd and "--die-with-parent" in cmd
    sources = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--ro-bind", "--bind")]
    assert not any(Path(s).resolve() in (catalogue.root, secret) for s in sources)
    assert "--bind" not in cmd, "nothing is mounted writable"


def test_protected_folder_under_a_mount_is_hidden(tmp_path):
    backend = LocalBackend()
    inside = backend.python_roots()[0] / "secret-folder"
    cmd = backend.command(spec(tmp_path, protected=[inside]))
    assert cmd[cmd.index(str(inside)) - 1] == "--tmpfs"


def test_missing_bubblewrap_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        LocalBackend().command(spec(tmp_path))


def test_docker_container_spec(tmp_path):
    args = DockerBackend().run_args(spec(tmp_path, assets={"model": tmp_path}))
    joined = " ".join(args)
    for flag in ("--network none", "--read-only", "--memory 2048m", "--pids-limit 32", "--cap-drop ALL",
                 "--user 65534:65534", "--security-opt no-new-privileges"):
        assert flag in joined
    assert f"{tmp_path}:/sandbox/submission:ro" in joined
    assert args[-4:-1] == ["python", "-m", "runner.worker"]


def _engine() -> bool:
    return bool(shutil.which("docker")) and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _engine(), reason="no Docker engine is reachable on this machine")
def test_docker_grades_the_reference(catalogue):
    from runner.grading import grade

    pdir = catalogue.get("413")
    result = grade(pdir, pdir.solution_file, "docker")
    assert result.score == result.max_score


def test_docker_without_engine_is_a_clear_error(tmp_path):
    if _engine():
        pytest.skip("an engine is reachable here")
    with pytest.raises(SandboxUnavailable, match="Docker"):
        DockerBackend().command(spec(tmp_path))
