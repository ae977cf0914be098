"""Sandbox backends: how the worker process is started.

`local` (default): bubblewrap. New user/pid/net/ipc/uts namespaces, no network, a private /tmp,
read-only views of the interpreter and of the `runner` package only, the submission folder
read-only; solutions/, graders/ and the gradebook are never mounted (and are covered by an empty
tmpfs if they happen to lie under a mounted folder). The worker adds rlimits and drops root.

`docker`: the same worker in a container (no network, read-only root, memory, pids and CPU limits,
a tmpfs for /tmp, no capabilities, user nobody), from the image built by runner/docker/Dockerfile.
"""
from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_LIB = "/sandbox/lib"
SANDBOX_SUBMISSION = "/sandbox/submission"
SANDBOX_ASSETS = "/sandbox/assets"
RUNNER_DIR = Path(__file__).resolve().parent


class SandboxUnavailable(RuntimeError):
    """The chosen sandbox cannot run here; the message says how to get it."""


@dataclass
class LaunchSpec:
    submission_dir: Path
    limits: dict
    assets: dict[str, Path] = field(default_factory=dict)  # name -> host path, mounted read-only
    protected: list[Path] = field(default_factory=list)  # must never be visible inside
    cuda: bool = False


def worker_args(limits: dict, python: str) -> list[str]:
    import json

    return [python, "-m", "runner.worker", json.dumps(limits)]


class LocalBackend:
    name = "local"

    def __init__(self):
        self.bwrap = shutil.which("bwrap")

    def check(self) -> None:
        if not self.bwrap:
            raise SandboxUnavailable(
                "the local sandbox needs bubblewrap, which is not installed: install it with "
                "`apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora), "
                "or grade with --backend docker. Submissions are never graded unsandboxed by default."
            )

    def python_roots(self) -> list[Path]:
        """Folders the interpreter and its installed packages live in."""
        roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}
        for key in ("purelib", "platlib", "stdlib", "platstdlib"):
            roots.add(Path(sysconfig.get_paths()[key]))
        roots.add(Path(os.path.realpath(sys.executable)).parent)
        # keep only outermost folders, and never the whole file system
        ordered = sorted({r.resolve() for r in roots if r.exists()}, key=lambda p: len(p.parts))
        out: list[Path] = []
        for r in ordered:
            if r == Path("/") or any(r.is_relative_to(o) for o in out):
                continue
            out.append(r)
        return out

    def command(self, spec: LaunchSpec) -> list[str]:
        self.check()
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
                "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        if os.getuid() == 0:
            # No user namespace for root: the worker keeps just enough privilege to drop to
            # nobody after setting its rlimits (root would be exempt from RLIMIT_NPROC).
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--cap-drop", "ALL"]
        system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"]
        mounted: list[Path] = []
        for path in system:
            if Path(path).exists():
                args += ["--ro-bind", path, path]
                mounted.append(Path(path))
        made: set[Path] = set()
        for root in self.python_roots():
            if not any(root.is_relative_to(m) for m in mounted):
                # folders bwrap creates on the way are private; the worker runs as nobody
                for parent in reversed(root.parents[:-1]):
                    if parent not in made:
                        args += ["--perms", "0755", "--dir", str(parent)]
                        made.add(parent)
                args += ["--ro-bind", str(root), str(root)]
                mounted.append(root)
        for folder in ("/sandbox", SANDBOX_LIB, SANDBOX_ASSETS):
            args += ["--perms", "0755", "--dir", folder]
        args += ["--ro-bind", str(RUNNER_DIR), f"{SANDBOX_LIB}/runner",
                 "--ro-bind", str(spec.submission_dir), SANDBOX_SUBMISSION]
        for name, host in spec.assets.items():
            args += ["--ro-bind", str(host), f"{SANDBOX_ASSETS}/{name}"]
        for secret in spec.protected:
            secret = secret.resolve()
            if any(secret.is_relative_to(m) for m in mounted):
                args += ["--tmpfs", str(secret)]
        if spec.cuda:
            for dev in Path("/dev").glob("nvidia*"):
                args += ["--dev-bind", str(dev), str(dev)]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp",
                 "--chdir", "/tmp", "--clearenv", "--setenv", "PYTHONPATH", SANDBOX_LIB,
                 "--setenv", "HOME", "/tmp", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                 "--setenv", "OMP_NUM_THREADS", "1", "--setenv", "HF_HUB_OFFLINE", "1",
                 "--setenv", "PATH", "/usr/bin:/bin"]
        return args + ["--"] + worker_args(spec.limits, sys.executable)


DOCKER_IMAGE = "diffusion-grader-worker:latest"
DOCKER_BUILD = "docker build -f runner/docker/Dockerfile -t {image} ."
DOCKER_LABEL = "diffusion-grader.worker"
DOCKER_CPUS = 1
DOCKER_TMPFS = "rw,nosuid,nodev,size=64m,mode=1777"


def container_spec(spec: LaunchSpec, image: str, name: str) -> dict:
    """Everything about the worker's container, as keyword arguments of the docker SDK's
    `containers.run` (and of `containers.create`)."""
    limits = spec.limits
    memory = f"{int(limits['memory_mb'])}m"
    volumes = [f"{spec.submission_dir}:{SANDBOX_SUBMISSION}:ro"]
    volumes += [f"{host}:{SANDBOX_ASSETS}/{asset}:ro" for asset, host in spec.assets.items()]
    kwargs = {
        "image": image,
        "command": worker_args(limits, "python"),
        "name": name,
        "labels": {DOCKER_LABEL: "1"},
        "stdin_open": True,  # the wire protocol runs over the worker's stdin and stdout
        "auto_remove": True,
        "init": True,  # the worker is not PID 1, so rlimit signals (SIGXCPU) act as on the host
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": DOCKER_TMPFS},
        "mem_limit": memory,
        "memswap_limit": memory,  # no swap beyond the memory limit
        "pids_limit": int(limits["processes"]),
        "nano_cpus": int(DOCKER_CPUS * 1_000_000_000),
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "user": "65534:65534",
        "working_dir": "/tmp",
        "environment": {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
                        "HF_HUB_OFFLINE": "1"},
        "volumes": volumes,
    }
    if spec.cuda:
        kwargs["device_requests"] = [{"count": -1, "capabilities": [["gpu"]]}]
    return kwargs


def _flag(name: str):
    return lambda value: [name, str(value)]


def _switch(name: str):
    return lambda value: [name] if value else []


def _each(name: str, form=str):
    return lambda values: [a for v in values for a in (name, form(v))]


def _gpus(requests: list[dict]) -> list[str]:
    out = []
    for req in requests:
        if req.get("capabilities") != [["gpu"]] or set(req) - {"count", "capabilities"}:
            raise ValueError(f"no docker run flag for the device request {req!r}")
        count = req.get("count", -1)
        out += ["--gpus", "all" if count == -1 else str(count)]
    return out


_CLI = {
    "name": _flag("--name"),
    "labels": lambda d: [a for k, v in d.items() for a in ("--label", f"{k}={v}")],
    "stdin_open": _switch("--interactive"),
    "auto_remove": _switch("--rm"),
    "init": _switch("--init"),
    "network_mode": _flag("--network"),
    "read_only": _switch("--read-only"),
    "tmpfs": lambda d: [a for k, v in d.items() for a in ("--tmpfs", f"{k}:{v}" if v else k)],
    "mem_limit": _flag("--memory"),
    "memswap_limit": _flag("--memory-swap"),
    "pids_limit": _flag("--pids-limit"),
    "nano_cpus": lambda n: ["--cpus", f"{n / 1_000_000_000:g}"],
    "security_opt": _each("--security-opt"),
    "cap_drop": _each("--cap-drop"),
    "user": _flag("--user"),
    "working_dir": _flag("--workdir"),
    "environment": lambda d: [a for k, v in d.items() for a in ("--env", f"{k}={v}")],
    "volumes": _each("--volume"),
    "device_requests": _gpus,
}


def docker_run_args(kwargs: dict, docker: str = "docker") -> list[str]:
    """The same container as `docker run` arguments. Every key must have a flag, so the two forms
    cannot drift apart silently."""
    kwargs = dict(kwargs)
    image, command = kwargs.pop("image"), kwargs.pop("command")
    unknown = set(kwargs) - set(_CLI)
    if unknown:
        raise ValueError(f"no docker run flag for {', '.join(sorted(unknown))}")
    args = [docker, "run"]
    for key, value in kwargs.items():
        args += _CLI[key](value)
    return args + [image] + list(command)


class DockerBackend:
    """The worker in a container, from the image built by runner/docker/Dockerfile.

    The docker SDK checks that an engine is reachable and that the image exists, and removes the
    container when the grader gives up on a worker. The container itself is started as a
    `docker run --interactive` child process made from the same specification (docker_run_args).
    Why not `containers.run(..., stdin_open=True, detach=True)` and `attach_socket`: without a TTY
    the engine multiplexes stdout and stderr into one framed stream on that socket, and output
    written before the attach (the worker's start-up message) is lost or has to be replayed from
    the logs, so the worker's plain stdout byte stream would have to be rebuilt by a demultiplexing
    thread, and the process life cycle the RPC client relies on (a pid to kill, an exit status
    that says which signal ended the worker) emulated by hand. The docker client already does
    exactly that: it attaches before it starts the container, demultiplexes onto its own stdin,
    stdout and stderr pipes, and exits with the container's status (128 + signal when killed).
    """

    name = "docker"

    def __init__(self, image: str | None = None):
        self.image = image or os.environ.get("GRADER_DOCKER_IMAGE", DOCKER_IMAGE)
        self._checked = False

    def client(self):
        try:
            import docker
        except ImportError:
            raise SandboxUnavailable(
                "the docker backend needs the docker SDK for Python: pip install 'diffusion-grader[server]'"
            ) from None
        try:
            client = docker.from_env(timeout=30)
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(
                f"no Docker engine is reachable ({str(exc)[:200]}): start the engine (or set DOCKER_HOST), "
                "or grade with --backend local") from None
        return client

    def check(self) -> None:
        if self._checked:
            return
        if not shutil.which("docker"):
            raise SandboxUnavailable(
                "the docker backend starts containers with the `docker` command-line client, which is not "
                "installed: install Docker Engine (https://docs.docker.com/engine/install/)")
        client = self.client()
        import docker

        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(
                f"the Docker image {self.image} does not exist: build it from the repository root with "
                f"`{DOCKER_BUILD.format(image=self.image)}` (runner/docker/Dockerfile), or set "
                "GRADER_DOCKER_IMAGE") from None
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(f"the Docker engine did not answer about {self.image}: {exc}") from None
        finally:
            client.close()
        self._checked = True

    def spec(self, spec: LaunchSpec) -> dict:
        import uuid

        return container_spec(spec, self.image, f"grader-worker-{uuid.uuid4().hex[:16]}")

    def command(self, spec: LaunchSpec) -> list[str]:
        self.check()
        return docker_run_args(self.spec(spec), shutil.which("docker") or "docker")

    def stop(self, proc) -> None:
        """Remove the container of a worker whose `docker run` client was killed: killing the
        client does not stop the container, and a solver's endless loop would keep it busy."""
        args = list(getattr(proc, "args", None) or [])
        if "--name" not in args:
            return
        name = args[args.index("--name") + 1]
        try:
            import docker

            client = docker.from_env(timeout=30)
            try:
                client.containers.get(name).remove(force=True)
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - gone already (auto-removed), or the engine went away
            pass


BACKENDS = {"local": LocalBackend, "docker": DockerBackend}


def get_backend(name: str):
    try:
        return BACKENDS[name]()
    except KeyError:
        raise SandboxUnavailable(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None
