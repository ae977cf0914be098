"""The sandbox works with an interpreter whose environment lies under /tmp (a virtual environment
made there), which the sandbox's private /tmp must not hide."""
import subprocess
import sys

from tests.support.helpers import ROOT


def test_grading_with_a_virtual_environment_under_tmp(tmp_path):
    assert str(tmp_path).startswith("/tmp/")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    code = ("import sys; from runner.problems.catalogue import Catalogue; from runner.grading.pipeline import grade; "
            "p = Catalogue().get('413'); r = grade(p, p.solution_file, 'local'); print(sys.prefix, r.score, r.max_score)")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GRADER_DATA_DIR": str(tmp_path / "d")})
    assert out.returncode == 0, out.stderr[-3000:]
    prefix, score, max_score = out.stdout.split()
    assert prefix == str(venv) and float(score) == float(max_score) > 0
