"""The sandboxed process's clean parent: a restart after a crash costs a fork, not an interpreter.

One parent serves one submission. It has started the interpreter, imported the frameworks and
built the handles, and it never runs the solver's code: for each load it forks a child
(runner.sandbox.child.Child) that imports the submission and answers calls. When that child dies
(the solver's code crashed it, the grader killed it on a timeout, the memory limit), the next load
forks a fresh one in milliseconds. Every rule of the sandbox holds for the child: it inherits the
rlimits, the uid and the seccomp filter, is granted CPU per request as before, and installs its
import guard before the submission's first line runs.

The parent relays whole frames between the grader's pipes and the child's socket, so a child that
dies halfway through a reply never leaves a partial frame on the grader's pipe; the child never
holds the grader's pipes at all. It relays one answer per request, and none that claims to be the
parent's own (PARENT_KEYS): the solver's code can write to the child's socket, and the grader reads
the parent's frames as the sandbox's word. Requests the parent answers itself:

  {"op": "load", ...}   -> {"ok": true, "forked": true} (its own reply, always first), then
                           the child's answer to the load; or {"ok": false, "kind": "unavailable"}
                           when the handles cannot be built (the grader's fault, not the solver's)
  {"op": "kill"}        -> {"ok": true, "killed": true, "died": STATUS}: the child and every
                           process it left behind are killed
and what it sends on its own: {"ok": false, "died": STATUS} in place of the reply to a request
the child did not live to answer, where STATUS is {"signal": n} or {"status": n}.

Forking a process that has initialised CUDA is unsafe: a problem on the GPU is served the old way,
by one process that is restarted whole (runner.sandbox.child.serve).
"""
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket

from runner.sandbox import wire

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
# Keys only the parent's own frames carry: the grader reads them as the sandbox's word (a death, a
# fork, a missing installation), so a child's frame that holds one is a forgery, never relayed.
PARENT_KEYS = ("died", "killed", "forked", "ready")


class Relay:
    """The parent's state: the grader's pipes, the handles, and the one live child (if any)."""

    def __init__(self, fd_in: int, fd_out: int, limits: dict):
        self.fd_in, self.fd_out, self.limits = fd_in, fd_out, limits
        self.requests = wire.FrameReader(bounds=wire.REQUEST)
        self.handles: dict | None = None
        self.pid: int | None = None
        self.sock: socket.socket | None = None
        self.pidfd: int | None = None
        self.inbox = wire.FrameReader()  # the child's frames, forwarded only when whole
        self.outbox = bytearray()  # requests not yet written to the child
        self.waiting = 0  # requests forwarded and not yet answered
        self.last_death: dict | None = None
        self.last_words: dict | None = None  # a protocol break, reported in place of the death

    # ------------------------------------------------------------ the loop
    def serve(self) -> None:
        """Relay until the grader closes its pipe."""
        while True:
            readable = [self.fd_in] + ([self.sock.fileno(), self.pidfd] if self.pid else [])
            writable = [self.sock.fileno()] if self.pid and self.outbox else []
            ready, can_write, _ = select.select(readable, writable, [])
            if self.pid and self.sock.fileno() in ready:
                self.from_child()
            if self.pid and self.pidfd in ready:
                self.child_ended()
            if self.pid and can_write:
                self.to_child()
            if self.fd_in in ready and not self.from_grader():
                break
        self.kill_child()

    def send(self, header: dict) -> None:
        """One frame of the parent's own to the grader."""
        self.write(wire.pack_message(header, []))

    def write(self, data) -> None:
        """Write bytes to the grader (blocking: the grader reads while it waits for an answer)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_out, view[:1 << 20]):]

    # ------------------------------------------------------------ the grader's side
    def from_grader(self) -> bool:
        """Read the grader's pipe and act on each whole request; False when the grader has closed it."""
        chunk = os.read(self.fd_in, 1 << 20)
        if not chunk:
            return False
        self.requests.feed(chunk)
        while (frame := self.requests.frame()) is not None:
            raw, header = frame
            self.request(raw, json.loads(header))
        return True

    def request(self, raw: memoryview, header: dict) -> None:
        """Answer a request of the parent's own (kill, load), or pass it on to the child."""
        op = header.get("op")
        if op == "kill":
            died = self.kill_child()
            self.send({"ok": True, "killed": True, "died": died})
        elif op == "load":
            self.kill_child()
            if self.handles is None and (problem := self.build_handles(header.get("handles") or {})):
                self.send({"ok": False, "kind": "unavailable", "message": problem})
                return
            self.send({"ok": True, "forked": True})
            self.fork()
            self.forward(raw)
        elif self.pid is None:
            self.send({"ok": False, "died": self.last_death or {"status": None}})
        else:
            self.forward(raw)

    def build_handles(self, specs: dict) -> str | None:
        """Build the handles once, in the parent, before any of the solver's code; what went wrong if not."""
        from runner.handles import build_handle

        from .child import refuse_through_guard

        try:
            self.handles = {name: build_handle(spec, refuse=refuse_through_guard)
                            for name, spec in specs.items() if not name.startswith("_")}
        except Exception as exc:  # noqa: BLE001 - reported to the grader as its own failure
            return f"building the problem's handles failed: {type(exc).__name__}: {exc}"[:2000]
        return None

    # ------------------------------------------------------------ the child's side
    def fork(self) -> None:
        """Fork a child for a load: it gets one end of a new socket and none of the grader's pipes."""
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the child: it never returns from here
            ours.close()
            os.close(self.fd_in)
            os.close(self.fd_out)
            from .child import serve_forked

            serve_forked(theirs, self.limits, self.handles)
        theirs.close()
        try:
            os.setpgid(pid, pid)  # also done by the child: whichever runs first, the group exists
        except OSError:
            pass  # it has already exec'd or died: kill_child still kills it by pid
        ours.setblocking(False)
        self.pid, self.sock, self.pidfd = pid, ours, os.pidfd_open(pid)
        self.inbox, self.outbox, self.waiting = wire.FrameReader(), bytearray(), 0

    def forward(self, raw) -> None:
        """Queue a request for the child, which answers it once."""
        self.outbox += raw
        self.waiting += 1
        self.to_child()

    def to_child(self) -> None:
        """Write what the socket takes now (never blocking: a child that stops reading must not
        stop the parent)."""
        try:
            sent = self.sock.send(self.outbox[:1 << 20])
        except BlockingIOError:
            return
        except OSError:
            self.outbox.clear()  # the child is gone; its pidfd says so next
            return
        del self.outbox[:sent]

    def from_child(self) -> None:
        """Relay the child's whole frames; a closed socket means the child has ended."""
        if not self.drain(once=True):
            self.child_ended()

    def drain(self, once: bool = False) -> bool:
        """Read what the child sent and relay each whole frame; False at its end of stream (or
        after a frame that is not the protocol, which ends the child)."""
        if self.last_words is not None:
            return False  # it broke the protocol: nothing more of its is relayed
        while self.pid is not None:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            try:
                self.inbox.feed(chunk)
                while (frame := self.inbox.frame()) is not None:
                    if not self.waiting or is_forgery(frame[1]):
                        # one answer per request, in the child's own words: anything else (a frame
                        # nobody asked for, one dressed as the parent's) ends the child unrelayed
                        self.last_words = {"kind": "protocol", "message": "the child sent a frame that is not "
                                                                          "an answer to a request"}
                        return False
                    self.write(frame[0])
                    self.waiting -= 1
            except wire.WireError:
                self.last_words = {"kind": "protocol", "message": "the child sent a malformed frame"}
                return False
            if once:
                return True
        return False

    def child_ended(self) -> None:
        """The child exited, closed its socket or broke the protocol: relay what it sent in full,
        end it, and answer the request it left open."""
        self.drain()
        open_request = self.waiting > 0
        died = self.kill_child()
        words, self.last_words = self.last_words, None
        if open_request:
            self.send({"ok": False, "died": died} | (words or {}))

    def kill_child(self) -> dict | None:
        """Kill the child's process group and every other process of the solver's, reap the child;
        how it ended (None when there was none)."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        for kill in (os.killpg, os.kill):  # its group (made at the fork), and itself in any case
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _, status = os.waitpid(pid, 0)
        kill_strays()
        self.sock.close()
        os.close(self.pidfd)
        self.sock = self.pidfd = None
        self.outbox.clear()
        self.waiting = 0
        self.last_death = exit_status(status)
        return self.last_death


def is_forgery(header: str) -> bool:
    """Whether a child's frame header claims what only the parent says. A header that is not
    well-formed JSON is relayed as it is: the grader's reader refuses it and says why."""
    try:
        parsed = wire.parse_header(header, wire.REPLY)
    except wire.WireError:
        return False
    return any(k in parsed for k in PARENT_KEYS) or parsed.get("kind") == "unavailable"


def exit_status(status: int) -> dict:
    """{"signal": n} or {"status": n}, from waitpid's status."""
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status)}
    return {"status": os.waitstatus_to_exitcode(status)}


def kill_strays() -> None:
    """Kill every process in the sandbox but this one and its ancestors: what the solver's code
    started and detached (a new session escapes a process-group kill) must not outlive its child.
    This process is the sandbox's subreaper, so the orphans are its to reap: it waits for them
    all, and looks again for any that a dying process forked meanwhile."""
    keep = {os.getpid(), os.getppid(), 1}
    for _ in range(20):
        strays = [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) not in keep]
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            while os.waitpid(-1, 0):
                pass
        except ChildProcessError:
            pass


def can_fork() -> bool:
    """Whether this kernel lets the parent wait on a child with a pidfd (Linux 5.3); without it the
    sandboxed process serves the submission itself and is restarted whole after a crash."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


def not_dumpable() -> None:
    """Keep the child (same uid) out of the parent's memory through /proc, whatever it tries, and
    make the parent the reaper of the processes its children orphan (pid 1 of a sandbox forked from
    a zygote is a placeholder that never reaps), which kill_strays then waits for."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
