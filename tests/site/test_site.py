"""The problem site: built from problems/, served on loopback, read in headless Chromium.

Screenshots go to artifacts/site/: the index and a problem page at desktop and phone widths, every
page at 1366 and 390 px (fit-*), and close-ups of a signature block, the commands with their copy
buttons, wrapped code and a formula wider than a phone (at its start and scrolled).
"""
import hashlib
import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.browser import ARTIFACTS, chromium, full_page_screenshot, viewport
from tests.support.helpers import ROOT, write
from runner.problems.catalogue import Catalogue
from runner.records.gradebook import Gradebook
from runner.problems.schema import ProblemFormatError
from runner.site.build import SITE_DIR, SiteError, build_site
from runner.site.leaks import find_leaks
from runner.site.serve import serve_in_thread
from runner.site.markdown import highlight_code, render_markdown, split_list_items
from runner.authoring.scaffold import scaffold_problem

SHOTS = ARTIFACTS / "site"
DESKTOP, PHONE = (1280, 800), (390, 844)
LAPTOP = (1366, 768)  # the commonest laptop width; with PHONE, the widths every page must fit
RAW_MATH = re.compile(r"\$[^$\s][^$]*\$")  # what an unrendered $...$ formula looks like


def valid_problems(root=ROOT):
    found = []
    for pdir in Catalogue(root).problems():
        try:
            pdir.meta  # noqa: B018
        except ProblemFormatError:
            continue
        found.append(pdir)
    return found


# ---------------------------------------------------------------- markdown, math, hints


def test_math_becomes_mathml_at_build_time():
    out = render_markdown("# Title\n\nInline $w(t) = \\frac{1}{1-t}$ and\n\n$$\n\\sum_{i=1}^n H_i \\le \\gamma\n$$\n",
                          id_prefix="learn", drop_title=True)
    assert out.warnings == []
    assert out.html.count("<math") == 2 and 'display="block"' in out.html
    assert "<mfrac>" in out.html and "<munderover>" in out.html
    assert "<h1" not in out.html, "the page shows the title; the file's own h1 is dropped"
    text = re.sub(r"<annotation.*?</annotation>", "", out.html)
    assert not RAW_MATH.search(text)


def test_unknown_tex_is_a_warning_not_silent_text():
    out = render_markdown("bad $\\notacommand{x}$", id_prefix="s")
    assert out.warnings and "\\notacommand" in out.warnings[0]
    known = render_markdown("$a = \\arg\\max_v z_v$", id_prefix="s")  # \arg is missing from latex2mathml
    assert known.warnings == [] and "<mo>arg</mo>" in known.html
    text = render_markdown("$T(\\text{cur\\_step})$", id_prefix="s")
    assert "<mtext>cur_step</mtext>" in text.html


def test_aligned_formulas_become_tables_and_stray_ampersands_warn():
    out = render_markdown("$$\n\\begin{aligned} a &= b &&\\text{one}\\\\ c &= d &&\\text{two}\n\\end{aligned}\n$$",
                          id_prefix="s")
    assert out.warnings == [] and "<mtable" in out.html
    assert not re.search(r"<mi>&(amp;)?</mi>", out.html), "an alignment & shows as text"
    stray = render_markdown("$a & b$", id_prefix="s")
    assert stray.warnings and "alignment &" in stray.warnings[0]


def test_code_is_one_hanging_block_per_line():
    code = "def f(x):\n\n    return x  # a comment long enough to wrap on a phone\n"
    out = highlight_code(code)
    lines = re.findall(r'<span class="line"( style="--indent: (\d+)")?>(.*?)\n</span>', out, flags=re.S)
    assert len(lines) == 3
    assert [indent for _, indent, _ in lines] == ["", "", "4"]
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert text == code, "the text of the block (what a copy takes) is the code itself"


def test_headings_shift_under_the_page_sections():
    out = render_markdown("# Background\n\n## Detail\n", id_prefix="learn", top_level=3)
    assert '<h3 id="learn-background">' in out.html and '<h4 id="learn-detail">' in out.html


def test_hints_become_one_item_each():
    intro, items = split_list_items("Try these.\n\n- first\n  continued\n\n  ```python\n  x = 1\n  ```\n- second $a$\n")
    assert intro == "Try these."
    assert items == ["first\ncontinued\n\n```python\nx = 1\n```", "second $a$"]
    assert split_list_items("Just prose.") == ("", ["Just prose."])


# ---------------------------------------------------------------- building, leaks


def demo_root(tmp_path: Path) -> Path:
    """A throwaway catalogue whose secret files carry canary lines that must never reach the site."""
    root = tmp_path / "root"
    scaffold_problem(root, 999, "demo", "Demo problem")
    key = "999-demo"
    with open(root / "solutions" / key / "solution.py", "a") as f:
        f.write("CANARY_SOLUTION_LINE = 'reference-only 7f3a'\n")
    with open(root / "graders" / key / "test_hidden.py", "a") as f:
        f.write("CANARY_HIDDEN_LINE = 'hidden-only 9c1e'\n")
    write(root / "graders" / key / "data.bin", "hidden expected values 0123456789")
    write(root / "problems" / key / "learn.md", "# Background\n\nCorrupt with probability $t$.\n")
    write(root / "problems" / key / f"{key}.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    return root


def test_no_byte_of_solutions_or_graders_reaches_the_site(tmp_path):
    root = demo_root(tmp_path)
    report = build_site(tmp_path / "site", root)
    built = b"".join(p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file())
    for canary in (b"reference-only 7f3a", b"hidden-only 9c1e", b"hidden expected values"):
        assert canary not in built
    assert find_leaks(report.out, root) == []
    page = (report.out / "problems/999-demo/index.html").read_text()
    assert 'href="999-demo.ipynb"' in page and 'href="starter.py"' in page
    assert (report.out / "problems/999-demo/999-demo.ipynb").read_bytes() == \
        (root / "problems/999-demo/999-demo.ipynb").read_bytes()


def set_problem(root: Path, key: str, set_key: str | None) -> None:
    """Give a problem of `root` a `set` line in its problem.toml (none when set_key is None)."""
    toml = root / "problems" / key / "problem.toml"
    text = re.sub(r'(?m)^set = .*\n', "", toml.read_text(encoding="utf-8"))
    if set_key is not None:
        text = re.sub(r"(?m)^(summary = .*\n)", lambda m: m.group(1) + f'set = "{set_key}"\n', text, count=1)
    toml.write_text(text, encoding="utf-8")


def test_each_problem_toml_places_its_problem_in_a_set(tmp_path):
    """Membership is in problem.toml: a new problem joins its set without touching the site's files."""
    root = tmp_path / "root"
    known = read_set_keys()[0]
    for ident, slug in ((996, "late-addition"), (997, "first"), (998, "loose"), (999, "typo")):
        scaffold_problem(root, ident, slug, slug.title())
    set_problem(root, "997-first", known)
    set_problem(root, "996-late-addition", known)
    set_problem(root, "998-loose", None)
    set_problem(root, "999-typo", "no-such-set")
    report = build_site(tmp_path / "site", root)
    assert any("999-typo" in w and "no-such-set" in w for w in report.warnings)

    index = (report.out / "index.html").read_text()
    sections = re.findall(r'<section class="problem-set" id="set-([a-z0-9-]+)".*?</section>', index, flags=re.S)
    assert sections == [known, "more"]
    blocks = dict(re.findall(r'<section class="problem-set" id="set-([a-z0-9-]+)"(.*?)</section>', index, flags=re.S))
    assert re.findall(r'data-key="([^"]+)"', blocks[known]) == ["996-late-addition", "997-first"], "id order"
    assert re.findall(r'data-key="([^"]+)"', blocks["more"]) == ["998-loose", "999-typo"]

    first = (report.out / "problems/996-late-addition/index.html").read_text()
    second = (report.out / "problems/997-first/index.html").read_text()
    loose = (report.out / "problems/998-loose/index.html").read_text()
    assert 'href="../../problems/997-first/index.html" rel="next"' in first and 'rel="prev"' not in first
    assert 'href="../../problems/996-late-addition/index.html" rel="prev"' in second and 'rel="next"' not in second
    assert "Problem 1 of 2 in" in first and 'rel="prev"' not in loose and 'rel="next"' not in loose


def test_a_set_file_that_still_lists_problems_is_refused(tmp_path):
    from runner.site.build import read_set_spec

    spec = write(tmp_path / "problem-sets.toml", '[[set]]\nkey = "x"\ntitle = "X"\nproblems = [1, 2]\n')
    with pytest.raises(SiteError, match=r"set\[0\].*set = \"x\""):
        read_set_spec(spec)
    write(spec, '[[set]]\nkey = "x"\ntitle = "X"\n[[set]]\nkey = "x"\ntitle = "Y"\n')
    with pytest.raises(SiteError, match="used twice"):
        read_set_spec(spec)


def read_set_keys() -> list[str]:
    """The keys of site/problem-sets.toml, in order."""
    return [s["key"] for s in tomllib.loads((SITE_DIR / "problem-sets.toml").read_text(encoding="utf-8"))["set"]]


def test_problem_page_lists_the_allowed_imports(tmp_path):
    from tests.support.helpers import problem_copy

    root = tmp_path / "root"
    problem_copy(root, "418-full-inference")
    page = (build_site(tmp_path / "site", root).out / "problems/418-full-inference/index.html").read_text()
    facts = page[page.index('<dl class="facts">'):page.index("</dl>")]
    assert "<dt>Allowed imports</dt>" in facts
    assert "<code>torch</code>, <code>math</code>, <code>transformers.DynamicCache</code>" in facts
    assert "<code>from transformers import DynamicCache</code>, that name only" in facts


def test_a_builder_that_leaks_is_stopped(tmp_path, monkeypatch):
    """If a future change copied the reference solution into the site, the build fails and removes it."""
    root = demo_root(tmp_path)
    monkeypatch.setattr("runner.site.build._copy_downloads",
                        lambda page, folder: shutil.copyfile(page.pdir.solution_file, folder / "starter.py"))
    with pytest.raises(SiteError, match="reveal solutions/ or graders/"):
        build_site(tmp_path / "site", root)
    assert not (tmp_path / "site").exists()


def test_leak_finder_sees_through_html_tags(tmp_path):
    root = demo_root(tmp_path)
    site = build_site(tmp_path / "site", root).out
    write(site / "extra.html", "<pre><span>CANARY_HIDDEN_LINE</span> <span>=</span> 'hidden-only 9c1e'</pre>")
    assert any("extra.html" in leak for leak in find_leaks(site, root))


def test_build_will_not_empty_a_folder_it_did_not_make(tmp_path):
    write(tmp_path / "mine" / "notes.txt", "precious")
    with pytest.raises(SiteError, match="not made by"):
        build_site(tmp_path / "mine", demo_root(tmp_path))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_builds_and_serves(tmp_path):
    root = demo_root(tmp_path)
    env = {**os.environ, "GRADER_ROOT": str(root), "GRADER_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "runner.cli", "site", "build", str(out), "--gradebook"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert built.returncode == 0, built.stderr
    assert {"index.html", "results.html"} <= {p.name for p in out.iterdir()}

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "runner.cli", "site", "serve", "--port", str(port),
                               "--dir", str(out)], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        page = _get_when_up(f"http://127.0.0.1:{port}/problems/999-demo/index.html")
        assert "Demo problem" in page and "<math" in page
    finally:
        server.terminate()
        server.wait(timeout=10)


def _get_when_up(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ---------------------------------------------------------------- the real site, in a browser


@pytest.fixture(scope="module")
def real_site(tmp_path_factory):
    """The bundled problems' site, with a results page from a gradebook holding two real gradings."""
    from runner.grading.lifecycle import submit

    assert valid_problems(), "no problem in problems/ to build a site from"
    tmp = tmp_path_factory.mktemp("real-site")
    url = f"sqlite:///{tmp / 'gradebook.sqlite'}"
    graded = valid_problems()[0]
    book = Gradebook(url)
    starter_result = submit(graded, graded.starter, book)
    reference_result = submit(graded, graded.solution_file, book)
    report = build_site(tmp / "site", ROOT, gradebook_url=url, results=True)
    problems = valid_problems()  # read right after the build: problems may be added while tests run
    server, base = serve_in_thread(report.out)
    yield {"out": report.out, "base": base, "problems": problems, "report": report, "graded": graded,
           "results": (starter_result, reference_result)}
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    yield from chromium(DESKTOP)


def open_page(driver, url: str, size=DESKTOP, mobile: bool = False) -> None:
    viewport(driver, size, mobile)
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"


def screenshot(driver, name: str, size, mobile: bool) -> Path:
    return full_page_screenshot(driver, SHOTS / f"{name}.png", size, mobile)


def visible_keys(driver) -> list[str]:
    """The problems whose rows show, sorted."""
    return sorted(driver.execute_script(
        "return [...document.querySelectorAll('tr[data-key]')].filter(r => r.offsetParent !== null)"
        ".map(r => r.dataset.key)"))


def showcase(site) -> "object":
    """The problem to show: 413 when it exists, else the first, preferring one whose text has math."""
    with_math = [p for p in site["problems"] if "$" in p.text("learn.md") + p.text("statement.md")]
    by_key = {p.key: p for p in with_math or site["problems"]}
    return by_key.get("413-forward-process") or next(iter(by_key.values()))


def test_index_lists_every_problem_as_the_catalogue_does(browser, real_site):
    from selenium.webdriver.common.by import By

    open_page(browser, real_site["base"] + "index.html")
    expected = [p.key for p in real_site["problems"]]
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-key]")
    assert sorted(r.get_attribute("data-key") for r in rows) == sorted(expected), "each problem once"
    assert visible_keys(browser) == sorted(expected)
    for table in browser.find_elements(By.CSS_SELECTOR, "table.problems"):  # each set in catalogue order
        keys = [r.get_attribute("data-key") for r in table.find_elements(By.CSS_SELECTOR, "tr[data-key]")]
        assert keys == [k for k in expected if k in keys]

    for pdir in real_site["problems"]:
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-key="{pdir.key}"]')
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        m = pdir.meta
        assert cells[0] == str(m.id) and cells[1].startswith(m.title) and cells[2] == m.difficulty.value
        assert cells[3].split() == " ".join(m.tags).split()
    assert browser.find_element(By.ID, "filter-status").text == f"{len(expected)} of {len(expected)} problems shown"


def test_filter_by_tag_and_difficulty(browser, real_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    problems = real_site["problems"]
    # every tag, in a fixed order: tags hold spaces ("Positional Encoding") and the address must carry them
    tags = sorted({t for p in problems for t in p.meta.tags}, key=lambda t: (sum(t in p.meta.tags for p in problems), t))
    assert any(" " in t for t in tags), "the bundled sets have a tag with a space; the case below needs one"
    open_page(browser, real_site["base"] + "index.html")
    for tag in tags:
        Select(browser.find_element(By.ID, "tag-filter")).select_by_value(tag)
        want = sorted(p.key for p in problems if tag in p.meta.tags)
        assert visible_keys(browser) == want, tag
        assert browser.find_element(By.ID, "filter-status").text == f"{len(want)} of {len(problems)} problems shown"
        fragment = urllib.parse.urlsplit(browser.current_url).fragment
        # percent-encoded, as the tag links write it (unquote leaves a "+" for a space as it is)
        assert urllib.parse.unquote(fragment) == f"tag={tag}", f"{tag!r} is in the address as {fragment!r}"
    tag = tags[0]  # the rarest tag, so the filter has something to hide when there is more than one problem
    Select(browser.find_element(By.ID, "tag-filter")).select_by_value(tag)
    want = sorted(p.key for p in problems if tag in p.meta.tags)

    difficulty = problems[0].meta.difficulty.value
    Select(browser.find_element(By.ID, "difficulty-filter")).select_by_value(difficulty)
    assert visible_keys(browser) == sorted(p.key for p in problems
                                           if tag in p.meta.tags and p.meta.difficulty.value == difficulty)

    browser.find_element(By.CSS_SELECTOR, "#filters button[type=reset]").click()
    assert visible_keys(browser) == sorted(p.key for p in problems)

    # a tag link on a problem page lands on the index already filtered, served or opened as a file
    # (a space written as %20, as the pages write it, or as "+", as a form would)
    spaced = next(t for t in tags if " " in t)
    for base in (real_site["base"], real_site["out"].as_uri() + "/"):
        for t, written in ((tag, urllib.parse.quote(tag)), (spaced, urllib.parse.quote(spaced)),
                           (spaced, urllib.parse.quote_plus(spaced))):
            open_page(browser, base + f"index.html#tag={written}")
            assert visible_keys(browser) == sorted(p.key for p in problems if t in p.meta.tags), written
            assert Select(browser.find_element(By.ID, "tag-filter")).first_selected_option.get_attribute("value") == t


def test_problem_page_shows_everything_a_solver_needs(browser, real_site):
    from selenium.webdriver.common.by import By

    pdir = showcase(real_site)
    m = pdir.meta
    open_page(browser, real_site["base"] + f"problems/{pdir.key}/index.html")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"{m.id}. {m.title}"
    head = browser.find_element(By.CSS_SELECTOR, ".problem-head").text
    assert m.difficulty.value in head and all(t in head for t in m.tags) and m.paper.title in head
    body = browser.find_element(By.TAG_NAME, "main").text
    assert f"grader start {m.id} work/{m.id}" in body and f"grader submit {m.id} work/{m.id}/solution.py" in body
    assert f"rtol = {m.tolerance.rtol}" in body
    for f in m.functions:
        assert f.name in browser.find_element(By.CSS_SELECTOR, ".facts").text

    # math is laid out MathML, and no $...$ is left as text
    formulas = browser.find_elements(By.CSS_SELECTOR, "math")
    if "$" in pdir.text("learn.md") + pdir.text("statement.md"):
        assert formulas, "the page has TeX in its sources but no MathML"
    for el in formulas:
        assert browser.execute_script("return arguments[0].namespaceURI", el) == "http://www.w3.org/1998/Math/MathML"
        assert el.size["width"] > 0 and el.size["height"] > 0
    assert not RAW_MATH.search(body), "raw $...$ left on the page"

    # the starter is highlighted, and its download is byte-identical
    assert browser.find_elements(By.CSS_SELECTOR, ".starter pre.highlight span.k, .starter pre.highlight span.kn")
    with urllib.request.urlopen(real_site["base"] + f"problems/{pdir.key}/starter.py") as resp:
        assert resp.read() == pdir.starter.read_bytes()
    notebook_links = browser.find_elements(By.CSS_SELECTOR, f'a[href="{pdir.notebook.name}"]')
    assert len(notebook_links) == (1 if pdir.notebook.exists() else 0)

    # hints are collapsed until asked for
    hints = browser.find_elements(By.CSS_SELECTOR, "details.hint")
    if pdir.text("hints.md").strip():
        assert hints and not any(h.get_attribute("open") for h in hints)
        hints[0].find_element(By.TAG_NAME, "summary").click()
        assert hints[0].get_attribute("open") is not None
        assert hints[0].find_element(By.CSS_SELECTOR, ".hint-body").is_displayed()


def test_every_formula_of_every_problem_converts(real_site):
    """No warning, no $...$ left in the text, and no TeX command showing inside a formula."""
    math_warnings = [w for w in real_site["report"].warnings if "TeX" in w or "MathML" in w]
    assert not math_warnings, "\n".join(math_warnings)
    for pdir in real_site["problems"]:
        page = (real_site["out"] / "problems" / pdir.key / "index.html").read_text()
        page = re.sub(r"<annotation.*?</annotation>", "", page, flags=re.S)
        prose = re.sub(r"<pre.*?</pre>|<code.*?</code>|<[^>]+>", "", page, flags=re.S)
        assert not RAW_MATH.search(prose), pdir.key
        for formula in re.findall(r"<math.*?</math>", page, flags=re.S):
            shown = html.unescape(re.sub(r"<[^>]+>", "", formula))
            assert "\\" not in shown, f"{pdir.key}: TeX shows in {shown!r}"
            assert not re.search(r"<mi>&(amp;)?</mi>", formula), f"{pdir.key}: an alignment & shows in {shown!r}"


def test_results_page_shows_attempts_and_latest_verdicts(browser, real_site):
    from selenium.webdriver.common.by import By

    graded, (starter, reference) = real_site["graded"], real_site["results"]
    open_page(browser, real_site["base"] + "results.html")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-problem="{graded.key}"]')
    cells = row.find_elements(By.TAG_NAME, "td")
    assert cells[0].text == "2"
    assert cells[1].text.startswith(f"{reference.score:g} / {reference.max_score:g}")
    section = browser.find_element(By.ID, f"p-{graded.key}")
    assert f"Latest attempt: #{reference.submission_id}" in section.text
    verdicts = [v.text for v in section.find_elements(By.CSS_SELECTOR, "table.verdicts .verdict")]
    assert verdicts == [t.status for t in reference.tests]
    attempts = [r.find_elements(By.TAG_NAME, "td")[0].text
                for r in section.find_elements(By.CSS_SELECTOR, "table.attempts tbody tr")]
    assert attempts == [str(reference.submission_id), str(starter.submission_id)]


def test_no_solution_or_hidden_test_reaches_the_real_site(real_site):
    """Besides the line scan, every file that is not a rendered page is a copy of a public file."""
    out, root = real_site["out"], ROOT
    assert find_leaks(out, root) == []
    public = {hashlib.sha256(p.read_bytes()).hexdigest() for base in (root / "problems", SITE_DIR / "static")
              for p in base.rglob("*") if p.is_file()}
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".html" and path.name not in ("pygments.css", ".grader-site"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() in public, path


def test_pages_are_accessible(browser, real_site):
    """axe-core's WCAG 2 A/AA rules (headings, alt text, contrast, labels, landmarks) on every kind of page."""
    from axe_selenium_python import Axe

    pages = ["index.html", f"problems/{showcase(real_site).key}/index.html", "results.html"]
    for page in pages:
        for size, mobile in ((DESKTOP, False), (PHONE, True)):
            open_page(browser, real_site["base"] + page, size, mobile)
            for details in browser.find_elements("css selector", "details"):
                browser.execute_script("arguments[0].open = true", details)  # check the hints' contrast too
            axe = Axe(browser)
            axe.inject()
            found = axe.run(options="{runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}")
            assert not found["violations"], f"{page} at {size[0]}px:\n" + axe.report(found["violations"])
            levels = browser.execute_script(
                "return [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])")
            assert levels.count(1) == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), (page, levels)


def test_pages_fit_a_phone_and_screenshots(browser, real_site):
    """No page scrolls sideways at phone width (wide code and formulas scroll in their own boxes)."""
    pdir = showcase(real_site)
    shots = []
    for name, page in (("index", "index.html"), (f"problem-{pdir.key}", f"problems/{pdir.key}/index.html"),
                       ("results", "results.html")):
        for label, size, mobile in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
            open_page(browser, real_site["base"] + page, size, mobile)
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= size[0], f"{page} is {width}px wide at a {size[0]}px viewport"
            shots.append(screenshot(browser, f"{name}-{label}", size, mobile))
    for path in shots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# ---------------------------------------------------------------- fit, sets, copy, prev/next, downloads

FIT_JS = """
const main = document.querySelector('main'), box = main.getBoundingClientRect(), cs = getComputedStyle(main);
const left = box.left + parseFloat(cs.paddingLeft), right = box.right - parseFloat(cs.paddingRight);
const clipped = el => {  // inside a box that scrolls or clips: that box is what must fit
  for (let a = el.parentElement; a && a !== main; a = a.parentElement)
    if (getComputedStyle(a).overflowX !== 'visible') return true;
  return false;
};
const name = el => {
  const cls = typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().replace(/\\s+/g, '.') : '';
  return el.tagName.toLowerCase() + cls + ' "' + (el.textContent || '').trim().slice(0, 40) + '"';
};
const wider = [], scrolling = [];
for (const el of main.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (!r.width || clipped(el)) continue;
  if (r.left < left - 1 || r.right > right + 1)
    wider.push(name(el) + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right));
  const ox = getComputedStyle(el).overflowX;
  if ((ox === 'auto' || ox === 'scroll') && el.scrollWidth > el.clientWidth + 1)
    scrolling.push({el: el, name: name(el), focusable: el.tabIndex === 0,
                    kind: el.matches('.math') ? 'math' : el.matches('.table-scroll') ? 'table' : 'other'});
}
return {page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
        column: [left, right], wider: wider, scrolling: scrolling};
"""

# scroll a box to its end and back, reporting the sides scroll-cue.js marks as having more to see
CUE_JS = """
const [box, done] = arguments;
const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
(async () => {
  const seen = [box.getAttribute('data-more')];
  box.scrollLeft = box.scrollWidth; await frame(); seen.push(box.getAttribute('data-more'));
  box.scrollLeft = 0; await frame(); seen.push(box.getAttribute('data-more'));
  done(seen);
})();
"""


def site_pages(site) -> list[tuple[str, str]]:
    """(name, path) of the index and of every problem page."""
    return [("index", "index.html")] + [(f"problem-{p.key}", f"problems/{p.key}/index.html") for p in site["problems"]]


def test_every_page_fits_its_column_at_laptop_and_phone_widths(browser, real_site):
    """Nothing widens the page or sticks out of the text column. At laptop width nothing scrolls
    sideways at all (code wraps); on a phone only formulas and tables may, each in a focusable box
    whose sides fade while there is more to see."""
    shots = []
    for name, page in site_pages(real_site):
        for size, mobile in ((LAPTOP, False), (PHONE, True)):
            open_page(browser, real_site["base"] + page, size, mobile)
            for details in browser.find_elements("css selector", "details"):
                browser.execute_script("arguments[0].open = true", details)  # the hints must fit too
            fit = browser.execute_script(FIT_JS)
            where = f"{page} at {size[0]}px"
            assert fit["page"][0] <= fit["page"][1], f"{where}: the page scrolls sideways ({fit['page']})"
            assert fit["column"][1] - fit["column"][0] > size[0] / 4, where
            assert not fit["wider"], f"{where}: wider than the text column:\n" + "\n".join(fit["wider"][:10])
            if size == LAPTOP:
                assert not fit["scrolling"], f"{where}: scrolls sideways: {[s['name'] for s in fit['scrolling']]}"
            for box in fit["scrolling"]:
                assert box["kind"] in ("math", "table") and box["focusable"], f"{where}: {box['name']}"
                if box["kind"] == "math":
                    assert browser.execute_async_script(CUE_JS, box["el"]) == ["right", "left", "right"], \
                        f"{where}: no cue on {box['name']}"
            code = browser.find_elements("css selector", "pre")
            assert all(browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", pre)
                       for pre in code), f"{where}: code scrolls sideways"
            shots.append(screenshot(browser, f"fit-{name}-{size[0]}", size, mobile))
    for path in shots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_a_phone_sees_wide_formulas_scroll_in_their_box(browser, real_site):
    """The widest formula of the bundled problems is wider than a phone: it scrolls inside its box,
    the page does not, and the box is marked as having more on the right. Screenshots of that box
    (at its start and scrolled) and of a wrapped code block go to artifacts/site/."""
    from selenium.webdriver.common.by import By

    widest = None
    for pdir in real_site["problems"]:
        open_page(browser, real_site["base"] + f"problems/{pdir.key}/index.html", PHONE, mobile=True)
        for el in browser.find_elements(By.CSS_SELECTOR, ".math.block"):
            extra = browser.execute_script("return arguments[0].scrollWidth - arguments[0].clientWidth", el)
            if widest is None or extra > widest[1]:
                widest = (pdir.key, extra, browser.execute_script(
                    "return [...document.querySelectorAll('.math.block')].indexOf(arguments[0])", el))
    if widest is None or widest[1] <= 0:
        pytest.skip("no formula of the bundled problems is wider than a phone")
    key, _, index = widest
    open_page(browser, real_site["base"] + f"problems/{key}/index.html", PHONE, mobile=True)
    box = browser.find_elements(By.CSS_SELECTOR, ".math.block")[index]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    assert box.get_attribute("data-more") == "right"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    SHOTS.mkdir(parents=True, exist_ok=True)
    box.screenshot(str(SHOTS / "phone-wide-formula-start.png"))
    browser.execute_script("arguments[0].scrollLeft = arguments[0].scrollWidth / 3", box)
    wait(browser).until(lambda d: box.get_attribute("data-more") == "left right")
    box.screenshot(str(SHOTS / "phone-wide-formula-scrolled.png"))
    code = browser.find_element(By.CSS_SELECTOR, ".starter pre, .statement pre")
    browser.execute_script("arguments[0].scrollIntoView()", code)
    code.screenshot(str(SHOTS / "phone-code-wraps.png"))
    for size, label in ((LAPTOP, "laptop"), (PHONE, "phone")):
        open_page(browser, real_site["base"] + f"problems/{showcase(real_site).key}/index.html", size, size == PHONE)
        head = browser.find_element(By.CSS_SELECTOR, ".statement pre")
        browser.execute_script("arguments[0].scrollIntoView()", head)
        head.screenshot(str(SHOTS / f"{label}-signature.png"))
        steps = browser.find_element(By.CSS_SELECTOR, ".get-started")
        browser.execute_script("arguments[0].scrollIntoView()", steps)
        steps.screenshot(str(SHOTS / f"{label}-get-started.png"))


def wait(driver, timeout: float = 5):
    """selenium's WebDriverWait (imported here: selenium is only needed where a browser runs)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout)


def expected_sets(site) -> dict[str, list[str]]:
    """Set key -> the keys of its problems in id order, as problem.toml and site/problem-sets.toml say."""
    keys = read_set_keys()
    return {k: [p.key for p in sorted(site["problems"], key=lambda p: p.meta.id) if p.meta.set == k] for k in keys}


def test_every_problem_of_a_set_is_listed_in_it(browser, real_site):
    from selenium.webdriver.common.by import By

    open_page(browser, real_site["base"] + "index.html")
    sets = {k: v for k, v in expected_sets(real_site).items() if v}
    for key, members in sets.items():
        rows = browser.find_elements(By.CSS_SELECTOR, f"section#set-{key} tr[data-key]")
        assert [r.get_attribute("data-key") for r in rows] == members, key
    placed = {k for members in sets.values() for k in members}
    loose = [p.key for p in real_site["problems"] if p.key not in placed]
    more = browser.find_elements(By.CSS_SELECTOR, "section#set-more tr[data-key]")
    assert [r.get_attribute("data-key") for r in more] == loose
    capstone = [p for p in real_site["problems"] if p.key == "418-full-inference"]
    if capstone:  # the capstone belongs with the pieces it puts together, never under "More problems"
        assert capstone[0].meta.set and browser.find_elements(
            By.CSS_SELECTOR, f'section#set-{capstone[0].meta.set} tr[data-key="418-full-inference"]')
        assert not browser.find_elements(By.CSS_SELECTOR, 'section#set-more tr[data-key="418-full-inference"]')


def test_the_index_shows_both_bundled_sets_with_their_problems(browser, real_site):
    """DiffusionGemma inference (413-418) and Gemma 4 architecture (181-185), each under its own title."""
    from selenium.webdriver.common.by import By

    open_page(browser, real_site["base"] + "index.html")
    keys = sorted(p.key for p in real_site["problems"])
    bundled = {"diffusiongemma": ("DiffusionGemma inference", range(413, 419)),
               "gemma4": ("Gemma 4 architecture", range(181, 186))}
    for key, (title, ids) in bundled.items():
        section = browser.find_element(By.CSS_SELECTOR, f"section#set-{key}")
        assert title in section.find_element(By.TAG_NAME, "h2").text
        shown = [r.get_attribute("data-key") for r in section.find_elements(By.CSS_SELECTOR, "tr[data-key]")]
        assert shown == [k for k in keys if int(k.split("-")[0]) in ids] and len(shown) == len(ids), (key, shown)


def test_copy_buttons_put_the_text_on_the_clipboard(browser, real_site):
    """Each command's button, and the starter's, copies exactly that text to the system clipboard
    (headless Chromium's own, read back with navigator.clipboard once the page may read it)."""
    from selenium.webdriver.common.by import By

    pdir = showcase(real_site)
    url = real_site["base"] + f"problems/{pdir.key}/index.html"
    open_page(browser, url)
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": real_site["base"].rstrip("/"), "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    clipboard = ("const done = arguments[arguments.length - 1];"
                 "navigator.clipboard.readText().then(done, e => done('unreadable: ' + e))")
    m = pdir.meta
    expected = [f"grader start {m.id} work/{m.id}", f"grader test work/{m.id}",
                f"grader submit {m.id} work/{m.id}/solution.py", pdir.starter.read_text(encoding="utf-8").rstrip("\n")]
    buttons = browser.find_elements(By.CSS_SELECTOR, "button.copy")
    assert len(buttons) == len(expected) and all(b.is_displayed() for b in buttons)
    for button, text in zip(buttons, expected):
        browser.execute_async_script("navigator.clipboard.writeText('before the click').then(arguments[0])")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        wait(browser).until(lambda d: button.get_attribute("data-copied") == "true")
        assert browser.execute_async_script(clipboard) == text
        assert button.text.startswith("Copied")
    assert browser.find_element(By.CSS_SELECTOR, "[role=status].visually-hidden").get_attribute(
        "textContent") == "Copied to the clipboard"

    # without scripts there is no button that does nothing, and the commands are still there to select
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        open_page(browser, url)
        assert not any(b.is_displayed() for b in browser.find_elements(By.CSS_SELECTOR, "button.copy"))
        shown = browser.find_element(By.CSS_SELECTOR, ".commands").text
        assert all(cmd in shown for cmd in expected[:3])
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_previous_and_next_walk_each_set(browser, real_site):
    """Following Next from a set's first problem visits its problems in order and stops at the last;
    Previous walks back. A problem in no set has neither."""
    from selenium.webdriver.common.by import By

    def title(key: str) -> str:
        m = next(p for p in real_site["problems"] if p.key == key).meta
        return f"{m.id}. {m.title}"

    walked = 0
    for key, members in expected_sets(real_site).items():
        if not members:
            continue
        open_page(browser, real_site["base"] + f"problems/{members[0]}/index.html")
        assert not browser.find_elements(By.CSS_SELECTOR, "a[rel=prev]")
        for i, member in enumerate(members):
            assert browser.find_element(By.TAG_NAME, "h1").text == title(member)
            assert browser.current_url.endswith(f"problems/{member}/index.html")
            assert f"Problem {i + 1} of {len(members)} in" in browser.find_element(By.CSS_SELECTOR, ".in-set").text
            following = browser.find_elements(By.CSS_SELECTOR, "a[rel=next]")
            if i + 1 == len(members):
                assert not following
                break
            assert title(members[i + 1]) in following[0].text
            following[0].click()
            walked += 1
        for member in reversed(members[:-1]):
            browser.find_element(By.CSS_SELECTOR, "a[rel=prev]").click()
            assert browser.find_element(By.TAG_NAME, "h1").text == title(member)
        assert not browser.find_elements(By.CSS_SELECTOR, "a[rel=prev]")
    placed = {k for members in expected_sets(real_site).values() for k in members}
    for pdir in real_site["problems"]:
        if pdir.key not in placed:
            open_page(browser, real_site["base"] + f"problems/{pdir.key}/index.html")
            assert not browser.find_elements(By.CSS_SELECTOR, "a[rel=prev], a[rel=next]")
    if len(real_site["problems"]) > 1 and placed:
        assert walked, "no set has two problems to walk between"


def test_public_tests_download_from_each_page(browser, real_site):
    """Each problem page links its public test files; the link serves the file, byte for byte."""
    from selenium.webdriver.common.by import By

    for pdir in real_site["problems"]:
        tests = sorted(pdir.public_tests.glob("test_*.py"))
        open_page(browser, real_site["base"] + f"problems/{pdir.key}/index.html")
        links = browser.find_elements(By.CSS_SELECTOR, '.downloads a[href^="tests/"]')
        assert [link.get_attribute("download") for link in links] == [f"{pdir.key}-{t.name}" for t in tests]
        for link, test in zip(links, tests):
            assert test.name in link.text
            with urllib.request.urlopen(link.get_attribute("href")) as resp:
                assert resp.status == 200 and resp.read() == test.read_bytes()


def test_sets_and_their_problems_link_a_paper(real_site):
    """Every problem of a set, and the set itself, links its paper (or model card)."""
    spec = {s["key"]: s for s in tomllib.loads((SITE_DIR / "problem-sets.toml").read_text(encoding="utf-8"))["set"]}
    index = (real_site["out"] / "index.html").read_text()
    for key, s in spec.items():
        if any(p.meta.set == key for p in real_site["problems"]):
            assert re.match(r"https://", s["paper"]["url"]) and f'href="{s["paper"]["url"]}"' in index, key
    for pdir in real_site["problems"]:
        if pdir.meta.set:
            assert re.match(r"https://", pdir.meta.paper.url), pdir.key
            page = (real_site["out"] / "problems" / pdir.key / "index.html").read_text()
            assert f'href="{html.escape(pdir.meta.paper.url)}"' in page
