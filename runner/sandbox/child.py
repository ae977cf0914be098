"""The sandboxed process: imports the solver's module and runs calls sent by the trusted grader.

Run as `python -m runner.sandbox.child LIMITS_JSON` inside the sandbox, talking over its stdin and stdout;
it first moves those away so that whatever the solver prints goes to stderr, not into the protocol.
It applies its resource limits, drops root if it has it, imports the framework, installs its
seccomp filter, then serves through a fork server (runner.sandbox.forkserver: each load is
answered by a freshly forked child) or, when `LIMITS_JSON` says `"fork": false` (a problem on the
GPU), answers itself. Requests:
  {"op": "load", "path", "functions", "handles", "imports"}
                                               import the submission under its import guard
                                               (runner.sandbox.imports), check its names/signatures
  {"op": "call", "target", "method", "args", "kwargs"}
  {"op": "release", "ref"}
Responses: {"ok": true, "value"} or {"ok": false, "kind", "type", "message", "frames"}.
"""
from __future__ import annotations

import errno
import importlib.util
import inspect
import json
import math
import os
import resource
import sys
import traceback
from typing import NoReturn

from runner.handles import grader_methods
from runner.sandbox import wire
from runner.sandbox.imports import ImportGuard, NotAllowed, install_guard

PR_CAPBSET_DROP = 24
MEMORY_HINTS = ("not enough memory", "can't allocate memory", "cannot allocate memory", "bad_alloc",
                "out of memory")


# System calls a solution never needs, refused with EPERM: memory outside the address-space limit
# (memfd), looking into or tracing other processes, kernel keyrings, BPF, page-fault handlers,
# perf counters, mounts and namespaces, and the kernel's own administration.
DENIED_SYSCALLS = (
    "memfd_create", "memfd_secret", "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise",
    "pidfd_getfd", "kcmp", "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "perf_event_open",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree", "move_mount", "fsopen",
    "fsmount", "fsconfig", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "syslog", "io_uring_setup", "personality",
)
CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
                    0x00000080)  # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME


def deny_syscalls() -> None:
    """Install the seccomp filter (libseccomp): DENIED_SYSCALLS fail with EPERM, and so does a
    clone into new namespaces. clone3 passes its flags in memory a filter cannot read, so it
    answers ENOSYS, and the C library falls back to clone, whose flags it can."""
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (ValueError, OSError, RuntimeError):
            pass  # not a system call on this architecture or kernel headers
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NAMESPACES:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.load()


def apply_limits(limits: dict) -> None:
    """Set the rlimits of this process (memory, file size, open files, processes, no core) and
    drop root, to a uid of its own: processes are counted per uid, so sandboxes graded at the same
    time must not share one count."""
    mb = 1 << 20
    drop_bounding_set()
    # On the GPU there is no address-space limit: a CUDA context and a memory-mapped checkpoint
    # reserve far more address space than they use. Memory is bounded there by the sandbox's
    # memory cgroup (or the container's limit) and by the device itself.
    address_space = resource.RLIM_INFINITY if limits.get("cuda") else int(limits["memory_mb"] * mb)
    settings = [
        (resource.RLIMIT_AS, address_space),
        (resource.RLIMIT_FSIZE, int(limits["file_size_mb"] * mb)),
        (resource.RLIMIT_NOFILE, int(limits.get("open_files", 256))),
        (resource.RLIMIT_NPROC, int(limits["processes"])),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in settings:
        resource.setrlimit(which, (value, value))
    # The CPU limit is granted per request (grant_cpu), so that CPU spent by earlier tests is never
    # charged to a later one; the hard limit stays open for that, and the trusted side's wall clock
    # per call is the bound that cannot be lifted from inside.
    if os.getuid() == 0:
        # root is exempt from RLIMIT_NPROC and could undo the limits: become nobody.
        uid = int(limits.get("uid", 65534))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    drop_capabilities()


def drop_capabilities() -> None:
    """Keep no capability, also where the process joined the sandbox's user namespace (a fork of the
    zygote, which holds every capability there) rather than being started in it by bubblewrap."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
        raise OSError(ctypes.get_errno(), "dropping capabilities failed")


def drop_bounding_set() -> None:
    """Empty the capability bounding set where this process may (bubblewrap's own process has done so)."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for cap in range(64):
        if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == errno.EINVAL:
            break  # past the last capability this kernel knows


def grant_cpu(cpu_s: int) -> None:
    """Let the next request use `cpu_s` CPU seconds on top of what this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + int(cpu_s), resource.RLIM_INFINITY))


class Child:
    """The state of the sandboxed process: the solver's module, its objects, handles, generators."""

    def __init__(self, handles: dict | None = None):
        self.module = None
        self.path = None
        self.objects: dict[int, object] = {}
        self.generators: dict[int, object] = {}
        self.prebuilt = handles  # built by the fork server's parent, before any solver code ran
        self.handles: dict[str, object] = {}
        # The grader's side of each handle (its grader_* methods, e.g. the model's pass log), taken
        # before the solver's code can reach the handle: replacing them on the object later changes
        # nothing the grader calls.
        self.grader_methods = {name: grader_methods(obj) for name, obj in (handles or {}).items()}
        self.next_ref = 0
        self.guard: ImportGuard | None = None

    # -- requests
    def handle(self, request: dict, buffers: list[bytes]) -> tuple[dict, list[bytes]]:
        """Answer one request; whatever the solver's code raises becomes a failure reply."""
        op = request.get("op")
        try:
            if op == "load":
                return self.load(request), []
            if op == "call":
                return self.call(request, buffers)
            if op == "release":
                self.objects.pop(request.get("ref"), None)
                return {"ok": True, "value": None}, []
            return {"ok": False, "kind": "protocol", "message": f"unknown op {op!r}"}, []
        except BaseException as exc:  # noqa: BLE001 - everything the solver raises is reported
            return self.failure(exc), []

    def load(self, request: dict) -> dict:
        """Import the submission under its problem's import guard, check its names and signatures,
        build the handles."""
        self.path = request["path"]
        spec = importlib.util.spec_from_file_location("submission", self.path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["submission"] = module
        self.guard = install_guard(request.get("imports"), vars(module), self.path)
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:  # noqa: BLE001
            failure = self.failure(exc)
            if failure["kind"] == "error":
                failure["kind"] = "invalid"
                failure["message"] = f"importing the submission raised {failure['type']}: {failure['message']}"
            return failure
        if (refused := self.refused()) is not None:  # the module caught the refusal itself
            return refused
        problems = [p for spec in request.get("functions", []) if (p := check_signature(module, spec))]
        if problems:
            return {"ok": False, "kind": "invalid", "type": "SignatureError", "message": "; ".join(problems),
                    "frames": []}
        self.module = module
        from runner.handles import build_handle

        if self.prebuilt is not None:
            self.handles = dict(self.prebuilt)
        else:
            for name, spec in request.get("handles", {}).items():
                if not name.startswith("_"):
                    self.handles[name] = build_handle(spec, refuse=self.guard.refuse_use)
                    self.grader_methods[name] = grader_methods(self.handles[name])
        self.guard.during_call = True
        return {"ok": True, "value": None}

    def call(self, request: dict, buffers: list[bytes]) -> tuple[dict, list[bytes]]:
        """Run one call; a result the wire cannot carry stays here, and a reference goes back."""
        target = request.get("target")
        if isinstance(target, str):
            fn = getattr(self.module, target)
            fn = getattr(fn, request["method"]) if request.get("method") else fn
        elif isinstance(target, dict) and "handle" in target:
            # The grader reading a handle's own state (e.g. the model's pass log); the solver's
            # code never sends requests, so this is the grader's side of the handle.
            fn = self.grader_methods.get(target["handle"], {}).get(request.get("method"))
            if fn is None:
                return {"ok": False, "kind": "protocol",
                        "message": f"handle {target['handle']!r} has no grader method {request.get('method')!r}"}, []
        else:
            obj = self.objects.get(target.get("ref") if isinstance(target, dict) else None)
            if obj is None:
                return {"ok": False, "kind": "protocol", "message": "that object no longer exists"}, []
            fn = getattr(obj, request["method"]) if request.get("method") else obj
        args = wire.decode(request.get("args", []), buffers, self.resolve, bounds=wire.REQUEST)
        kwargs = wire.decode(request.get("kwargs", {"__dict__": []}), buffers, self.resolve, bounds=wire.REQUEST)
        self.refused()  # forget what a thread of an earlier call tried
        result = fn(*args, **kwargs)
        if (refused := self.refused()) is not None:  # the solver's code caught the refusal itself
            return refused, []
        out: list[bytes] = []
        try:
            value = wire.encode(result, out)
        except wire.Unencodable:
            if isinstance(result, (list, tuple, dict)):
                raise
            self.next_ref += 1
            self.objects[self.next_ref] = result
            out = []
            value = wire.encode(wire.RemoteRef(self.next_ref, type(result).__name__), out)
        return {"ok": True, "value": value}, out

    def resolve(self, tag: str, node: dict):
        """The object a tagged argument names: a generator built from its seed, an object, a handle."""
        if tag == "__generator__":
            gen = self.generators.get(node["__generator__"])
            if gen is None:
                import torch

                gen = torch.Generator(device=node.get("device", "cpu")).manual_seed(int(node["seed"]))
                self.generators[node["__generator__"]] = gen
            return gen
        if tag == "__np_generator__":
            key = ("numpy", node["__np_generator__"])
            gen = self.generators.get(key)
            if gen is None:
                import numpy as np

                gen = self.generators[key] = np.random.default_rng(int(node["seed"]))
            return gen
        if tag == "__remote__":
            return self.objects[node["__remote__"]]
        if tag == "__handle__":
            return self.handles[node["__handle__"]]
        raise wire.WireError(tag)

    def failure(self, exc: BaseException) -> dict:
        """The failure reply for an exception, with the traceback frames of the solver's file only;
        `invalid` when the solver's code tried something its problem does not allow."""
        kind = "error"
        text = str(exc)
        if isinstance(exc, MemoryError) or any(h in text.lower() for h in MEMORY_HINTS):
            kind = "memory"
        frames = [
            {"line": f.lineno, "function": f.name, "code": (f.line or "").strip()}
            for f in traceback.extract_tb(exc.__traceback__)
            if self.path and f.filename == self.path
        ]
        refused = self.refused()
        if refused is not None:
            return refused | {"frames": frames}
        return {"ok": False, "kind": kind, "type": type(exc).__name__, "message": text[:2000], "frames": frames}

    def refused(self) -> dict | None:
        """The `invalid` reply for the first thing the solver's code tried that its problem does not
        allow since the last look (even if the code caught the error), else None."""
        message = self.guard.take() if self.guard is not None else None
        if message is None:
            return None
        return {"ok": False, "kind": "invalid", "type": NotAllowed.__name__, "message": message, "frames": []}


def check_signature(module, spec: dict) -> str | None:
    """A message when the module lacks the name or it cannot take the stated parameters."""
    name = spec["name"]
    obj = getattr(module, name, None)
    if obj is None:
        return f"{name} is not defined"
    if spec.get("kind") == "class":
        if not inspect.isclass(obj):
            return f"{name} should be a class"
        missing = [m for m in spec.get("methods", []) if not callable(getattr(obj, m, None))]
        if missing:
            return f"{name} has no method {', '.join(missing)}"
    elif not callable(obj):
        return f"{name} should be a function"
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(**{p: None for p in spec.get("params", [])})
    except TypeError as exc:
        return f"{name}{sig}: does not take the parameters ({', '.join(spec.get('params', []))}): {exc}"
    return None


def main() -> None:
    """`python -m runner.sandbox.child LIMITS_JSON`: run() in a fresh interpreter."""
    run(json.loads(sys.argv[1]))


def run(limits: dict) -> None:
    """Start up (limits, frameworks, seccomp), then serve requests on the pipes until the grader
    closes them: through a fork server (runner.sandbox.forkserver) unless `limits["fork"]` is off.
    A process forked from a zygote (runner.sandbox.zygote) has its frameworks imported already."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    apply_limits(limits)
    for framework in limits.get("preload", []):
        __import__(framework)
    deny_syscalls()  # after the frameworks' start-up, before any of the solver's code
    from runner.sandbox.forkserver import can_fork

    forks = bool(limits.get("fork", True)) and can_fork()
    responses = os.fdopen(fd_out, "wb", buffering=0)
    wire.write_message(responses, {"ok": True, "ready": True, "forks": forks}, [])
    if forks:
        from runner.sandbox.forkserver import Relay, not_dumpable

        not_dumpable()
        Relay(fd_in, fd_out, limits).serve()
    else:
        serve(os.fdopen(fd_in, "rb", buffering=0), responses, limits, Child())


def serve(requests, responses, limits: dict, child: Child) -> None:
    """Answer requests one by one, each with its CPU grant, until the stream ends."""
    global current
    current = child
    while (msg := wire.read_message(requests)) is not None:
        grant_cpu(limits["cpu_s"])
        header, buffers = child.handle(*msg)
        # the process's peak resident memory so far (KiB): what a problem's memory limit is sized from
        header["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            wire.write_message(responses, header, buffers)
        except (wire.Unencodable, ValueError) as exc:
            wire.write_message(responses, child.failure(exc), [])


def serve_forked(sock, limits: dict, handles: dict | None) -> NoReturn:
    """The forked child's life: its own process group, the handles its parent built, one
    submission's requests on its socket; it never returns into the parent's code."""
    try:
        try:
            os.setpgid(0, 0)  # so that the parent kills whatever this child starts along with it
        except OSError:
            pass
        serve(sock.makefile("rb", buffering=0), sock.makefile("wb"), limits, Child(handles))
    finally:
        os._exit(0)


current: Child | None = None  # the child serving requests in this process


def refuse_through_guard(what: str) -> NoReturn:
    """What a handle built before any submission was loaded calls instead of a forbidden method:
    the refusal of the guard of the submission that this process serves."""
    if current is None or current.guard is None:
        raise PermissionError(f"use of {what} is not allowed here")
    current.guard.refuse_use(what)


if __name__ == "__main__":
    main()
