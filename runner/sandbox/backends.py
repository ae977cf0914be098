"""Sandbox backends: how the sandboxed process (runner.sandbox.child) is started.

`local` (default): bubblewrap. New user/pid/net/ipc/uts namespaces, no network, a private /tmp,
read-only views of the interpreter and of the `runner` package only, the submission folder
read-only; solutions/, graders/ and the gradebook are never mounted (and are covered by an empty
tmpfs if they happen to lie under a mounted folder). The child adds rlimits and drops root.

`docker`: the same child in a container (runner.sandbox.container), from the image built by
runner/sandbox/docker/Dockerfile.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from runner.settings import current as current_settings

from .cgroups import SandboxCgroups, cgroup_files, join_then_exec


SANDBOX_LIB = "/sandbox/lib"
SANDBOX_SUBMISSION = "/sandbox/submission"
SANDBOX_ASSETS = "/sandbox/assets"
RUNNER_DIR = Path(__file__).resolve().parent.parent  # the `runner` package, mounted read-only


class SandboxUnavailable(RuntimeError):
    """The chosen sandbox cannot run here; the message says how to get it."""


@dataclass
class LaunchSpec:
    """Everything a backend needs to start one sandboxed process."""

    submission_dir: Path
    limits: dict
    assets: dict[str, Path] = field(default_factory=dict)  # name -> host path, mounted read-only
    protected: list[Path] = field(default_factory=list)  # must never be visible inside
    cuda: bool = False


# The environment inside every sandbox (nothing of the grader's own).
SANDBOX_ENV = {"PYTHONPATH": SANDBOX_LIB, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
               "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}


def popen(cmd: list[str]) -> subprocess.Popen:
    """Start a sandboxed process with the pipes the wire protocol runs over, in a session of its own."""
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, bufsize=0)


def child_limits(limits: dict, cuda: bool = False) -> dict:
    """What the sandboxed process is told of its limits: it serves through a fork server
    (runner.sandbox.forkserver) unless it will use CUDA, which a forked process must not inherit."""
    return {**limits, "fork": not cuda, "cuda": cuda}


def child_args(limits: dict, python: str, cuda: bool = False) -> list[str]:
    """The command line of the sandboxed process, with its limits (child_limits)."""
    import json

    return [python, "-m", "runner.sandbox.child", json.dumps(child_limits(limits, cuda))]


GPU_DEVICES = "/dev/nvidia*"  # the nodes a sandbox on the GPU needs (nvidia0, nvidiactl, nvidia-uvm...)


def gpu_device_nodes(pattern: str | None = None) -> list[Path]:
    """The GPU's device nodes on this machine (`pattern`, default GPU_DEVICES), bound into a sandbox
    that runs on the GPU under the same names in its own /dev."""
    folder, _, glob = (pattern or GPU_DEVICES).rpartition("/")
    return sorted(Path(folder or "/").glob(glob))


_sandboxes = itertools.count()


def sandbox_uid() -> int:
    """A uid no other sandbox running on this machine has (pid of the grader, then a counter):
    the kernel counts processes per uid, and a shared count would let one submission starve another."""
    return 1_000_000 + ((os.getpid() & 0xFFFFF) << 8) + (next(_sandboxes) & 0xFF)


class LocalBackend:
    """bubblewrap namespaces on this machine (the default), in cgroups of their own where possible."""

    name = "local"

    def __init__(self):
        self.bwrap = shutil.which("bwrap")
        self.cgroups = SandboxCgroups()

    def check(self) -> None:
        """Raise SandboxUnavailable, saying how to install bubblewrap, when it is missing."""
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

    def sandbox_args(self, spec: LaunchSpec) -> list[str]:
        """bubblewrap's options for the sandbox of `spec`, up to the command it runs."""
        self.check()
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
                "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        if os.getuid() == 0:
            # No user namespace for root: the child keeps just enough privilege to empty its
            # capability bounding set and drop to nobody after setting its rlimits (root would be
            # exempt from RLIMIT_NPROC).
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                     "--cap-add", "CAP_SETPCAP"]
        else:
            args += ["--unshare-user", "--cap-drop", "ALL"]
        system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"]
        mounted: list[Path] = []
        for path in system:
            if Path(path).exists():
                args += ["--ro-bind", path, path]
                mounted.append(Path(path))
        # The private /tmp comes before the interpreter's folders, which may lie under /tmp (a
        # virtual environment there): mounted later, they show through it.
        tmp_bytes = int(spec.limits.get("tmp_mb", 64)) << 20
        args += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
        made: set[Path] = set()
        for root in self.python_roots():
            if not any(root.is_relative_to(m) for m in mounted):
                # folders bwrap creates on the way are private; the child runs as nobody
                for parent in reversed(root.parents[:-1]):
                    if parent not in made and parent != Path("/tmp"):
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
        # A fresh /dev first: device nodes bound before it would be hidden under it.
        args += ["--proc", "/proc", "--dev", "/dev"]
        if spec.cuda:
            for dev in gpu_device_nodes():
                args += ["--dev-bind", str(dev), f"/dev/{dev.name}"]
        args += ["--chdir", "/tmp", "--clearenv"]
        for name, value in SANDBOX_ENV.items():
            args += ["--setenv", name, value]
        return args

    def command(self, spec: LaunchSpec) -> list[str]:
        """The command that starts the sandboxed process for `spec` (bubblewrap, in cgroups of its own)."""
        args = self.sandbox_args(spec) + ["--"] + child_args({**spec.limits, "uid": sandbox_uid()},
                                                             sys.executable, spec.cuda)
        return self.in_cgroups(spec, args)[0]

    def in_cgroups(self, spec: LaunchSpec, args: list[str]) -> tuple[list[str], list[Path]]:
        """`args` started inside new cgroups with the limits of `spec` (where the host allows them),
        and the cgroup.procs files of those cgroups."""
        if not self.cgroups.available:
            return args, []
        procs = self.cgroups.create(spec.limits["memory_mb"], spec.limits["processes"])
        return join_then_exec(procs, args), procs

    def launch(self, spec: LaunchSpec):
        """Start the sandboxed process: forked from this grader's zygote when it can be (a problem on
        the CPU, GRADER_ZYGOTE on), else a fresh interpreter inside bubblewrap. Popen-like either way."""
        if spec.cuda or not current_settings().zygote:
            return popen(self.command(spec))
        from .zygote import ZygoteUnavailable, start_in_zygote, without_zygote

        try:
            return start_in_zygote(self, spec)
        except ZygoteUnavailable as exc:
            without_zygote(exc)
            return popen(self.command(spec))

    def stop(self, proc) -> None:
        """Remove the cgroups of a sandboxed process that has ended."""
        self.cgroups.remove(cgroup_files(list(getattr(proc, "args", None) or [])))


BACKENDS = ("local", "docker")


def get_backend(name: str):
    """A backend by name; SandboxUnavailable for an unknown one."""
    if name == "local":
        return LocalBackend()
    if name == "docker":
        from .container import DockerBackend

        return DockerBackend()
    raise SandboxUnavailable(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None
