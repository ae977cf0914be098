"""How each backend starts the worker. The docker backend's container specification is checked
here without an engine; the tests that run containers use the docker_engine fixture, which starts
an engine and builds the image, or skips them with the reason where no engine can run."""
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.support.helpers import ROOT
from runner.sandbox.backends import LaunchSpec, LocalBackend, SandboxUnavailable
from runner.sandbox import reaper
from runner.sandbox.container import DOCKER_LABEL, DockerBackend, container_spec, docker_run_args

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


def test_docker_image_installs_the_pinned_platform_offline():
    recipe = (ROOT / "runner" / "sandbox" / "docker" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in recipe and "FROM ${BASE_IMAGE}" in recipe
    # every pip command of the build reads the wheelhouse only
    pips = [ln for ln in recipe.splitlines() if "pip " in ln and not ln.lstrip().startswith("#")]
    assert pips and all("--no-index" in ln for ln in pips), pips
    assert "-r /wheels/requirements.txt" in recipe
    assert "COPY solutions" not in recipe and "COPY graders" not in recipe and "COPY . " not in recipe
    # the wheels stay in the build stages: the image takes the venv and the platform's wheel only
    final = recipe[recipe.rindex("\nFROM "):]
    assert "COPY wheelhouse" not in final and "COPY --from=deps /opt/venv /opt/venv" in final


def test_build_script_takes_the_pinned_torch_from_pyproject():
    script = (ROOT / "scripts" / "build_worker_image.sh").read_text()
    assert 'meta["project"]["dependencies"]' in script and "pip download" in script
    assert "debootstrap --variant=minbase" in script and "docker import" in script


@pytest.mark.usefixtures("docker_engine")
def test_the_build_scripts_context_holds_only_the_platform_and_wheels(tmp_path):
    """What scripts/build_worker_image.sh sends to the engine: the platform's files and the wheelhouse
    (with the torch version pyproject.toml pins), no solution, grader, problem or model file."""
    context = tmp_path / "context"
    done = subprocess.run(["bash", "scripts/build_worker_image.sh", "--context-only", str(context)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    sent = [p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()]
    assert "pyproject.toml" in sent and "runner/sandbox/child.py" in sent and "Dockerfile" in sent
    tops = {p.split("/")[0] for p in sent}
    assert tops == {"Dockerfile", "pyproject.toml", "README.md", "runner", "wheelhouse"}, tops
    assert not [p for p in sent if "__pycache__" in p or p.endswith(".pyc")]
    wheels = [p for p in sent if p.startswith("wheelhouse/")]
    assert all(p.endswith(".whl") for p in wheels if p != "wheelhouse/requirements.txt")
    pinned = [d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
              if d.startswith("torch==")][0]
    assert pinned in (context / "wheelhouse" / "requirements.txt").read_text().splitlines()
    assert any(p.startswith(f"wheelhouse/torch-{pinned.split('==')[1]}") for p in wheels)


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


# The tests below run real containers: the docker_engine fixture (tests/conftest.py) finds or starts
# an engine and builds the worker image, or skips them saying why.

@pytest.mark.usefixtures("docker_engine")
def test_docker_grades_the_reference(catalogue):
    from runner.grading.pipeline import grade

    pdir = catalogue.get("413")
    result = grade(pdir, pdir.solution_file, "docker")
    assert result.score == result.max_score


@pytest.mark.usefixtures("docker_engine")
def test_docker_stops_a_hanging_worker_and_removes_its_container(catalogue, tmp_path):
    from runner.grading.pipeline import grade

    pdir = catalogue.get("413")
    result = grade(pdir, hanging(pdir, tmp_path), "docker", limits={"time_s": 2, "total_s": 8})
    assert result.score == 0 and {t.status for t in result.tests} == {"timeout"}
    assert containers(f"{reaper.OWNER_LABEL}={reaper.owner_of()}") == [], "every worker container is removed"


@pytest.mark.usefixtures("docker_engine")
def test_docker_missing_image_says_how_to_build_it(tmp_path):
    with pytest.raises(SandboxUnavailable, match="scripts/build_worker_image.sh"):
        DockerBackend(image="diffusion-grader-worker:no-such-tag").command(spec(tmp_path))


def test_docker_without_engine_is_a_clear_error(tmp_path, monkeypatch):
    # a socket nobody serves: what a grader meets when the engine is down
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")  # a client, installed or not
    with pytest.raises(SandboxUnavailable, match="no Docker engine is reachable"):
        DockerBackend().command(spec(tmp_path))


HANGING = "HANGING-IN-A-CALL"


def hanging(pdir, tmp_path) -> Path:
    """A submission of `pdir` whose every function says so on its output, then loops forever."""
    path = tmp_path / "hang.py"
    path.write_text("".join(f"def {f.name}({', '.join(f.params)}):\n    print({HANGING!r}, flush=True)\n"
                            "    while True:\n        pass\n" for f in pdir.meta.functions))
    return path


def containers(label: str) -> list:
    """The engine's containers (running or not) carrying `label` (KEY or KEY=VALUE)."""
    client = reaper.docker_client()
    try:
        return client.containers.list(all=True, filters={"label": label})
    finally:
        client.close()


def test_owner_names_this_process_and_survives_pid_reuse():
    me = reaper.owner_of()
    host, pid, ticks = me.rsplit(":", 2)
    assert int(pid) == os.getpid() and ticks.isdigit() and reaper.owner_alive(me)
    assert not reaper.owner_alive(f"{host}:{pid}:{int(ticks) + 1}"), "same pid, another start time: a new process"
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert not reaper.owner_alive(f"{host}:{done.stdout.strip()}:{ticks}")
    assert reaper.owner_alive(f"another-host:{pid}:1"), "another host's graders are left to that host"
    zombie = subprocess.Popen(["sleep", "60"])
    owner = reaper.owner_of(zombie.pid)
    assert reaper.owner_alive(owner)
    os.kill(zombie.pid, 9)  # killed, not yet reaped: a zombie runs no more
    assert wait_for(lambda: not reaper.owner_alive(owner), 5)
    zombie.wait()
    assert docker_spec(Path("/x"))["labels"][reaper.OWNER_LABEL] == me


# A grader in a process of its own, grading a submission that never returns, with the docker backend.
# With argv[2] == "whole", its sandboxed process runs as for a CUDA problem or on a kernel without
# pidfds: no fork server, so during a call nothing in the container reads the grader's pipe, and
# only the watchdog stops the container when the grader dies (with the fork server, the container
# ends by itself on the pipe's EOF).
HANGING_GRADER = """
import json, sys
from pathlib import Path
import runner.sandbox.container as container
if sys.argv[2] == "whole":
    served = container.child_args
    def whole(limits, python, cuda=False):
        args = served(limits, python, cuda)
        return args[:-1] + [json.dumps({**json.loads(args[-1]), "fork": False})]
    container.child_args = whole
from runner.grading.pipeline import grade
from runner.problems.catalogue import Catalogue
pdir = Catalogue().get("413")
grade(pdir, Path(sys.argv[1]), "docker", limits={"time_s": 60, "total_s": 300})
"""


def wait_for(predicate, timeout: float, step: float = 0.25):
    """predicate()'s first truthy value within `timeout` seconds, else the last falsy one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("serving", ["whole", "forkserver"])
def test_killed_grader_leaves_no_container(catalogue, tmp_path, serving):
    grader = subprocess.Popen([sys.executable, "-c", HANGING_GRADER, str(hanging(catalogue.get("413"), tmp_path)),
                               serving], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        owner = wait_for(lambda: reaper.owner_of(grader.pid) if grader.poll() is None else "gone", 10)
        label = f"{reaper.OWNER_LABEL}={owner}"
        # Mid-grade: a call is running the solver's endless loop (before that, the sandboxed process
        # reads its stdin and would end by itself on the EOF that the grader's death causes).
        hung = wait_for(lambda: [c for c in containers(label) if HANGING.encode() in c.logs()], 120)
        assert hung, f"no call started: {grader.stderr.read1().decode()[-2000:] if grader.poll() else ''}"
    except BaseException:
        grader.kill()
        raise
    grader.kill()  # SIGKILL mid-grade: no handler of the grader runs
    grader.wait()
    t0 = time.monotonic()
    left = wait_for(lambda: not containers(label), 10)
    assert left, f"containers of the killed grader still there after 10 s: {[c.name for c in containers(label)]}"
    print(f"the killed grader's containers were gone {time.monotonic() - t0:.1f} s after kill -9")


@pytest.mark.usefixtures("docker_engine")
def test_a_new_grader_removes_the_containers_of_dead_ones(tmp_path):
    dead = subprocess.Popen(["sleep", "60"])
    dead_owner = reaper.owner_of(dead.pid)
    dead.kill()
    dead.wait()
    # What a grader killed with its watchdog leaves: a running container owned by a dead process.
    client = reaper.docker_client()
    try:
        names = {}
        for who, owner in (("dead", dead_owner), ("alive", reaper.owner_of())):
            names[who] = client.containers.run(
                DockerBackend().image, ["python", "-c", "import time; time.sleep(300)"], detach=True,
                labels={DOCKER_LABEL: "1", reaper.OWNER_LABEL: owner}, network_mode="none").name
        try:
            # a fresh grader process's first check() of the backend sweeps
            done = subprocess.run([sys.executable, "-c", "from runner.sandbox.container import DockerBackend; "
                                   "DockerBackend().check()"], cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert names["dead"] in done.stderr, "the sweep says what it removed"
            left = {c.name for c in client.containers.list(all=True, filters={"label": DOCKER_LABEL})}
            assert names["dead"] not in left, "the dead grader's container is removed"
            assert names["alive"] in left, "a live grader's container is kept"
        finally:
            for name in names.values():
                try:
                    client.containers.get(name).remove(force=True)
                except Exception:  # noqa: BLE001 - already removed
                    pass
    finally:
        client.close()


@pytest.mark.usefixtures("docker_engine")
def test_a_grader_that_exits_is_not_held_by_its_watchdog(tmp_path):
    """A caller reading a grader's output to its end (CI, `subprocess.run`) is not kept waiting by the
    watchdog, which shares the grader's stderr; and the watchdog exits with its grader."""
    code = ("import time; from runner.sandbox.container import DockerBackend; from runner.sandbox import reaper; "
            "from runner.sandbox.backends import LaunchSpec; "
            f"DockerBackend().command(LaunchSpec({str(tmp_path)!r}, {LIMITS!r})); "
            "print(reaper._watchdog[2].pid, time.time(), flush=True)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    returned = time.time()
    assert done.returncode == 0, done.stderr
    watchdog, printed = done.stdout.split()
    assert returned - float(printed) < reaper.LATE_SWEEP_S / 2, "the caller waited for the watchdog"
    assert wait_for(lambda: not os.path.exists(f"/proc/{watchdog}") or
                    open(f"/proc/{watchdog}/stat").read().split(") ")[1][0] == "Z", 10), "the watchdog is still running"
