"""A course server on one machine, for the queue's tests and the load test: redis-server, `grader
serve` and `grader worker` processes, children of the caller, on free loopback ports, with a
private data folder (gradebook, tokens) and a log file per process."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from runner.problems.catalogue import default_root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """The predicate's first true value; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


class LocalCluster:
    def __init__(self, data: Path, root: Path | None = None, env: dict | None = None, user: str = "alice",
                 db_url: str | None = None):
        self.root = Path(root or default_root())
        self.logs = Path(data) / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.redis_port, http_port = free_port(), free_port()
        self.env = {**os.environ, "GRADER_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                    "GRADER_DATA_DIR": str(Path(data) / "gradebook"), "GRADER_ROOT": str(self.root),
                    "PYTHONUNBUFFERED": "1", **(env or {})}
        # the gradebook: db_url, else a private SQLite file (whatever the caller's setting)
        self.env.pop("GRADER_DB_URL", None)
        if db_url:
            self.env["GRADER_DB_URL"] = db_url
        self.db_url = db_url or f"sqlite:///{Path(data) / 'gradebook' / 'gradebook.sqlite'}"
        subprocess.run(self._cli("db", "upgrade"), env=self.env, cwd=self.root, check=True, capture_output=True)
        self.redis = self.spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no"])
        self._wait_service(self._redis_up, 30, "redis-server")
        self.url = f"http://127.0.0.1:{http_port}"
        self.server = self.spawn("server", self._cli("serve", "--port", str(http_port)))
        self._wait_service(self._http_up, 90, "the server")
        token = subprocess.run(self._cli("token", user), env=self.env, cwd=self.root, capture_output=True,
                               text=True, check=True)
        self.token = token.stdout.strip()
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60)

    @staticmethod
    def _cli(*args: str) -> list[str]:
        return [sys.executable, "-m", "runner.cli", *args]

    def log_of(self, proc: subprocess.Popen) -> Path:
        return self.logs / f"{proc.log_name}.log"

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        name = f"{name}-{len(self.procs)}"
        with open(self.logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(cmd, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        proc.log_name = name
        self.procs.append(proc)
        return proc

    def _wait_service(self, predicate, timeout: float, what: str) -> None:
        def up():
            dead = [p.log_name for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited early; see {self.logs}")
            return predicate()

        wait_until(up, timeout, what, interval=0.3)

    def _redis_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _http_up(self) -> bool:
        try:
            return httpx.get(self.url + "/api/problems", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    # -- workers
    def worker(self, queues: str, name: str, ready: bool = True) -> subprocess.Popen:
        """A `grader worker` process; with `ready`, return once it consumes its queues."""
        proc = self.spawn(f"worker-{name}", self._cli("worker", "--queues", queues, "--hostname", f"{name}@%h"))
        self.workers.append(proc)
        if ready:
            log = self.log_of(proc)
            wait_until(lambda: b" ready." in log.read_bytes() or proc.poll() is not None, 120, f"worker {name}")
            if proc.poll() is not None:
                raise RuntimeError(f"worker {name} exited: {log.read_text(errors='replace')[-3000:]}")
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=20)
        self.workers.clear()

    def worker_logs(self) -> str:
        return "".join(self.log_of(p).read_text(errors="replace") for p in self.workers)

    # -- the API, as a solver's client uses it
    def submit(self, path: Path, problem: str) -> int:
        reply = self.http.post("/api/submissions", data={"problem": problem},
                               files={"file": (path.name, path.read_bytes())})
        if reply.status_code != 202:
            raise RuntimeError(f"submission refused: {reply.status_code} {reply.text[:300]}")
        return reply.json()["id"]

    def status(self, sub_id: int) -> dict:
        return self.http.get(f"/api/submissions/{sub_id}").json()

    def wait_graded(self, sub_id: int, timeout: float = 120) -> dict:
        return wait_until(lambda: (r := self.status(sub_id))["status"] in ("graded", "invalid", "failed") and r,
                          timeout, f"submission {sub_id}")

    def close(self) -> None:
        """Workers first (a warm shutdown), redis last; kill what does not stop."""
        self.http.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
