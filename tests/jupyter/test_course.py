"""An nbgrader course from the problems, run through the real nbgrader commands.

One course, one problem, two students: alice hands in the reference, bob a known mutant plus a
scratch cell that tries to award himself full marks. The whole pipeline runs once per module.
"""
import csv
import html
import subprocess
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

from tests.support.browser import ARTIFACTS, chromium, full_page_screenshot
from tests.support.helpers import ROOT, grader_cli
from runner.problems.catalogue import Catalogue
from runner.jupyter.course import CODE_STUB
from runner.grading.pipeline import grade
from runner.authoring.mutants import mutant

PROBLEM = "415-adaptive-stopping"
MUTANT = "compares_only_last"  # a realistic mistake (graders/.../mutants.toml) that keeps some of the points
TAMPERING = """\
open("tampered.txt", "w").write("student code ran in nbgrader's kernel")
import runner.jupyter
runner.jupyter.autograde = lambda *args, **kwargs: 1000.0
"""


def nbgrader(course, *args):
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{out.stdout}\n{out.stderr[-3000:]}"
    return out


def hand_in(course, student, solution, scratch=""):
    nb = nbformat.read(course / "release/ps1" / f"{PROBLEM}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = f"%%solution {PROBLEM}\n{solution}"
        elif cell.get("id") == "scratch":
            cell.source = scratch
    folder = course / "submitted" / student / "ps1"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{PROBLEM}.ipynb")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Build, release, hand in, autograde, give feedback and export, as an instructor would."""
    course = tmp_path_factory.mktemp("course")
    built = grader_cli("course", "build", str(course), "--problems", PROBLEM.split("-")[0])
    assert built.returncode == 0, built.stderr
    nbgrader(course, "generate_assignment", "ps1")
    pdir = Catalogue(ROOT).get(PROBLEM)
    hand_in(course, "alice", pdir.solution_file.read_text())
    hand_in(course, "bob", mutant(pdir, MUTANT).source, scratch=TAMPERING)
    nbgrader(course, "autograde", "ps1")
    nbgrader(course, "generate_feedback", "ps1")
    nbgrader(course, "export")
    return course


def cell_with(nb, grade_id_prefix):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith(grade_id_prefix))


def reference_only_lines(pdir):
    starter = set(pdir.starter.read_text().splitlines())
    return [ln for ln in pdir.solution_file.read_text().splitlines() if len(ln.strip()) > 20 and ln not in starter]


def test_source_has_the_reference_and_the_release_only_the_starter(course):
    pdir = Catalogue(ROOT).get(PROBLEM)
    source = nbformat.read(course / "source/ps1" / f"{PROBLEM}.ipynb", as_version=4)
    release = nbformat.read(course / "release/ps1" / f"{PROBLEM}.ipynb", as_version=4)
    secret = reference_only_lines(pdir)
    assert secret and all(ln in cell_with(source, "solution-").source for ln in secret)
    released = cell_with(release, "solution-").source
    assert "BEGIN SOLUTION" not in released and CODE_STUB in released
    assert not [ln for ln in secret if ln in released], "the release leaks reference code"
    assert "def __call__" in released and "raise NotImplementedError" in released  # the starter's stubs
    tests = cell_with(release, "tests-")
    assert tests.metadata.nbgrader["grade"] and tests.metadata.nbgrader["locked"]
    assert "test_hidden" not in tests.source and "assert" not in tests.source  # hidden tests stay in graders/
    optional = next(c for c in release.cells if c.get("id") == "submit")  # the doc's "Submit (optional)" cell
    assert f'submit("{PROBLEM}")' in optional.source and not optional.metadata.get("nbgrader", {}).get("grade")


def test_gradebook_holds_our_scores(course, tmp_path):
    pdir = Catalogue(ROOT).get(PROBLEM)
    points = cell_with(nbformat.read(course / "source/ps1" / f"{PROBLEM}.ipynb", as_version=4),
                       "tests-").metadata.nbgrader["points"]
    wrong = grade(pdir, mutant(pdir, MUTANT).write(tmp_path), "local")
    assert 0 < wrong.score < wrong.max_score == points
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        alice, bob = gb.find_submission("ps1", "alice"), gb.find_submission("ps1", "bob")
        assert (alice.score, alice.max_score) == (points, points)
        assert (bob.score, bob.max_score) == (wrong.score, points), "partial credit is our grader's score"
    # bob's scratch cell never ran in nbgrader's kernel, so it could not rewrite his score
    assert not (course / "autograded/bob/ps1/tampered.txt").exists()
    with open(course / "grades.csv") as f:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert exported == {"alice": points, "bob": wrong.score}


def test_feedback_shows_the_verdicts_without_the_hidden_tests(course):
    pdir = Catalogue(ROOT).get(PROBLEM)
    page = (course / "feedback/bob/ps1" / f"{PROBLEM}.html").read_text()
    assert "grader-result" in page and "failed" in page and "(hidden)" in page
    hidden_source = (pdir.grader_dir / "test_hidden.py").read_text()
    body_lines = [ln.strip() for ln in hidden_source.splitlines()
                  if len(ln.strip()) > 30 and html.escape(ln) == ln and not ln.strip().startswith(("def ", "#", "from ", "import "))]
    assert body_lines and not [ln for ln in body_lines if ln in page], "feedback shows hidden test code"


@pytest.fixture(scope="module")
def browser():
    yield from chromium((1280, 800))


def test_feedback_page_renders_math_and_a_readable_verdict_table(course, browser):
    """bob's feedback in a real browser: formulas are MathML laid out by the browser (no raw TeX, no
    CDN), the table's columns have room, and only failing tests carry a message box."""
    from selenium.webdriver.common.by import By

    page = course / "feedback/bob/ps1" / f"{PROBLEM}.html"
    browser.get(page.as_uri())
    prose = browser.execute_script(
        "return [...document.querySelectorAll('.text_cell_render')].map(e => e.innerText).join('\\n')")
    assert "\\frac" not in prose and "$$" not in prose, "the statement's TeX is shown raw"
    shown = browser.execute_script(
        "return [...document.querySelectorAll('.text_cell_render math')].filter(m => m.getBoundingClientRect().width > 0).length")
    assert shown > 10, f"only {shown} formulas rendered"
    table = browser.find_element(By.CSS_SELECTOR, ".grader-result table")
    heads = table.find_elements(By.TAG_NAME, "th")
    assert [h.text for h in heads] == ["test", "verdict", "points", "message"]
    gaps = [b.rect["x"] - (a.rect["x"] + a.rect["width"]) for a, b in zip(heads, heads[1:])]
    texts = browser.execute_script(  # the header words' own widths, to see the space between them
        "return [...arguments[0].querySelectorAll('th')].map(th => { const r = document.createRange();"
        " r.selectNodeContents(th); return [r.getBoundingClientRect().left, r.getBoundingClientRect().right]; })", table)
    spaces = [b[0] - a[1] for a, b in zip(texts, texts[1:])]
    assert min(spaces) >= 8, f"header words run together: {spaces} px apart (cell gaps {gaps})"
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    passed = [r for r in rows if r.find_elements(By.TAG_NAME, "td")[1].text == "passed"]
    failed = [r for r in rows if r.find_elements(By.TAG_NAME, "td")[1].text == "failed"]
    assert passed and failed, "bob's mistake should pass some tests and fail others"
    assert not any(r.find_elements(By.TAG_NAME, "pre") for r in passed), "passed tests show empty message boxes"
    assert all(r.find_elements(By.TAG_NAME, "td")[3].text.strip() for r in failed), "a failed test has no message"
    assert browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot = full_page_screenshot(browser, ARTIFACTS / "course" / "feedback-bob.png", (1280, 800))
    assert shot.stat().st_size > 10_000
