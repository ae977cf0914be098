"""The package runs from a checkout (or GRADER_ROOT): installed without one, it says so clearly."""
import shutil
import subprocess
import sys

from tests.support.helpers import ROOT


def run(args, cwd, env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "COLUMNS": "200", **env})


def test_installed_package_without_a_checkout(tmp_path):
    # What a non-editable install leaves: the package alone, in a library folder.
    lib = tmp_path / "site-packages"
    shutil.copytree(ROOT / "runner", lib / "runner", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PYTHONPATH": str(lib), "GRADER_DATA_DIR": str(tmp_path / "data")}
    where = run(["-c", "import runner; print(runner.__file__)"], tmp_path, env)
    assert where.stdout.strip().startswith(str(lib)), where

    alone = run(["-m", "runner.cli", "list"], tmp_path, env)
    assert alone.returncode == 2
    assert "no problems/ folder" in alone.stderr and "GRADER_ROOT" in alone.stderr
    assert "Traceback" not in alone.stderr

    with_root = run(["-m", "runner.cli", "list", "--json"], tmp_path, {**env, "GRADER_ROOT": str(ROOT)})
    assert with_root.returncode == 0, with_root.stderr
    assert '"413-forward-process"' in with_root.stdout
