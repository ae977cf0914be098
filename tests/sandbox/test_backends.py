"""How each backend starts the worker. The docker backend's container specification is checked
here; running it needs a Docker engine and is skipped where none is reachable."""
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.support.helpers import ROOT
from runner.sandbox.backends import LaunchSpec, LocalBackend, SandboxUnavailable
from runner.sandbox.container import DockerBackend, container_spec, docker_run_args

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


def docker_spec(tmp_path, **kw):
    return container_spec(spec(tmp_path, **kw), "worker-image:test", "grader-worker-test")


def test_docker_container_spec(tmp_path):
    model = tmp_path / "model-folder"
    kw = docker_spec(tmp_path, assets={"model": model})
    assert kw["network_mode"] == "none" and kw["read_only"] is True
    assert kw["mem_limit"] == kw["memswap_limit"] == "2048m" and kw["pids_limit"] == 32
    assert kw["nano_cpus"] == 1_000_000_000
    assert set(kw["tmpfs"]) == {"/tmp"} and "size=" in kw["tmpfs"]["/tmp"]
    assert kw["security_opt"] == ["no-new-privileges"] and kw["cap_drop"] == ["ALL"]
    assert kw["user"] == "65534:65534" and kw["stdin_open"] is True and kw["init"] is True
    # only the submission and the assets are mounted, both read-only
    assert kw["volumes"] == [f"{tmp_path}:/sandbox/submission:ro", f"{model}:/sandbox/assets/model:ro"]
    assert "device_requests" not in kw and "privileged" not in kw
    assert kw["image"] == "worker-image:test"
    assert kw["command"][:3] == ["python", "-m", "runner.sandbox.child"]
    assert json.loads(kw["command"][3])["memory_mb"] == 2048


def test_docker_spec_asks_for_gpus_when_the_problem_wants_cuda(tmp_path):
    kw = docker_spec(tmp_path, cuda=True)
    assert kw["device_requests"] == [{"count": -1, "capabilities": [["gpu"]]}]


def test_docker_sdk_accepts_the_spec(tmp_path):
    """The SDK turns the keyword arguments into the engine's create request without an engine:
    this is the same conversion `containers.run(**spec)` does before it calls the engine."""
    from docker.models.containers import _create_container_args

    create = _create_container_args({**docker_spec(tmp_path, cuda=True), "version": "1.44"})
    host = create["host_config"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["Memory"] == host["MemorySwap"] == 2048 << 20 and host["PidsLimit"] == 32
    assert host["NanoCpus"] == 1_000_000_000 and host["Init"] is True and host["AutoRemove"] is True
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert set(host["Tmpfs"]) == {"/tmp"}
    assert host["Binds"] == [f"{tmp_path}:/sandbox/submission:ro"]
    assert host["DeviceRequests"][0]["Capabilities"] == [["gpu"]] and host["DeviceRequests"][0]["Count"] == -1
    assert create["user"] == "65534:65534" and create["stdin_open"] is True
    assert create["command"][:3] == ["python", "-m", "runner.sandbox.child"]


def pairs(args: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in zip(args, args[1:])}


def test_docker_run_args_are_the_same_container(tmp_path):
    model = tmp_path / "model-folder"
    kw = docker_spec(tmp_path, assets={"model": model}, cuda=True)
    args = docker_run_args(kw, "/usr/bin/docker")
    assert args[:2] == ["/usr/bin/docker", "run"]
    for flag in ("--interactive", "--rm", "--init", "--read-only"):
        assert flag in args
    for pair in [("--network", "none"), ("--memory", "2048m"), ("--memory-swap", "2048m"),
                 ("--pids-limit", "32"), ("--cpus", "1"), ("--cap-drop", "ALL"), ("--user", "65534:65534"),
                 ("--security-opt", "no-new-privileges"), ("--tmpfs", "/tmp:" + kw["tmpfs"]["/tmp"]),
                 ("--volume", f"{tmp_path}:/sandbox/submission:ro"),
                 ("--volume", f"{model}:/sandbox/assets/model:ro"), ("--gpus", "all"),
                 ("--name", "grader-worker-test"), ("--env", "OMP_NUM_THREADS=1"), ("--workdir", "/tmp")]:
        assert pair in pairs(args), pair
    # the image, then the worker's command line, close the argument list
    assert args[-5:] == ["worker-image:test", *kw["command"]]


def test_docker_run_args_refuse_what_they_cannot_say(tmp_path):
    with pytest.raises(ValueError, match="privileged"):
        docker_run_args({**docker_spec(tmp_path), "privileged": True})
    with pytest.raises(ValueError, match="device request"):
        docker_run_args({**docker_spec(tmp_path), "device_requests": [{"driver": "x", "capabilities": [["tpu"]]}]})


def test_docker_backend_names_a_fresh_container_each_time(tmp_path):
    backend = DockerBackend(image="worker-image:test")
    first, second = backend.spec(spec(tmp_path)), backend.spec(spec(tmp_path))
    assert first["name"] != second["name"] and first["name"].startswith("grader-worker-")
    assert first["image"] == "worker-image:test"


def test_docker_image_installs_the_pinned_platform():
    pinned = [d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
              if d.startswith("torch==")]
    recipe = (ROOT / "runner" / "sandbox" / "docker" / "Dockerfile").read_text()
    assert pinned and f'"{pinned[0]}"' in recipe, "the image installs the torch version pyproject.toml pins"
    assert "download.pytorch.org/whl/cpu" in recipe and "pip install ." in recipe
    assert "COPY solutions" not in recipe and "COPY graders" not in recipe and "COPY . " not in recipe


@pytest.mark.parametrize("ignore_file", [".dockerignore", "runner/sandbox/docker/Dockerfile.dockerignore"])
def test_the_image_build_context_holds_only_the_platform(ignore_file, tmp_path):
    """The files a build would send to the engine, computed by the docker SDK from the ignore file that
    the classic builder (root) or BuildKit (next to the Dockerfile) reads: no solution, grader,
    problem or model file, whatever else lies in the checkout."""
    from docker.utils.build import exclude_paths

    patterns = [ln.strip() for ln in (ROOT / ignore_file).read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    sent = exclude_paths(str(ROOT), patterns)
    assert "pyproject.toml" in sent and "runner/sandbox/child.py" in sent
    leaked = sorted(p for p in sent if p.split("/")[0] in ("solutions", "graders", "problems", "models", "tests",
                                                          ".git", ".venv", "venv", "work", "course"))
    assert not leaked, f"{ignore_file} lets {len(leaked)} files into the build context, e.g. {leaked[:3]}"
    assert all(p.split("/")[0] in ("pyproject.toml", "README.md", "runner", ".dockerignore") for p in sent)
    assert not [p for p in sent if "__pycache__" in p]


def test_docker_without_client_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="install Docker Engine"):
        DockerBackend().command(spec(tmp_path))


def _engine() -> str | None:
    """Why the docker integration tests cannot run here, or None when they can."""
    if not shutil.which("docker"):
        return "the docker client is not installed"
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"no Docker engine is reachable ({type(exc).__name__})"
    try:
        client.images.get(DockerBackend().image)
    except docker.errors.ImageNotFound:
        return f"the worker image is not built (docker build -f runner/sandbox/docker/Dockerfile -t {DockerBackend().image} .)"
    finally:
        client.close()
    return None


NO_ENGINE = _engine()
needs_engine = pytest.mark.skipif(NO_ENGINE is not None, reason=f"{NO_ENGINE}" if NO_ENGINE else "")


@needs_engine
def test_docker_grades_the_reference(catalogue):
    from runner.grading.pipeline import grade

    pdir = catalogue.get("413")
    result = grade(pdir, pdir.solution_file, "docker")
    assert result.score == result.max_score


@needs_engine
def test_docker_stops_a_hanging_worker_and_removes_its_container(catalogue, tmp_path):
    import docker

    from runner.grading.pipeline import grade

    pdir = catalogue.get("413")
    hang = tmp_path / "hang.py"
    hang.write_text("".join(f"def {f.name}({', '.join(f.params)}):\n    while True:\n        pass\n"
                            for f in pdir.meta.functions))
    result = grade(pdir, hang, "docker", limits={"time_s": 2, "total_s": 8})
    assert result.score == 0 and {t.status for t in result.tests} == {"timeout"}
    client = docker.from_env()
    try:
        left = client.containers.list(all=True, filters={"label": "diffusion-grader.worker"})
    finally:
        client.close()
    assert left == [], "every worker container is removed"


@needs_engine
def test_docker_missing_image_says_how_to_build_it(tmp_path):
    with pytest.raises(SandboxUnavailable, match="runner/sandbox/docker/Dockerfile"):
        DockerBackend(image="diffusion-grader-worker:no-such-tag").command(spec(tmp_path))


def test_docker_without_engine_is_a_clear_error(tmp_path):
    if NO_ENGINE is None or not NO_ENGINE.startswith("no Docker engine"):
        pytest.skip(f"this checks the message where no engine is reachable; here: {NO_ENGINE or 'one is'}")
    with pytest.raises(SandboxUnavailable, match="no Docker engine is reachable"):
        DockerBackend().command(spec(tmp_path))
