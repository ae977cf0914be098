"""Course-scale grading through real processes: redis-server, the HTTP server (uvicorn), and
`grader worker` processes on the `cpu` and `gpu` queues."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import ROOT
from tests.support.cluster import LocalCluster, wait_until

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")

PROBLEM = "415-adaptive-stopping"


def Cluster(tmp: Path, root: Path = ROOT, db_url: str | None = None) -> LocalCluster:
    # a short visibility timeout, so that a killed worker's job is handed out again within seconds
    return LocalCluster(tmp, root, env={"GRADER_VISIBILITY_TIMEOUT": "4"}, db_url=db_url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_cluster(request, tmp_path_factory):
    """redis and the server are started once (per gradebook database) for the tests that use the
    real catalogue; with "postgresql" the gradebook is a new database on the PostgreSQL server."""
    db_url = request.getfixturevalue("postgres").new_database() if request.param == "postgresql" else None
    c = Cluster(tmp_path_factory.mktemp("cluster"), db_url=db_url)
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
    good_id, bad_id = cluster.submit(ref, PROBLEM), cluster.submit(wrong, PROBLEM)
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

class StableAndConfident(StableAndConfident):
    def __call__(self, *args, **kwargs):
        sum(range(1_000_000))  # busy for tens of ms (415 allows no `time` import to sleep with)
        return super().__call__(*args, **kwargs)
""")
    return slow


def test_worker_killed_mid_grade_loses_nothing(cluster, tmp_path):
    first = cluster.worker("cpu", "doomed")
    sub_id = cluster.submit(slow_copy(tmp_path), PROBLEM)
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
    # no GPU here: the problem allows the CPU in its place (without that, grading it is an error)
    toml.write_text(toml.read_text().replace('device = "cpu"', 'device = "cuda"\ncpu_fallback = true'))
    assert 'device = "cuda"' in toml.read_text()
    c = Cluster(tmp_path, root)
    try:
        c.worker("cpu", "cpu-only")
        gpu_job = c.submit(root / "solutions" / PROBLEM / "solution.py", PROBLEM)
        cpu_job = c.submit(root / "solutions" / cpu_problem / "solution.py", problem=cpu_problem)
        control = c.wait_graded(cpu_job)  # the cpu worker took the later cpu job ...
        assert control["status"] == "graded" and control["score"] == control["max_score"]
        record = c.status(gpu_job)  # ... and never the gpu one
        assert record["status"] == "queued" and record["attempts"] == 0
        c.worker("gpu", "gpu-box")  # no CUDA here: the worker grades it on the CPU, as allowed
        record = c.wait_graded(gpu_job)
        assert record["status"] == "graded" and record["score"] == record["max_score"]
        assert record["attempts"] == 1
    finally:
        c.close()


def test_a_job_redone_too_often_is_marked_failed(cluster, tmp_path):
    # Its workers kept dying mid-grade (here: the gradebook says three attempts were made already);
    # the next delivery ends it instead of grading it once more.
    from runner.records.gradebook import Gradebook
    from runner.service.queue import MAX_ATTEMPTS

    book = Gradebook(cluster.db_url)
    sub_id = book.add(PROBLEM, "solution.py", b"x = 1\n", "0" * 64, "queue", user="alice")
    for _ in range(MAX_ATTEMPTS):
        book.mark_grading(sub_id)
    subprocess.run([sys.executable, "-c", f"from runner.service.queue import enqueue; enqueue({sub_id}, {PROBLEM!r})"],
                   env=cluster.env, check=True, timeout=60)
    cluster.worker("cpu", "w-attempts")
    final = cluster.wait_graded(sub_id)
    assert final["status"] == "failed" and "attempts" in final["error"] and final["attempts"] == MAX_ATTEMPTS


def test_a_file_that_cannot_be_graded_ends_invalid(cluster, tmp_path):
    cluster.worker("cpu", "w-invalid")
    notes = tmp_path / "notes.txt"
    notes.write_text("def decide(): pass\n")
    final = cluster.wait_graded(cluster.submit(notes, PROBLEM))
    assert final["status"] == "invalid" and final["score"] == 0 and final["max_score"] > 0
    (entry,) = final["result"]["tests"]
    assert "only a Python file" in entry["message"]


def test_an_unexpected_exception_in_a_job_fails_the_submission(cluster):
    # A row whose problem no longer exists: the job raises before grading even starts.
    from runner.records.gradebook import Gradebook

    book = Gradebook(cluster.db_url)
    sub_id = book.add("999-gone", "solution.py", b"x = 1\n", "0" * 64, "queue", user="alice")
    subprocess.run([sys.executable, "-c", f"from runner.service.queue import grade_submission; "
                    f"grade_submission.apply_async(({sub_id},), queue='cpu')"],
                   env=cluster.env, check=True, timeout=60)
    cluster.worker("cpu", "w-unexpected")
    final = cluster.wait_graded(sub_id)
    assert final["status"] == "failed" and "UnknownProblem" in final["error"]
