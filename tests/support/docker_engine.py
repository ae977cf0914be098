"""A Docker engine and the worker image for the docker backend's tests, with no manual step.

`DockerEngine.ensure()` uses the engine the environment names (DOCKER_HOST or the default socket)
when one answers; otherwise, as root with Debian's `dockerd` installed, it starts one on a socket of
its own (data in the default /var/lib/docker, so built images stay cached between runs on a
machine) and points DOCKER_HOST at it. Then it builds or updates the worker image with
scripts/build_worker_image.sh, as an operator would (seconds when nothing changed). When any of
that fails, `reason` says why, and the tests that need the engine skip with it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.helpers import ROOT

BUILD_SCRIPT = ROOT / "scripts" / "build_worker_image.sh"
START_S = 60
BUILD_S = 1800  # a cold build (debootstrap, 250 MB of wheels) takes minutes on a slow machine


def _ping(host: str | None = None, timeout: int = 5) -> str | None:
    """Why the engine at `host` (default: the environment's) does not answer, or None when it does."""
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install -e '.[server]')"
    try:
        client = docker.from_env(timeout=timeout, environment={**os.environ, **({"DOCKER_HOST": host} if host else {})})
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine here
        return f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:160]})"
    return None


class DockerEngine:
    """The engine the docker tests use; `reason` is None when it and the worker image are ready."""

    def __init__(self):
        self.reason: str | None = None
        self.started: subprocess.Popen | None = None
        self.folder: Path | None = None
        self.host: str | None = None  # the socket of an engine started here
        self.activated = False
        self.saved_host = os.environ.get("DOCKER_HOST")
        self.build_log = ""

    @classmethod
    def ensure(cls) -> "DockerEngine":
        """An engine with the worker image built, or one whose `reason` says why there is none."""
        engine = cls()
        engine.reason = engine._engine() or engine._image()
        return engine

    def env(self) -> dict[str, str]:
        """The environment of a process that talks to this engine. ensure() leaves os.environ alone,
        so it can run in a thread while other tests run; `activate()` points this process at it."""
        return {**os.environ, **({"DOCKER_HOST": self.host} if self.host else {})}

    def activate(self) -> None:
        """Point this process's docker clients (DOCKER_HOST) at the engine."""
        if self.host:
            os.environ["DOCKER_HOST"] = self.host
            self.activated = True

    def _engine(self) -> str | None:
        if not shutil.which("docker"):
            return "the docker client is not installed (apt-get install docker.io)"
        why = _ping()
        if why is None:
            return None
        if not shutil.which("dockerd"):
            return f"{why}, and dockerd is not installed to start one (apt-get install docker.io)"
        if os.geteuid() != 0:
            return f"{why}, and starting dockerd needs root"
        # The classic setting first; where the kernel has no iptables (some containers), an engine
        # without a bridge still serves: the sandbox's containers have no network anyway.
        for extra in ([], ["--iptables=false", "--ip6tables=false", "--bridge=none"]):
            failure = self._start_dockerd(extra)
            if failure is None:
                return None
        return failure

    def _start_dockerd(self, extra: list[str]) -> str | None:
        # A short folder: the socket's path must fit in 108 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="dg-dockerd-", dir="/tmp"))
        socket = self.folder / "docker.sock"
        log = open(self.folder / "dockerd.log", "wb")
        self.started = subprocess.Popen(
            ["dockerd", "--storage-driver", "overlay2", "--host", f"unix://{socket}",
             "--pidfile", str(self.folder / "dockerd.pid"), "--exec-root", str(self.folder / "exec"), *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.host = f"unix://{socket}"
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and self.started.poll() is None:
            if socket.exists() and _ping(self.host) is None:
                return None
            time.sleep(0.5)
        tail = (self.folder / "dockerd.log").read_text(errors="replace")[-600:]
        self.stop()
        return f"dockerd {' '.join(extra)} did not start within {START_S} s: {tail}"

    def _image(self) -> str | None:
        try:
            done = subprocess.run(["bash", str(BUILD_SCRIPT)], cwd=ROOT, env=self.env(), capture_output=True, text=True,
                                  timeout=BUILD_S)
        except subprocess.TimeoutExpired:
            return f"scripts/build_worker_image.sh did not finish within {BUILD_S} s"
        self.build_log = done.stdout
        if done.returncode != 0:
            return f"scripts/build_worker_image.sh failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}"
        return None

    def stop(self) -> None:
        """Stop the dockerd this object started (none when it used a running engine)."""
        if self.started is not None:
            if self.started.poll() is None:
                self.started.terminate()
                try:
                    self.started.wait(30)
                except subprocess.TimeoutExpired:
                    self.started.kill()
                    self.started.wait()
            self.started = None
        if self.activated:
            if self.saved_host is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = self.saved_host
            self.activated = False
        self.host = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
