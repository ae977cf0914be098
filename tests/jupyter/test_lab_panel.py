"""The JupyterLab exercises panel: its server API, its packaging, and the panel itself in a real
`jupyter lab` driven by headless Chromium.

The browser test starts JupyterLab with this checkout's server extension (enabled by the same
jupyter_server_config.d file that `pip install` ships) and its prebuilt labextension, opens a
problem from the panel, writes a wrong and then the reference solution into the `%%solution`
cell, submits from the panel and reads the verdict table. Screenshots go to artifacts/lab/.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.support.browser import chromium, viewport
from tests.support.cluster import free_port
from tests.support.helpers import ROOT
from runner.jupyter import panel
from runner.problems.catalogue import Catalogue
from runner.records.gradebook import Gradebook
from runner.records.results import Result, TestResult

PROBLEM = "416-temperature-schedule"
SHOTS = ROOT / "artifacts" / "lab"
BUNDLE = panel.BUNDLE / panel.LABEXTENSION
CONFIG = ROOT / "jupyter-config" / "jupyter_server_config.d" / "diffusion-grader.json"
# a plausible mistake: the schedule one step late (the first step would run below t_max)
WRONG = ("remaining = cur_step / num_steps", "remaining = (cur_step - 1) / num_steps")


def reference(wrong: bool = False) -> str:
    source = Catalogue(ROOT).get(PROBLEM).solution_file.read_text(encoding="utf-8")
    if wrong:
        assert WRONG[0] in source, "the reference changed: pick another mistake for the wrong solution"
        source = source.replace(*WRONG)
    return source


# ---------------------------------------------------------------- packaging


def test_the_prebuilt_extension_is_shipped_and_enabled():
    """The committed bundle is a production build that names its entry point, pyproject's data
    files cover every file of it, and the shipped server config enables the server extension."""
    meta = json.loads((BUNDLE / "package.json").read_text(encoding="utf-8"))
    source_meta = json.loads((ROOT / "labextension" / "package.json").read_text(encoding="utf-8"))
    assert meta["name"] == source_meta["name"] == panel.LABEXTENSION
    entry = BUNDLE / meta["jupyterlab"]["_build"]["load"]
    assert entry.is_file() and entry.name.startswith("remoteEntry.")
    files = sorted(p for p in BUNDLE.rglob("*") if p.is_file())
    assert sum(p.stat().st_size for p in files) < 200_000, "the bundle should be a small production build"
    assert not [p for p in files if p.suffix == ".map"], "no source maps in the shipped bundle"

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["runner"], "the bundle ships inside the package, too"
    shipped = {}  # where an install puts each file -> the file in the checkout
    for src, dest in wheel["shared-data"].items():
        src = ROOT / src
        for path in sorted(src.rglob("*")) if src.is_dir() else [src]:
            if path.is_file():
                shipped[f"{dest}/{path.relative_to(src).as_posix()}" if src.is_dir() else dest] = path
    target = f"share/jupyter/labextensions/{panel.LABEXTENSION}"
    for path in files:
        assert shipped.get(f"{target}/{path.relative_to(BUNDLE).as_posix()}") == path, f"{path.name} is not installed"
    assert f"{target}/install.json" in shipped
    assert shipped[f"etc/jupyter/jupyter_server_config.d/{CONFIG.name}"] == CONFIG
    enabled = json.loads(CONFIG.read_text(encoding="utf-8"))["ServerApp"]["jpserver_extensions"]
    assert enabled == {"runner.jupyter.panel": True}
    assert panel._jupyter_server_extension_points() == [{"module": "runner.jupyter.panel"}]
    (paths,) = panel._jupyter_labextension_paths()
    assert (Path(panel.__file__).parent / paths["src"]).resolve() == BUNDLE.resolve()


# ---------------------------------------------------------------- the API's answers, without a server


def test_open_copies_the_notebook_once_and_stays_in_the_root(tmp_path):
    path, made = panel.open_notebook(tmp_path, "416")
    assert (path, made) == (f"{PROBLEM}/{PROBLEM}.ipynb", True)
    nb = tmp_path / path
    assert nb.read_bytes() == Catalogue(ROOT).get(PROBLEM).notebook.read_bytes()
    nb.write_text(nb.read_text(encoding="utf-8").replace("Scratch", "My notes"), encoding="utf-8")
    assert panel.open_notebook(tmp_path, PROBLEM) == (path, False)
    assert "My notes" in nb.read_text(encoding="utf-8"), "an opened notebook is never overwritten"
    with pytest.raises(LookupError):
        panel.open_notebook(tmp_path, "999")
    with pytest.raises(ValueError):
        panel.inside(tmp_path, "../elsewhere.ipynb")


def test_submit_refuses_the_starter_and_a_notebook_without_a_solution_cell(tmp_path):
    path, _ = panel.open_notebook(tmp_path, PROBLEM)
    with pytest.raises(panel.SubmitRefused, match="still the starter"):
        panel.submit_notebook(tmp_path / path)
    nb = nbformat.read(tmp_path / path, as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.startswith("%%solution")]
    nbformat.write(nb, tmp_path / "bare.ipynb")
    with pytest.raises(panel.SubmitRefused, match="no `%%solution ID` cell"):
        panel.submit_notebook(tmp_path / "bare.ipynb")
    nb.cells.append(nbformat.v4.new_code_cell("%%solution 999\nx = 1"))
    nbformat.write(nb, tmp_path / "unknown.ipynb")
    with pytest.raises(panel.SubmitRefused, match="no problem '999'"):
        panel.submit_notebook(tmp_path / "unknown.ipynb")
    assert Gradebook().history() == [], "nothing refused is stored"


def store(book: Gradebook, key: str, score: float | None, max_score: float = 10) -> None:
    """A submission of `key` in the gradebook: graded with `score`, or failed (None)."""
    sub_id = book.add(key, "solution.py", b"x = 1\n", "0" * 64, "local")
    if score is None:
        book.mark_failed(sub_id, "the grader broke")
        return
    test = TestResult(name="test_a", status="passed" if score == max_score else "failed", score=score,
                      max_score=max_score, visibility="visible")
    book.store_result(sub_id, Result(problem=key, score=score, max_score=max_score, tests=[test],
                                     backend="local", duration_s=1.0))


def test_status_follows_the_best_graded_submission():
    catalogue = Catalogue(ROOT)
    first, second, third = (p.key for p in catalogue.problems()[:3])
    book = Gradebook()
    store(book, first, 3)
    store(book, first, 5)
    store(book, first, 4)
    store(book, second, 4)
    store(book, second, 10)
    store(book, second, 2)
    store(book, third, None)
    rows = {r["key"]: r for r in panel.list_problems(catalogue)}
    assert list(rows) == [p.key for p in catalogue.problems()]
    assert (rows[first]["status"], rows[first]["best_score"], rows[first]["max_score"], rows[first]["attempts"]) \
        == ("attempted", 5, 10, 3)
    assert (rows[second]["status"], rows[second]["best_score"]) == ("solved", 10)
    assert (rows[third]["status"], rows[third]["best_score"], rows[third]["attempts"]) == ("attempted", None, 0)
    assert {rows[k]["status"] for k in list(rows)[3:]} == {"not started"}
    assert rows[PROBLEM]["title"] == catalogue.get(PROBLEM).meta.title
    assert rows[PROBLEM]["difficulty"] == catalogue.get(PROBLEM).meta.difficulty.value


# ---------------------------------------------------------------- the panel in JupyterLab


@pytest.fixture(scope="module")
def browser():
    yield from chromium((1280, 800))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`jupyter lab` on a free loopback port, serving a fresh root folder, with this checkout's
    server extension (enabled by the shipped config file) and prebuilt labextension."""
    tmp = tmp_path_factory.mktemp("lab")
    root, config = tmp / "root", tmp / "config"
    (config / "jupyter_server_config.d").mkdir(parents=True)
    root.mkdir()
    shutil.copy(CONFIG, config / "jupyter_server_config.d")
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"extra_labextensions_path": [str(panel.BUNDLE)], "expose_app_in_browser": True,
                   "news_url": None}}))
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), "panel-test-token"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "PYTHONPATH": str(ROOT),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "ws"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "GRADER_DATA_DIR": str(tmp / "data")}
    env.pop("GRADER_DB_URL", None)
    log = (tmp / "lab.log").open("w")
    args = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
            f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    server = subprocess.Popen(args, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                req = urllib.request.Request(f"{base}/grader/api/problems",
                                             headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(req, timeout=10) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield {"base": base, "token": token, "root": root, "log": tmp / "lab.log",
               "gradebook": Gradebook(f"sqlite:///{tmp / 'data' / 'gradebook.sqlite'}")}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_for(driver, script: str, timeout: float, what: str, *args):
    """Poll a JavaScript expression until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            shot(driver, "timeout")
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.25)


def shot(driver, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def widen_sidebar(driver, width: int) -> None:
    """Drag the handle between the left sidebar and the main area until the panel is `width` wide."""
    from selenium.webdriver.common.action_chains import ActionChains

    now = driver.execute_script("return document.getElementById('diffusion-grader-panel').offsetWidth")
    handle = driver.find_element("css selector", "#jp-main-split-panel > .lm-SplitPanel-handle")
    ActionChains(driver).click_and_hold(handle).move_by_offset(width - now, 0).release().perform()


def show_list_and_result(driver, name: str) -> None:
    """Two screenshots: the panel scrolled to the problem list, then to the verdicts."""
    driver.execute_script("document.getElementById('diffusion-grader-panel').scrollTop = 0")
    shot(driver, f"{name}-list")
    driver.execute_script("document.querySelector('#diffusion-grader-panel .dg-result').scrollIntoView()")
    shot(driver, f"{name}-verdicts")


def rows(driver) -> dict[str, dict]:
    """The panel's problem list: key -> status and badge text."""
    return {r["key"]: r for r in driver.execute_script(
        "return [...document.querySelectorAll('#diffusion-grader-panel .dg-problem')].map(li => ({"
        "key: li.dataset.key, status: li.dataset.status, badge: li.querySelector('.dg-badge').textContent,"
        "title: li.querySelector('.dg-title').textContent, current: li.classList.contains('dg-current')}))")}


def verdicts(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#diffusion-grader-panel tr.dg-verdict')].map(tr => ({"
        "name: tr.querySelector('.dg-test').textContent, status: tr.dataset.status,"
        "points: tr.querySelector('.dg-points').textContent}))")


def submit_from_panel(driver, source: str, timeout: float = 400) -> str:
    """Put `source` in the open notebook's `%%solution` cell, press the panel's Submit, wait for
    the verdicts; the score line."""
    found = driver.execute_script(
        "const nb = window.jupyterapp.shell.currentWidget.content;"
        "for (let i = 0; i < nb.model.cells.length; i++) {"
        "  const cell = nb.model.cells.get(i);"
        "  if (cell.sharedModel.getSource().startsWith('%%solution')) {"
        "    cell.sharedModel.setSource(arguments[0]); return true; } }"
        "return false;", f"%%solution {PROBLEM}\n{source}")
    assert found, "the notebook has no %%solution cell"
    driver.execute_script("document.querySelector('#diffusion-grader-panel .dg-result').textContent = ''")
    driver.find_element("css selector", "#diffusion-grader-panel .dg-submit").click()
    return wait_for(driver, "const m = document.querySelector('#diffusion-grader-panel .dg-message-error');"
                            "if (m && m.textContent) return 'error: ' + m.textContent;"
                            "const s = document.querySelector('#diffusion-grader-panel .dg-score');"
                            "return s && s.textContent;", timeout, "the verdict table")


def api(lab, endpoint: str, body: dict | None = None, token: bool = True) -> tuple[int, dict]:
    """(HTTP status, JSON reply) of one call to the panel's API."""
    req = urllib.request.Request(f"{lab['base']}/grader/api/{endpoint}",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {lab['token']}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.slow
def test_api_needs_the_token_and_stays_in_the_root(lab):
    assert api(lab, "problems", token=False)[0] == 403
    assert api(lab, "open", {"problem": "416"}, token=False)[0] == 403
    status, reply = api(lab, "problems")
    assert status == 200 and [r["key"] for r in reply["problems"]] == Catalogue(ROOT).keys()
    status, reply = api(lab, "submit", {"path": "../outside.ipynb"})
    assert status == 400 and "not inside" in reply["message"]
    status, reply = api(lab, "open", {"problem": "999"})
    assert status == 404 and PROBLEM in reply["message"], "an unknown id lists the known ones"
    assert not any(lab["root"].iterdir()), "nothing was made in the root folder"


@pytest.mark.slow
def test_panel_lists_opens_and_submits(browser, lab):
    driver = browser
    viewport(driver, (1440, 900))
    driver.get(f"{lab['base']}/lab?token={lab['token']}")
    tab = "[data-id='diffusion-grader-panel']"
    wait_for(driver, f"return document.querySelector(\"li.lm-TabBar-tab{tab}\")", 120, "the panel's sidebar tab")
    driver.find_element("css selector", f"li.lm-TabBar-tab{tab}").click()
    widen_sidebar(driver, 380)
    keys = [p.key for p in Catalogue(ROOT).problems()]
    wait_for(driver, "return document.querySelectorAll('#diffusion-grader-panel .dg-problem').length", 60,
             "the problem list")
    listed = rows(driver)
    assert list(listed) == keys
    assert {r["status"] for r in listed.values()} == {"not started"}
    assert listed[PROBLEM]["title"] == Catalogue(ROOT).get(PROBLEM).meta.title
    shot(driver, "1-problem-list")

    # one click opens the problem's notebook, copied into the server's root folder
    driver.find_element("css selector", f".dg-problem[data-key='{PROBLEM}'] .dg-open").click()
    path = f"{PROBLEM}/{PROBLEM}.ipynb"
    wait_for(driver, "const w = window.jupyterapp.shell.currentWidget;"
                     "return w && w.context && w.context.path === arguments[0] && w.context.isReady "
                     "&& w.content.model.cells.length > 0", 90, "the notebook to open", path)
    assert (lab["root"] / path).is_file()
    wait_for(driver, "return document.querySelector('#diffusion-grader-panel .dg-current-label')"
                     ".textContent.includes(arguments[0])", 20, "the panel to show the current problem", PROBLEM)
    assert rows(driver)[PROBLEM]["current"]

    # a wrong solution: the verdict table has failing rows, the list shows the partial score
    score = submit_from_panel(driver, reference(wrong=True))
    assert not score.startswith("error"), score
    table = verdicts(driver)
    failing = [v for v in table if v["status"] != "passed"]
    assert failing and len(failing) < len(table), table
    got, full = (float(x) for x in score.split(": ")[1].split(" / "))
    assert 0 < got < full
    status = wait_for(driver, "const li = document.querySelector(`.dg-problem[data-key='${arguments[0]}']`);"
                              "return li && li.dataset.status !== 'not started' && li.dataset.status", 30,
                      "the list to refresh", PROBLEM)
    assert status == "attempted" and rows(driver)[PROBLEM]["badge"] == f"{got:g}/{full:g}"
    show_list_and_result(driver, "2-wrong-solution")

    # the reference: full marks, every row passed, the problem solved
    score = submit_from_panel(driver, reference())
    assert score == f"{PROBLEM}: {full:g} / {full:g}", score
    table = verdicts(driver)
    assert table and {v["status"] for v in table} == {"passed"}
    assert any(v["name"].endswith("(hidden)") for v in table)
    wait_for(driver, "return document.querySelector(`.dg-problem[data-key='${arguments[0]}']`)"
                     ".dataset.status === 'solved'", 30, "the list to show the problem solved", PROBLEM)
    assert rows(driver)[PROBLEM]["badge"] == "solved"
    assert {r["status"] for k, r in rows(driver).items() if k != PROBLEM} == {"not started"}
    show_list_and_result(driver, "3-reference-solution")

    # both went to the gradebook, as `grader submit` and submit() store them
    history = lab["gradebook"].history(PROBLEM)
    assert [(r.score, r.max_score) for r in history] == [(full, full), (got, full)]
    saved = nbformat.read(lab["root"] / path, as_version=4)
    assert any(c.source.startswith(f"%%solution {PROBLEM}\n") and WRONG[0] in c.source for c in saved.cells), \
        "Submit saves the notebook first"
