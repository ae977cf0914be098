"""The `docker` backend: the sandboxed process in a container (no network, read-only root, memory,
pids and CPU limits, a tmpfs for /tmp, no capabilities, user nobody), from the image built by
runner/sandbox/docker/Dockerfile.
"""
from __future__ import annotations

import logging
import os
import shutil

from runner.settings import current as current_settings

from . import reaper
from .backends import SANDBOX_ASSETS, SANDBOX_SUBMISSION, LaunchSpec, SandboxUnavailable, child_args

log = logging.getLogger(__name__)

DOCKER_BUILD = "GRADER_DOCKER_IMAGE={image} scripts/build_worker_image.sh"
DOCKER_LABEL = "diffusion-grader.worker"
DOCKER_CPUS = 1
DOCKER_TMPFS = "rw,nosuid,nodev,size=64m,mode=1777"


def container_spec(spec: LaunchSpec, image: str, name: str, owner: str = "") -> dict:
    """Everything about the container of a sandboxed process, as keyword arguments of the docker SDK's
    `containers.run` (and of `containers.create`). `owner` labels it with the grader process that
    starts it (runner.sandbox.reaper), which removes it when that process dies."""
    limits = spec.limits
    memory = f"{int(limits['memory_mb'])}m"
    volumes = [f"{spec.submission_dir}:{SANDBOX_SUBMISSION}:ro"]
    volumes += [f"{host}:{SANDBOX_ASSETS}/{asset}:ro" for asset, host in spec.assets.items()]
    kwargs = {
        "image": image,
        "command": child_args(limits, "python", spec.cuda),
        "name": name,
        "labels": {DOCKER_LABEL: "1", reaper.OWNER_LABEL: owner or reaper.owner_of()},
        "stdin_open": True,  # the wire protocol runs over the process's stdin and stdout
        "auto_remove": True,
        "init": True,  # the child is not PID 1, so rlimit signals (SIGXCPU) act as on the host
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


def _flag(name: str):  # docker run flag helpers: value -> arguments
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


_swept_in: int | None = None  # the pid that removed the dead graders' containers


def _sweep_once(client) -> None:
    """Remove the containers of this host's dead graders, once per grader process: a grader killed
    with its watchdog (or a machine that lost power) leaves them running until their CPU limit."""
    global _swept_in
    if _swept_in == os.getpid():
        return
    try:
        removed = reaper.remove_containers(client, dead_only=True)
    except Exception as exc:  # noqa: BLE001 - clean-up of others' leftovers must not stop this grader
        log.warning("could not remove the containers of dead graders: %s", exc)
        return
    if removed:
        log.warning("removed %d containers left by dead graders: %s", len(removed), ", ".join(removed))
    _swept_in = os.getpid()


class DockerBackend:
    """The sandboxed process in a container, from the image built by runner/sandbox/docker/Dockerfile.

    The docker SDK checks that an engine is reachable and that the image exists, and removes the
    container when the grader gives up on a process. The container itself is started as a
    `docker run --interactive` child process made from the same specification (docker_run_args).
    Why not `containers.run(..., stdin_open=True, detach=True)` and `attach_socket`: without a TTY
    the engine multiplexes stdout and stderr into one framed stream on that socket, and output
    written before the attach (the child's start-up message) is lost or has to be replayed from
    the logs, so the child's plain stdout byte stream would have to be rebuilt by a demultiplexing
    thread, and the process life cycle the RPC client relies on (a pid to kill, an exit status
    that says which signal ended the child) emulated by hand. The docker client already does
    exactly that: it attaches before it starts the container, demultiplexes onto its own stdin,
    stdout and stderr pipes, and exits with the container's status (128 + signal when killed).
    """

    name = "docker"

    def __init__(self, image: str | None = None):
        self.image = image or current_settings().docker_image
        self._checked = False

    def client(self):
        """A docker SDK client of a reachable engine, or SandboxUnavailable saying how to get one."""
        try:
            import docker
        except ImportError:
            raise SandboxUnavailable(
                "the docker backend needs the docker SDK for Python: pip install 'diffusion-grader[server]'"
            ) from None
        try:
            client = reaper.docker_client()
            client.ping()
        except docker.errors.DockerException as exc:
            raise SandboxUnavailable(
                f"no Docker engine is reachable ({str(exc)[:200]}): start the engine (or set DOCKER_HOST), "
                "or grade with --backend local") from None
        return client

    def check(self) -> None:
        """Raise SandboxUnavailable unless the docker CLI, the engine and the image are there (checked once)."""
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
            client.close()
            raise SandboxUnavailable(
                f"the Docker image {self.image} does not exist: build it from the repository root with "
                f"`{DOCKER_BUILD.format(image=self.image)}` (no registry needed; it builds "
                "runner/sandbox/docker/Dockerfile), or set GRADER_DOCKER_IMAGE") from None
        except docker.errors.DockerException as exc:
            client.close()
            raise SandboxUnavailable(f"the Docker engine did not answer about {self.image}: {exc}") from None
        try:
            _sweep_once(client)
        finally:
            client.close()
        self._checked = True

    def spec(self, spec: LaunchSpec) -> dict:
        """The container specification for one sandboxed process, under a fresh name."""
        import uuid

        return container_spec(spec, self.image, f"grader-worker-{uuid.uuid4().hex[:16]}", reaper.owner_of())

    def command(self, spec: LaunchSpec) -> list[str]:
        """The `docker run` command line that starts the sandboxed process (and, once per grader
        process, the watchdog that removes its containers when the grader dies)."""
        self.check()
        reaper.ensure_watchdog()
        return docker_run_args(self.spec(spec), shutil.which("docker") or "docker")

    def stop(self, proc) -> None:
        """Remove the container of a sandboxed process whose `docker run` client was killed: killing the
        client does not stop the container, and a solver's endless loop would keep it busy."""
        args = list(getattr(proc, "args", None) or [])
        if "--name" not in args:
            return
        name = args[args.index("--name") + 1]
        try:
            import docker

            client = reaper.docker_client()
            try:
                client.containers.get(name).remove(force=True)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - report, never fail the grading over it
            if type(exc).__name__ == "NotFound":
                log.debug("container %s was already removed", name)
            else:
                log.warning("could not remove container %s: %s", name, exc)


