"""Course-scale grading through real processes: redis-server, the HTTP server (uvicorn), and
`grader worker` processes on the `cpu` and `gpu` queues."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")

PROBLEM = "415-adaptive-stopping"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Cluster:
    """redis + server + workers, all children of the test, all on loopback."""

    def __init__(self, tmp: Path, root: Path = ROOT):
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.redis_port, self.http_port = free_port(), free_port()
        self.env = {**os.environ, "GRADER_BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                    "GRADER_DATA_DIR": str(tmp / "data"), "GRADER_ROOT": str(root),
                    "GRADER_VISIBILITY_TIMEOUT": "4"}
        self.logs = tmp
        redis = self.spawn(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no"], "redis")
        wait_until(lambda: self._ping(), 20, "redis")
        self.spawn([sys.executable, "-m", "runner.cli", "serve", "--port", str(self.http_port)], "server")
        self.url = f"http://127.0.0.1:{self.http_port}"
        wait_until(lambda: self._http_up(), 60, "the server")
        token = subprocess.run([sys.executable, "-m", "runner.cli", "token", "alice"], env=self.env,
                               capture_output=True, text=True, check=True)
        self.token = token.stdout.strip()
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        self.redis = redis

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _http_up(self) -> bool:
        try:
            return httpx.get(self.url + "/api/problems", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def spawn(self, cmd, name) -> subprocess.Popen:
        log = open(self.logs / f"{name}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def worker(self, queues: str, name: str, ready: bool = False) -> subprocess.Popen:
        proc = self.spawn([sys.executable, "-m", "runner.cli", "worker", "--queues", queues,
                           "--hostname", f"{name}@test"], f"worker-{name}")
        self.workers.append(proc)
        if ready:  # consuming its queues
            log = self.logs / f"worker-{name}-{len(self.procs) - 1}.log"
            wait_until(lambda: b" ready." in log.read_bytes() or proc.poll() is not None, 90, f"worker {name}")
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=20)
        self.workers.clear()

    def submit(self, path: Path, problem: str = PROBLEM) -> int:
        reply = self.http.post("/api/submissions", data={"problem": problem},
                               files={"file": (path.name, path.read_bytes())})
        assert reply.status_code == 202, reply.text
        return reply.json()["id"]

    def status(self, sub_id: int) -> dict:
        return self.http.get(f"/api/submissions/{sub_id}").json()

    def wait_graded(self, sub_id: int, timeout: float = 120) -> dict:
        return wait_until(lambda: (r := self.status(sub_id))["status"] in ("graded", "failed") and r,
                          timeout, f"submission {sub_id}")

    def close(self):
        self.http.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory):
    """redis and the server are started once for the tests that use the real catalogue."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.close()


@pytest.fixture
def cluster(shared_cluster):
    """The shared cluster; the workers a test starts are stopped when it ends (its jobs are done)."""
    yield shared_cluster
    shared_cluster.stop_workers()


def test_server_needs_a_token(cluster):
    assert httpx.post(cluster.url + "/api/submissions", data={"problem": PROBLEM},
                      files={"file": ("a.py", b"x=1")}).status_code == 401


def test_submissions_through_server_are_graded(cluster, tmp_path):
    cluster.worker("cpu", "w1")
    ref = ROOT / "solutions" / PROBLEM / "solution.py"
    wrong = ROOT / "problems" / PROBLEM / "starter.py"
    good_id, bad_id = cluster.submit(ref), cluster.submit(wrong)
    # stored before it is queued: the gradebook knows it at once
    assert cluster.status(good_id)["status"] in ("queued", "grading", "graded")
    good, bad = cluster.wait_graded(good_id), cluster.wait_graded(bad_id)
    assert good["status"] == "graded" and good["score"] == good["max_score"] > 0
    assert bad["status"] == "graded" and bad["score"] == 0
    # the CLI's --server path, with its JSON output
    out = subprocess.run([sys.executable, "-m", "runner.cli", "submit", PROBLEM, str(ref), "--server", cluster.url,
                          "--token", cluster.token, "--json"], env=cluster.env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert '"score": ' + str(good["score"]) in out.stdout


def slow_copy(tmp_path: Path) -> Path:
    """The reference, slowed down so that a worker can be killed in the middle of grading it."""
    ref = (ROOT / "solutions" / PROBLEM / "solution.py").read_text()
    slow = tmp_path / "slow.py"
    slow.write_text(ref + """

import time as _time

class StableAndConfident(StableAndConfident):
    def __call__(self, *args, **kwargs):
        _time.sleep(0.05)
        return super().__call__(*args, **kwargs)
""")
    return slow


def test_worker_killed_mid_grade_loses_nothing(cluster, tmp_path):
    first = cluster.worker("cpu", "doomed")
    sub_id = cluster.submit(slow_copy(tmp_path))
    wait_until(lambda: cluster.status(sub_id)["status"] == "grading", 90, "grading to start")
    time.sleep(1.0)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert cluster.status(sub_id)["status"] == "grading"
    cluster.worker("cpu", "rescuer")
    record = cluster.wait_graded(sub_id, timeout=180)
    assert record["status"] == "graded" and record["score"] == record["max_score"]
    assert record["attempts"] == 2, "the job was redone exactly once"


def test_gpu_jobs_wait_for_a_gpu_worker(tmp_path):
    """A problem that wants cuda goes to the gpu queue: a cpu worker grades a cpu job submitted
    after it and leaves it queued; a gpu worker then grades it."""
    root = tmp_path / "root"
    cpu_problem = "413-forward-process"
    for name in (PROBLEM, cpu_problem):
        for folder in ("problems", "solutions", "graders"):
            shutil.copytree(ROOT / folder / name, root / folder / name)
    toml = root / "problems" / PROBLEM / "problem.toml"
    toml.write_text(toml.read_text().replace('device = "cpu"', 'device = "cuda"'))
    assert 'device = "cuda"' in toml.read_text()
    c = Cluster(tmp_path, root)
    try:
        c.worker("cpu", "cpu-only", ready=True)
        gpu_job = c.submit(root / "solutions" / PROBLEM / "solution.py")
        cpu_job = c.submit(root / "solutions" / cpu_problem / "solution.py", problem=cpu_problem)
        control = c.wait_graded(cpu_job)  # the cpu worker took the later cpu job ...
        assert control["status"] == "graded" and control["score"] == control["max_score"]
        record = c.status(gpu_job)  # ... and never the gpu one
        assert record["status"] == "queued" and record["attempts"] == 0
        c.worker("gpu", "gpu-box")  # no CUDA here: the worker falls back to the CPU
        record = c.wait_graded(gpu_job)
        assert record["status"] == "graded" and record["score"] == record["max_score"]
        assert record["attempts"] == 1
    finally:
        c.close()
