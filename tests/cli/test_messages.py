"""What `grader` says when it refuses, has nothing to show, or writes to a pipe (real subprocesses)."""
import hashlib
import json

from tests.support.helpers import ROOT, grader_cli, write

STARTER = ROOT / "problems/413-forward-process/starter.py"


def history(env) -> list:
    return json.loads(grader_cli("results", "--json", env=env).stdout)


def test_a_file_neither_py_nor_ipynb_is_stored_with_one_invalid_verdict(tmp_path):
    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    notes = write(tmp_path / "notes.txt", STARTER.read_text())  # valid Python, wrong type
    out = grader_cli("submit", "413", str(notes), "--json", env=env)
    assert out.returncode == 4, out.stderr  # not gradable, as for any file that cannot be loaded
    record = json.loads(out.stdout)
    assert (record["status"], record["score"]) == ("invalid", 0) and record["max_score"] > 0
    assert record["sha256"] == hashlib.sha256(notes.read_bytes()).hexdigest(), "the digest the gradebook keeps"
    (row,) = record["tests"]
    assert row["status"] == "invalid"
    assert row["message"] == ("notes.txt: only a Python file (.py) or a notebook (.ipynb) can be graded: "
                              "save your functions as solution.py and submit that")
    assert [(h["filename"], h["status"], h["score"]) for h in history(env)] == [("notes.txt", "invalid", 0)]
    missing = grader_cli("submit", "413", str(tmp_path / "nothing.py"), env=env)
    assert missing.returncode == 2 and missing.stderr == f"error: {tmp_path / 'nothing.py'}: no such file\n"
    assert len(history(env)) == 1, "a file that does not exist is not a submission"


def test_a_folder_is_graded_as_its_solution_py_and_the_result_names_it(tmp_path):
    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = grader_cli("submit", "413", str(empty), env=env)
    assert refused.returncode == 2
    assert refused.stderr == f"error: {empty} is a folder without a solution.py: pass the file to grade (.py or .ipynb)\n"
    ws = tmp_path / "ws"
    write(ws / "solution.py", "def forward_process(:\n")  # graded quickly, as invalid
    out = grader_cli("submit", "413", str(ws), env=env)
    assert out.returncode == 4, out.stderr
    assert f"graded {ws / 'solution.py'}, submission #1, local backend" in out.stdout
    assert [(h["filename"], h["status"]) for h in history(env)] == [("solution.py", "invalid")]


def test_results_without_history_says_how_to_submit(tmp_path):
    env = {"GRADER_DATA_DIR": str(tmp_path / "data")}
    everything = grader_cli("results", env=env)
    assert everything.returncode == 0
    assert everything.stdout == ("No submissions yet. Submit a file with: grader submit ID FILE (FILE: your "
                                 "solution.py or notebook; `grader start ID DIR` makes one)\n")
    one = grader_cli("results", "413", env=env)
    assert one.stdout.startswith("No submissions for 413-forward-process yet. Submit a file with: "
                                 "grader submit 413-forward-process FILE")
    assert grader_cli("results", "--json", env=env).stdout.strip() == "[]"


def test_piped_output_never_breaks_a_path_or_command(tmp_path):
    """A narrow COLUMNS, as many CI logs have: still nothing is cut mid-word."""
    env = {"GRADER_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "60"}
    ws = tmp_path / "a-rather-long-folder-for-the-working-copy" / "problem-413-forward-process-attempt-1"
    start = grader_cli("start", "413", str(ws), env=env)
    assert start.returncode == 0, start.stderr
    for line in (f"  wrote {ws / 'solution.py'}", f"  grader test {ws}",
                 f"  grader submit 413-forward-process {ws / 'solution.py'}"):
        assert line in start.stdout.splitlines(), start.stdout
    refused = grader_cli("submit", "413", str(ws / "no-such-solution.py"), env=env)
    assert refused.stderr.count("\n") == 1 and str(ws / "no-such-solution.py") in refused.stderr
    write(ws / "solution.py", "def forward_process(:\n")
    graded = grader_cli("submit", "413", str(ws / "solution.py"), env=env)
    assert f"graded {ws / 'solution.py'}, " in graded.stdout
    # the result table keeps its rows whole: one line per test, message included
    assert "│ solution.py: syntax error at line 1: " in graded.stdout
    shown = grader_cli("show", "413", "--hints", env=env)
    hints = (ROOT / "problems/413-forward-process/hints.md").read_text().strip()
    assert hints in shown.stdout and "── hints.md ──" in shown.stdout
    assert "Start with: grader start 413-forward-process" in shown.stdout


def test_a_mutants_toml_error_names_the_entry(tmp_path):
    env = {"GRADER_ROOT": str(tmp_path), "GRADER_DATA_DIR": str(tmp_path / "data")}
    assert grader_cli("new", "900", "toy-problem", "--title", "Toy", env=env).returncode == 0
    mutants = tmp_path / "graders/900-toy-problem/mutants.toml"
    write(mutants, mutants.read_text() + '\n[[equivalent]]\noriginal = "a"\nmutated = "b"\nreason = "r"\nline = 3\n')
    out = grader_cli("validate", "--mutate", "900", env=env)
    assert out.returncode == 2
    assert out.stderr == (f"error: {mutants}: [[equivalent]] 1: takes only the strings `original`, `mutated` "
                          "and `reason`\n")


def test_start_writes_the_notebook_even_when_the_problem_folder_lacks_it(tmp_path):
    """A new problem has no generated notebook yet: `grader start` renders one from the folder."""
    env = {"GRADER_ROOT": str(tmp_path), "GRADER_DATA_DIR": str(tmp_path / "data")}
    assert grader_cli("new", "900", "toy-problem", "--title", "Toy", env=env).returncode == 0
    assert not (tmp_path / "problems/900-toy-problem/900-toy-problem.ipynb").exists()
    ws = tmp_path / "ws"
    start = grader_cli("start", "900", str(ws), env=env)
    assert start.returncode == 0, start.stderr
    notebook = ws / "900-toy-problem.ipynb"
    assert f"  wrote {notebook}" in start.stdout.splitlines()
    assert f"Or open {notebook} in JupyterLab" in start.stdout
    cells = json.loads(notebook.read_text())["cells"]
    starter = (tmp_path / "problems/900-toy-problem/starter.py").read_text().strip()
    assert any("".join(c["source"]) == f"%%solution 900-toy-problem\n{starter}" for c in cells)
