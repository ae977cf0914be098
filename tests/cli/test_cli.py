"""The `grader` command as a solver and an instructor use it (real subprocesses)."""
import json
import os

from tests.support.helpers import ROOT, grader_cli, write


def test_list_json_has_the_catalogue_fields(catalogue):
    out = grader_cli("list", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["key"] for r in rows] == catalogue.keys()
    for row in rows:
        assert {"id", "slug", "title", "difficulty", "tags"} <= set(row)
    by_id = {r["id"]: r for r in rows}
    assert by_id[413]["difficulty"] == "Medium" and by_id[182]["difficulty"] == "Easy"


def test_show_accepts_both_id_forms():
    a, b = grader_cli("show", "413"), grader_cli("show", "413-forward-process")
    assert a.returncode == b.returncode == 0
    assert "forward" in a.stdout.lower() and a.stdout == b.stdout


def test_unknown_problem_is_a_clear_error():
    out = grader_cli("show", "999")
    assert out.returncode == 2 and "no problem '999'" in out.stderr


def test_solver_workflow(tmp_path):
    ws = tmp_path / "ws"
    assert grader_cli("start", "413", str(ws)).returncode == 0
    assert {"solution.py", "problem.toml", "statement.md", "conftest.py"} <= {p.name for p in ws.iterdir()}
    again = grader_cli("start", "413", str(ws))
    assert again.returncode == 2 and "exists already" in again.stderr

    # public tests on the untouched starter fail; on the reference they pass
    failing = grader_cli("test", str(ws))
    assert failing.returncode == 1 and "NotImplementedError" in failing.stdout
    (ws / "solution.py").write_text((ROOT / "solutions/413-forward-process/solution.py").read_text())
    passing = grader_cli("test", str(ws))
    assert passing.returncode == 0, passing.stdout

    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    sub = grader_cli("submit", "413", str(ws / "solution.py"), "--json", env=env)
    assert sub.returncode == 0, sub.stderr
    record = json.loads(sub.stdout)
    assert record["score"] == record["max_score"] > 0
    assert {"name", "status", "message", "score", "max_score", "visibility"} <= set(record["tests"][0])

    wrong = ws / "wrong.py"
    wrong.write_text((ROOT / "problems/413-forward-process/starter.py").read_text())
    table = grader_cli("submit", "413-forward-process", str(wrong), env=env)
    assert table.returncode == 0, "grading happened, so the exit status is 0 whatever the score"
    assert "0 / " in table.stdout and "error" in table.stdout

    history = grader_cli("results", "413", "--json", env=env)
    rows = json.loads(history.stdout)
    assert [r["status"] for r in rows] == ["graded", "graded"]
    assert rows[0]["score"] == 0 and rows[1]["score"] == record["max_score"]
    assert len(rows[0]["sha256"]) == 64


def test_plain_pytest_in_a_working_folder(tmp_path):
    ws = tmp_path / "ws"
    grader_cli("start", "413", str(ws))
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ws)],
                         cwd=ws, capture_output=True, text=True, env={**os.environ})
    assert run.returncode == 1 and "NotImplementedError" in run.stdout


def test_submit_json_exports(tmp_path):
    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    ref = str(ROOT / "solutions/413-forward-process/solution.py")
    gs = json.loads(grader_cli("submit", "413", ref, "--json", "--format", "gradescope", env=env).stdout)
    assert gs["score"] > 0 and {t["visibility"] for t in gs["tests"]} == {"visible", "after_published"}
    ex = json.loads(grader_cli("submit", "413", ref, "--json", "--format", "exercism", env=env).stdout)
    assert ex["version"] == 2 and ex["status"] == "pass"


def fill_in_placeholders(root):
    """What an instructor does to the scaffold, crudely: every TODO replaced by text."""
    for path in root.rglob("*"):
        if path.suffix in (".md", ".toml", ".py") and "TODO" in path.read_text():
            path.write_text(path.read_text().replace("TODO: ", "").replace('"TODO"', '"toy"'))


def test_instructor_scaffold_and_validate(tmp_path):
    env = {"GRADER_ROOT": str(tmp_path), "GRADER_DATA_DIR": str(tmp_path / "data")}
    made = grader_cli("new", "900", "toy-problem", "--title", "Toy", env=env)
    assert made.returncode == 0, made.stderr
    assert "replace every TODO), then run: grader notebooks 900 && grader validate 900" in made.stdout
    # untouched, the scaffold fails: each placeholder is named, and the notebook is not written yet
    untouched = grader_cli("validate", "900", env=env)
    assert untouched.returncode == 1
    assert "FAIL no placeholders left  9 left, replace each TODO:" in untouched.stdout
    assert "problems/900-toy-problem/statement.md:3: TODO: what to implement" in untouched.stdout
    assert 'problems/900-toy-problem/problem.toml:5: tags = ["TODO"]' in untouched.stdout
    assert "FAIL notebook is up to date  900-toy-problem.ipynb is missing: run `grader notebooks 900`" in untouched.stdout
    assert "ok   reference scores full marks" in untouched.stdout, "the other checks still run"
    fill_in_placeholders(tmp_path)
    assert grader_cli("notebooks", "900", env=env).returncode == 0
    ok = grader_cli("validate", "900", env=env)
    assert ok.returncode == 0, ok.stdout
    assert "ok   no placeholders left" in ok.stdout and "ok   notebook is up to date" in ok.stdout
    assert "mutant returns_input is caught" in ok.stdout
    # break the reference: validation must fail and say which check
    (tmp_path / "solutions/900-toy-problem/solution.py").write_text("def solve(x):\n    return 3 * x\n")
    bad = grader_cli("validate", "900", env=env)
    assert bad.returncode == 1
    assert "FAIL reference scores full marks" in bad.stdout
    assert "FAIL worked example" in bad.stdout
    # a schema error names the file and field
    toml = tmp_path / "problems/900-toy-problem/problem.toml"
    toml.write_text(toml.read_text().replace('difficulty = "Medium"', 'difficulty = "Impossible"'))
    broken = grader_cli("validate", "900", env=env)
    assert broken.returncode == 2 and "problem.toml: difficulty:" in broken.stderr


def test_new_writes_a_numpy_problem_and_names_the_frameworks_it_knows(tmp_path):
    env = {"GRADER_ROOT": str(tmp_path), "GRADER_DATA_DIR": str(tmp_path / "data")}
    made = grader_cli("new", "901", "toy-numpy", "--framework", "numpy", env=env)
    assert made.returncode == 0, made.stderr
    problem = tmp_path / "problems/901-toy-numpy"
    toml = (problem / "problem.toml").read_text()
    assert 'framework = "numpy"' in toml and 'imports = ["numpy", "math"]' in toml
    code = {path.relative_to(tmp_path).as_posix(): path.read_text() for path in tmp_path.rglob("*.py")}
    assert len(code) == 6  # starter, public test, reference, hidden test, two alternatives
    for name, text in code.items():
        assert "import numpy as np" in text and "torch" not in text, name
    assert "from runner.testing import assert_close, rng" in code["graders/901-toy-numpy/test_hidden.py"]
    assert "Allowed imports: `numpy`, `math`." in (problem / "statement.md").read_text()
    listed = grader_cli("list", "--json", env=env)
    assert [(r["key"], r["framework"]) for r in json.loads(listed.stdout)] == [("901-toy-numpy", "numpy")]

    refused = grader_cli("new", "902", "toy-jax", "--framework", "jax", env=env)
    assert refused.returncode == 2
    assert refused.stderr == "error: --framework 'jax': choose one of torch, numpy\n"
    assert not (tmp_path / "problems/902-toy-jax").exists()


def test_bench_prints_each_mode_next_to_its_in_process_run():
    out = grader_cli("bench", "413", "--repeats", "1")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if " s) " in line]
    assert len(rows) == 6, out.stdout
    for label in ("in-process (no sandbox)", "sandbox, cold start (forked from the zygote)",
                  "its own interpreter (GRADER_ZYGOTE=0)", "warm pool", "fresh process, sandbox"):
        assert label in out.stdout
    assert all("1.00x (+0.000 s)" in rows[i] for i in (0, 4)), "in-process rows are their own baseline"


def test_bench_refuses_an_unknown_backend():
    out = grader_cli("bench", "413", "--backend", "kvm")
    assert out.returncode == 2 and "unknown backend 'kvm': choose one of local, docker" in out.stderr


def test_verbose_shows_the_grading_log(tmp_path):
    bad = write(tmp_path / "bad.py", "def forward_process(:\n")
    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    quiet = grader_cli("submit", "413", str(bad), env=env)
    loud = grader_cli("-vv", "submit", "413", str(bad), env=env)
    assert quiet.returncode == loud.returncode == 4  # graded as invalid
    assert "runner.grading.pipeline" not in quiet.stderr
    assert "runner.grading.pipeline" in loud.stderr and "413-forward-process" in loud.stderr
    assert "runner.records.gradebook" in loud.stderr  # -vv: the details too


def test_a_file_that_cannot_be_graded_is_one_invalid_verdict(tmp_path):
    bad = write(tmp_path / "bad.py", "def forward_process(:\n")
    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    out = grader_cli("submit", "413", str(bad), "--json", env=env)
    assert out.returncode == 4, out.stderr
    record = json.loads(out.stdout)
    assert record["status"] == "invalid" and record["score"] == 0 and record["max_score"] >= 10
    assert len(record["tests"]) == 1 and "syntax error at line 1" in record["tests"][0]["message"]
    history = json.loads(grader_cli("results", "--json", env=env).stdout)
    assert [h["status"] for h in history] == ["invalid"]


def test_submit_refuses_a_misspelt_grader_limits(tmp_path):
    # GRADER_LIMITS changes every problem's limits for `grader submit` as for a worker: a typo stops it
    out = grader_cli("submit", "413", str(ROOT / "solutions" / "413-forward-process" / "solution.py"),
                     env={"GRADER_LIMITS": "tme_s=3"})
    assert out.returncode != 0 and "GRADER_LIMITS: no limit named 'tme_s'" in out.stderr, out.stderr
