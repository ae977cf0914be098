"""Load test of the course server: N submissions through the HTTP API to `grader worker` processes.

Starts, on free loopback ports and with a private data folder (gradebook, tokens):
  redis-server  ->  `grader serve` (uvicorn)  ->  W x `grader worker --queues cpu`
then submits N files for one problem, a fixed mix decided up front, each kind with its expected
verdict:
  correct  the reference solution                          -> full score, every test passed
  wrong    a mutant of the reference (mutants.toml)        -> partial score, some tests failed
  crash    every function calls os._exit or raises         -> score 0, tests crashed or errored
  hang     every function loops or sleeps forever          -> score 0, every test timed out
and prints throughput (graded per minute), p50 and p95 latency from submit to final result, and
the counts of lost, duplicated and wrong-verdict submissions. Exit status 1 if any count is not 0.

  lost        accepted by the server (HTTP 202) but with no final result by the deadline
  duplicated  graded more than once (attempts > 1 in the gradebook, unless --kill-worker made a
              job be redone), or more result writes in the workers' logs than graded submissions
  wrong       a final result (as the API returns it) that is not the kind's expected verdict

The hanging kind would take the problem's own time limits per call; the workers get
GRADER_LIMITS (default time_s=2,total_s=12) so that the run ends in reasonable time.

    python scripts/load_test.py [--n 200] [--workers 2] [--problem 413] [--mix correct=0.5,wrong=0.5]
                                [--backend docker] [--kill-worker]

`--backend docker` grades in containers (GRADER_BACKEND). `--kill-worker` sends SIGKILL to one
worker once a quarter of the submissions are final and starts a new one (the killed worker's job is
redone after GRADER_VISIBILITY_TIMEOUT, 60 s here); with docker it also counts the containers the
killed worker left 10 s after its death (its own watchdog should have removed them).

Per kind it also prints where the time goes: the worker-seconds each submission took (the grading
run's wall clock on its worker, median and max).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.problems.catalogue import Catalogue  # noqa: E402
from tests.support.cluster import LocalCluster  # noqa: E402  (the test suite's local cluster)
from runner.sandbox.reaper import owner_of  # noqa: E402
from runner.records.gradebook import Gradebook, SubmissionRow  # noqa: E402

MIX = {"correct": 0.40, "wrong": 0.30, "crash": 0.15, "hang": 0.15}
MUTANTS = ["pads_scored", "clip_ignored", "ignores_generator"]  # of problem 413 (its mutants.toml)
BAD_STATUSES = {"crashed", "error", "timeout", "memory", "invalid"}


def make_files(pdir, folder: Path) -> dict[str, list[Path]]:
    """The submissions of each kind (several files per kind, used in turn)."""
    from runner.authoring.mutants import MutantError, mutant

    folder.mkdir(parents=True, exist_ok=True)

    def module(name: str, body: str, head: str = "") -> Path:
        # every function takes any arguments, so each test reaches the crash or the hang
        path = folder / f"{name}.py"
        path.write_text(head + "".join(f"def {f.name}(*args, **kwargs):\n    {body}\n" for f in pdir.meta.functions))
        return path

    try:
        mutants = [mutant(pdir, name).write(folder) for name in MUTANTS]
    except MutantError as exc:
        sys.exit(f"{exc} (this script's wrong kind uses mutants of 413)")
    return {
        "correct": [pdir.solution_file],
        "wrong": mutants,
        # `import os` and `import time` are refused by the import guard (`invalid`): these reach
        # the modules through torch's globals, as code that got past the guard would.
        "crash": [module("crash_exit", "torch.os._exit(3)", "import torch\n\n"),
                  module("crash_raise", "raise RuntimeError('not implemented yet')")],
        "hang": [module("hang_busy", "while True:\n        pass"),
                 module("hang_sleep", "torch.threading.Event().wait()", "import torch\n\n")],
    }


def expected(kind: str, record: dict) -> str | None:
    """None when the record is the kind's expected verdict, else what is wrong with it."""
    if record.get("status") != "graded":
        return f"status {record.get('status')}: {str(record.get('error'))[:200]}"
    score, top = record["score"], record["max_score"]
    statuses = Counter(t["status"] for t in record["result"]["tests"])
    if kind == "correct":
        ok = score == top > 0 and set(statuses) == {"passed"}
    elif kind == "wrong":
        ok = 0 < score < top and statuses["failed"] > 0 and not BAD_STATUSES & set(statuses)
    elif kind == "crash":
        # after a few restarts the total time budget is spent: the remaining tests time out
        ok = score == 0 and statuses["crashed"] + statuses["error"] > 0 and set(statuses) <= {
            "crashed", "error", "timeout"}
    else:
        ok = score == 0 and set(statuses) == {"timeout"}
    return None if ok else f"score {score}/{top}, tests {dict(statuses)}"


def parse_mix(text: str) -> dict[str, float]:
    """`correct=0.5,wrong=0.5` -> shares of the kinds, which must add up to 1."""
    mix = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        kind, _, share = item.partition("=")
        if kind not in MIX:
            raise argparse.ArgumentTypeError(f"--mix: no kind {kind!r} (kinds: {', '.join(MIX)})")
        try:
            mix[kind] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--mix: {item!r}: the share is not a number") from None
    if not mix or abs(sum(mix.values()) - 1) > 1e-6:
        raise argparse.ArgumentTypeError("--mix: the shares must add up to 1")
    return mix


def containers_of(owner: str | None) -> int:
    """How many worker containers the engine holds (running or not) of `owner`, or of any grader."""
    from runner.sandbox.reaper import OWNER_LABEL, docker_client

    client = docker_client()
    try:
        return len(client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={owner}" if owner else OWNER_LABEL}))
    finally:
        client.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of submissions (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="`grader worker` processes (default 2)")
    parser.add_argument("--problem", default="413")
    parser.add_argument("--limits", default="time_s=2,total_s=12", help="GRADER_LIMITS for the workers")
    parser.add_argument("--deadline-min", type=float, default=90, help="give up waiting after this long")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mix", type=parse_mix, default=MIX,
                        help="shares of the kinds, e.g. correct=0.5,wrong=0.5 (default: the standard mix "
                             + ", ".join(f"{k}={v:g}" for k, v in MIX.items()) + ")")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (gradebook, logs)")
    parser.add_argument("--backend", choices=("local", "docker"), default="local", help="the workers' sandbox")
    parser.add_argument("--kill-worker", action="store_true",
                        help="kill -9 a worker a quarter of the way through, and start another")
    args = parser.parse_args()
    for tool in ("redis-server",):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (apt-get install redis-server)")

    pdir = Catalogue(ROOT).get(args.problem)
    data = Path(tempfile.mkdtemp(prefix="grader-loadtest-"))
    files = make_files(pdir, data / "submissions")
    counts = {k: round(args.n * share) for k, share in args.mix.items()}
    counts[max(counts, key=counts.get)] += args.n - sum(counts.values())
    plan = [kind for kind, c in counts.items() for _ in range(c)]
    random.Random(args.seed).shuffle(plan)
    turn = Counter()
    print(f"{args.n} submissions for {pdir.key}: " + ", ".join(f"{c} {k}" for k, c in counts.items())
          + f"; {args.workers} workers; GRADER_LIMITS={args.limits}", flush=True)

    cluster, failed, owners = None, True, []
    try:
        # the gradebook: $GRADER_DB_URL (e.g. a PostgreSQL database), else a SQLite file in the run's folder
        env = {"GRADER_LIMITS": args.limits, "GRADER_BACKEND": args.backend}
        if args.kill_worker:
            env["GRADER_VISIBILITY_TIMEOUT"] = "60"  # the killed worker's job is redone a minute later
        cluster = LocalCluster(data, ROOT, env=env, user="loadtest", db_url=os.environ.get("GRADER_DB_URL"))
        for i in range(args.workers):
            owners.append(owner_of(cluster.worker("cpu", f"load{i}").pid))
        http = cluster.http
        submitted: dict[int, tuple[str, dt.datetime]] = {}
        refused = 0
        t0 = time.monotonic()
        start = utcnow()
        for kind in plan:
            path = files[kind][turn[kind] % len(files[kind])]
            turn[kind] += 1
            sent = utcnow()
            reply = http.post("/api/submissions", data={"problem": pdir.key},
                              files={"file": (path.name, path.read_bytes())})
            if reply.status_code != 202:
                refused += 1
                print(f"refused: {reply.status_code} {reply.text[:200]}", flush=True)
                continue
            submitted[reply.json()["id"]] = (kind, sent)
        print(f"submitted {len(submitted)} in {time.monotonic() - t0:.1f} s ({refused} refused)", flush=True)

        book = Gradebook(cluster.db_url)
        from sqlalchemy import func, select
        from sqlalchemy.orm import Session

        deadline = time.monotonic() + args.deadline_min * 60
        last_report = 0.0
        killed = None  # (owner label of the killed worker, when)
        while time.monotonic() < deadline:
            with Session(book.engine) as s:
                done = s.scalar(select(func.count()).select_from(SubmissionRow)
                                .where(SubmissionRow.status.in_(("graded", "invalid", "failed"))))
            if done >= len(submitted):
                break
            if args.kill_worker and killed is None and done >= len(submitted) // 4:
                victim = cluster.workers[0]
                killed = (owner_of(victim.pid), time.monotonic())
                victim.kill()
                victim.wait()
                print(f"  killed worker pid {victim.pid} (kill -9) with {done}/{len(submitted)} final", flush=True)
                owners.append(owner_of(cluster.worker("cpu", "load-replacement", ready=False).pid))
            if killed is not None and len(killed) == 2 and time.monotonic() - killed[1] > 10:
                killed = (*killed, containers_of(killed[0]) if args.backend == "docker" else None)
            if time.monotonic() - last_report > 30:
                print(f"  {done}/{len(submitted)} final after {time.monotonic() - t0:.0f} s", flush=True)
                last_report = time.monotonic()
            time.sleep(1.0)
        wall = time.monotonic() - t0
        if killed is not None and len(killed) == 2:  # the run ended within 10 s of the kill
            time.sleep(max(0.0, 10 - (time.monotonic() - killed[1])))
            killed = (*killed, containers_of(killed[0]) if args.backend == "docker" else None)

        with Session(book.engine) as s:
            rows = {r.id: r for r in s.scalars(select(SubmissionRow))}
        lost, duplicated, wrong, latencies, finished = [], [], [], [], []
        worker_s: dict[str, list[float]] = {}
        for sub_id, (kind, sent) in submitted.items():
            row = rows.get(sub_id)
            if row is None or row.status not in ("graded", "invalid", "failed"):
                lost.append(sub_id)
                continue
            if row.attempts != 1 and not args.kill_worker:
                duplicated.append(sub_id)
            record = http.get(f"/api/submissions/{sub_id}").json()  # what the solver sees
            problem = expected(kind, record)
            if record.get("result"):
                worker_s.setdefault(kind, []).append(record["result"]["duration_s"])
            if problem:
                wrong.append((sub_id, kind, problem))
            latencies.append((row.finished_at - sent).total_seconds())
            finished.append(row.finished_at)
        extra_rows = len(rows) - len(submitted)
        logs = cluster.worker_logs()
        writes = len(re.findall(r"succeeded in [0-9.]+s: 'stored'", logs))
        redone = len(re.findall(r"succeeded in [0-9.]+s: 'already done'", logs))
        graded_rows = sum(1 for i in submitted if rows.get(i) is not None and rows[i].status == "graded")
        extra_writes = max(0, writes - graded_rows)
        n_dup = len(duplicated) + max(0, extra_rows) + extra_writes
        span_min = ((max(finished) - start).total_seconds() / 60) if finished else float("nan")

        print()
        print(f"submissions:  {len(submitted)} accepted, {len(finished)} final, {wall:.1f} s wall clock")
        print(f"throughput:   {len(finished) / span_min:.1f} graded per minute")
        if latencies:
            print(f"latency:      p50 {percentile(latencies, 50):.1f} s, p95 {percentile(latencies, 95):.1f} s "
                  f"(submit to final result; all {len(submitted)} submitted at once)")
        print(f"result writes in worker logs: {writes} stored, {redone} redelivered jobs found the result stored")
        print(f"lost:         {len(lost) + refused}")
        print(f"duplicated:   {n_dup}")
        print(f"wrong verdict: {len(wrong)}")
        per_kind = Counter(kind for kind, _ in submitted.values())
        bad_kind = Counter(k for _, k, _ in wrong)
        print("by kind:")
        for k in per_kind:
            xs = worker_s.get(k, [])
            cost = f"worker-s per submission median {percentile(xs, 50):.1f}, max {max(xs):.1f}" if xs else "-"
            print(f"  {k:8} {per_kind[k]:4d} submitted, {per_kind[k] - bad_kind[k]:4d} as expected, {cost}")
        for sub_id, kind, problem in wrong[:10]:
            print(f"  wrong verdict: #{sub_id} ({kind}): {problem}")
        if lost:
            print(f"  lost: {lost[:20]}")
        if duplicated:
            print(f"  graded more than once: {duplicated[:20]}")
        left_behind = 0
        if killed is not None:
            left_behind = killed[2] if len(killed) == 3 and killed[2] is not None else 0
            redone = sum(1 for i in submitted if rows.get(i) is not None and rows[i].attempts > 1)
            print(f"killed worker: {redone} submissions redone; "
                  + (f"{left_behind} of its containers left 10 s after kill -9" if args.backend == "docker" else ""))
        left = 0
        if args.backend == "docker":
            cluster.close()  # the workers' warm spares end with them (their watchdogs sweep within seconds)
            left = sum(containers_of(o) for o in owners)
            for _ in range(10):
                if not left:
                    break
                time.sleep(1)
                left = sum(containers_of(o) for o in owners)
            print(f"containers of the run's workers left after they stopped: {left}")
        failed = bool(lost or refused or n_dup or wrong or left_behind or left)
        return 1 if failed else 0
    finally:
        if cluster is not None:
            cluster.close()
        if args.keep or failed:
            print(f"kept {data} (gradebook, logs)")
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
