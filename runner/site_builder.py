"""The static site solvers browse: an index, a page per problem, and optionally their results.

`build_site` renders `site/templates` with Jinja2 from the public `problems/` folders only, copies
the starter and the notebook for download, and refuses to leave a site behind that contains any
line of `solutions/` or `graders/` (see `find_leaks`). `serve` is a loopback static file server.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .catalogue import Catalogue, ProblemDir
from .schema import ProblemFormatError
from .site_markdown import highlight_code, pygments_css, render_markdown, split_list_items

SITE_DIR = Path(__file__).resolve().parent.parent / "site"  # templates and static assets
SITE_NAME = "diffusion-grader"
MARKER = ".grader-site"  # marks a folder this builder made, so a rebuild may empty it
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
MIN_SECRET_LINE = 16  # shorter lines ("import torch", "return x") are not evidence of a leak


class SiteError(Exception):
    pass


@dataclass
class BuildReport:
    out: Path
    pages: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ProblemPage:
    pdir: ProblemDir
    statement: str
    learn: str
    hints_intro: str
    hints: list[str]
    starter: str
    has_starter: bool
    has_notebook: bool

    @property
    def meta(self):
        return self.pdir.meta

    @property
    def href(self) -> str:
        return f"problems/{self.pdir.key}/index.html"

    @property
    def commands(self) -> list[tuple[str, str]]:
        m, work = self.meta, f"work/{self.meta.id}"
        return [(f"grader start {m.id} {work}", "copy the starter (as solution.py), public tests and notebook"),
                (f"grader test {work}", "run the public tests on your machine"),
                (f"grader submit {m.id} {work}/solution.py", "grade it with the hidden tests, in the sandbox")]


# ---------------------------------------------------------------- building


def build_site(out: Path, root: Path | None = None, *, gradebook_url: str | None = None,
               results: bool = False) -> BuildReport:
    """Render the site into `out` (emptied first if a previous build made it)."""
    catalogue = Catalogue(root)
    out = _prepare_out(Path(out))
    report = BuildReport(out)
    env = _jinja_env()
    shutil.copytree(SITE_DIR / "static", out / "static")
    (out / "static" / "pygments.css").write_text(pygments_css(), encoding="utf-8")

    pages = []
    for pdir in catalogue.problems():
        try:
            pages.append(_problem_page(pdir, report.warnings))
        except ProblemFormatError as exc:
            report.warnings.append(f"skipped: {exc}")
    common = {"site_name": SITE_NAME, "has_results": results}

    def write(rel: str, template: str, **ctx) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        base = "../" * rel.count("/")
        path.write_text(env.get_template(template).render(base=base, **common, **ctx), encoding="utf-8")
        report.pages.append(path)

    write("index.html", "index.html", page="index", sets=_problem_sets(pages),
          tags=sorted({t for p in pages for t in p.meta.tags}, key=str.lower),
          difficulties=_difficulties(pages), total=len(pages))
    for page in pages:
        folder = out / "problems" / page.pdir.key
        folder.mkdir(parents=True, exist_ok=True)
        _copy_downloads(page, folder)
        _copy_images(page, folder, report.warnings)
        write(page.href, "problem.html", page="problem", p=page)
    if results:
        write("results.html", "results.html", page="results", **_results_context(gradebook_url, pages))

    leaks = find_leaks(out, catalogue.root)
    if leaks:
        shutil.rmtree(out)
        raise SiteError("the site would reveal solutions/ or graders/ content, so it was removed:\n"
                        + "\n".join(leaks[:20]))
    return report


def _prepare_out(out: Path) -> Path:
    out = out.resolve()
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise SiteError(f"{out} is not empty and was not made by `grader site build`; choose another folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("built by `grader site build`; rebuilt from scratch each time\n", encoding="utf-8")
    return out


def _jinja_env() -> Environment:
    env = Environment(loader=FileSystemLoader(SITE_DIR / "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["difficulty_class"] = lambda d: "diff-" + {"Hard◆": "capstone"}.get(d, d.lower())
    env.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M UTC") if t else ""
    env.filters["points"] = lambda x: "-" if x is None else f"{x:g}"
    return env


def _problem_page(pdir: ProblemDir, warnings: list[str]) -> ProblemPage:
    pdir.meta  # noqa: B018 - raises ProblemFormatError for a broken problem.toml, before any rendering

    def md(name: str, prefix: str, top: int, drop_title: bool = False, text: str | None = None) -> str:
        rendered = render_markdown(pdir.text(name) if text is None else text, id_prefix=prefix,
                                   top_level=top, drop_title=drop_title)
        warnings.extend(f"{pdir.key}/{name}: {w}" for w in rendered.warnings)
        return rendered.html

    intro, items = split_list_items(pdir.text("hints.md"))
    has_starter = pdir.starter.is_file()
    return ProblemPage(
        pdir=pdir,
        statement=md("statement.md", "statement", 3, drop_title=True),
        learn=md("learn.md", "learn", 3),
        hints_intro=md("hints.md", "hints", 3, text=intro) if intro else "",
        hints=[md("hints.md", f"hint{i}", 4, text=item) for i, item in enumerate(items, 1)],
        starter=highlight_code(pdir.starter.read_text(encoding="utf-8")) if has_starter else "",
        has_starter=has_starter,
        has_notebook=pdir.notebook.is_file(),
    )


@dataclass
class ProblemSet:
    title: str
    about: str
    problems: list[ProblemPage]


def _problem_sets(pages: list[ProblemPage]) -> list[ProblemSet]:
    """The sets of `site/problem-sets.toml` in order, each in catalogue order; the rest last."""
    spec = tomllib.loads((SITE_DIR / "problem-sets.toml").read_text(encoding="utf-8")).get("set", [])
    sets, placed = [], set()
    for entry in spec:
        ids = set(entry.get("problems", []))
        members = [p for p in pages if p.meta.id in ids and p.meta.id not in placed]
        placed |= {p.meta.id for p in members}
        if members:
            sets.append(ProblemSet(entry["title"], entry.get("about", ""), members))
    rest = [p for p in pages if p.meta.id not in placed]
    if rest:
        sets.append(ProblemSet("More problems" if sets else "Problems", "", rest))
    return sets


def _difficulties(pages: list[ProblemPage]) -> list[str]:
    from .schema import Difficulty

    present = {p.meta.difficulty for p in pages}
    return [d.value for d in Difficulty if d in present]


def _copy_downloads(page: ProblemPage, folder: Path) -> None:
    if page.has_starter:
        shutil.copyfile(page.pdir.starter, folder / "starter.py")
    if page.has_notebook:
        shutil.copyfile(page.pdir.notebook, folder / page.pdir.notebook.name)


def _copy_images(page: ProblemPage, folder: Path, warnings: list[str]) -> None:
    """Images the markdown refers to by a relative path inside the problem folder."""
    html_text = page.statement + page.learn + page.hints_intro + "".join(page.hints)
    for tag in re.findall(r"<img\b[^>]*>", html_text):
        src = re.search(r'src="([^"]*)"', tag)
        if not re.search(r'alt="[^"]+"', tag):
            warnings.append(f"{page.pdir.key}: image without alt text: {tag}")
        if not src or re.match(r"[a-z]+:|/", src.group(1)):
            continue
        source = (page.pdir.folder / html.unescape(src.group(1))).resolve()
        if source.suffix.lower() in IMAGE_SUFFIXES and source.is_relative_to(page.pdir.folder.resolve()) \
                and source.is_file():
            target = folder / source.relative_to(page.pdir.folder.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        else:
            warnings.append(f"{page.pdir.key}: image {src.group(1)} is not a file in the problem folder")


# ---------------------------------------------------------------- the results page


def _results_context(gradebook_url: str | None, pages: list[ProblemPage]) -> dict:
    """Attempts per problem, newest first, with the latest attempt's verdicts."""
    from .gradebook import Gradebook, default_url

    url = gradebook_url or default_url()
    rows = Gradebook(url).history(limit=100_000)
    titles = {p.pdir.key: (p.meta.title, p.href) for p in pages}
    by_problem: OrderedDict[str, list] = OrderedDict()
    for row in sorted(rows, key=lambda r: r.problem):
        by_problem.setdefault(row.problem, []).append(row)
    problems = []
    for key, attempts in by_problem.items():
        attempts.sort(key=lambda r: r.id, reverse=True)
        scores = [r.score for r in attempts if r.score is not None]
        title, href = titles.get(key, (key, None))
        problems.append({"key": key, "title": title, "href": href, "attempts": attempts,
                         "latest": attempts[0], "latest_result": attempts[0].result(),
                         "best": max(scores) if scores else None})
    return {"problems": problems, "gradebook": _redact_url(url)}


def _redact_url(url: str) -> str:
    """A database URL without its password, for the page footer."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


# ---------------------------------------------------------------- the leak check


def _visible_text(path: Path) -> str:
    """What a reader of a built file can see: HTML without tags (code is split into spans), notebook sources."""
    data = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix == ".html":
        return data + "\n" + html.unescape(re.sub(r"<[^>]+>", "", data))
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(data).get("cells", [])
        except (json.JSONDecodeError, AttributeError):
            return data
        return data + "\n" + "\n".join("".join(c.get("source", "")) + json.dumps(c.get("outputs", []))
                                       for c in cells)
    return data


def _text_files(folder: Path) -> list[Path]:
    """Every file under `folder` (none when it does not exist), compiled caches aside."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def _normalize(text: str) -> str:
    """Markdown's code and emphasis marks off, whitespace collapsed: how a line reads on a page."""
    return re.sub(r"\s+", " ", re.sub(r"[`*]", "", text))


def _secrets(root: Path) -> tuple[set[str], dict[str, Path]]:
    """(normalized secret lines, sha256 -> file) of `solutions/` and `graders/`.

    A secret line is one of at least MIN_SECRET_LINE characters that no public file under
    `problems/` contains (a starter's `def` line or a docstring the statement repeats is public).
    """
    public_files = _text_files(root / "problems")
    public = _normalize("\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in public_files))
    public_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in public_files}
    lines: set[str] = set()
    hashes: dict[str, Path] = {}
    for path in _text_files(root / "solutions") + _text_files(root / "graders"):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if data and digest not in public_hashes:
            hashes[digest] = path
        for line in data.decode("utf-8", errors="ignore").splitlines():
            line = _normalize(line).strip()
            if len(line) >= MIN_SECRET_LINE and line not in public:
                lines.add(line)
    return lines, hashes


def find_leaks(site: Path, root: Path) -> list[str]:
    """Every place a built file holds a secret line, or a whole file, of `solutions/` or `graders/`."""
    lines, hashes = _secrets(root)
    found = []
    for built in _text_files(site):
        where = built.relative_to(site)
        digest = hashlib.sha256(built.read_bytes()).hexdigest()
        if digest in hashes:
            found.append(f"{where} is a copy of {hashes[digest].relative_to(root)}")
        text = _normalize(_visible_text(built))
        found += [f"{where} contains {line!r}" for line in sorted(lines) if line in text]
    return found


# ---------------------------------------------------------------- serving


def make_server(directory: Path, port: int = 0, host: str = "127.0.0.1", quiet: bool = True) -> ThreadingHTTPServer:
    """A static file server for the built site on loopback; port 0 picks a free port."""
    handler = partial(_QuietHandler if quiet else _Handler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(directory: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; returns the server (call .shutdown()) and its base URL."""
    server = make_server(directory, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".ipynb": "application/x-ipynb+json",
                      ".py": "text/x-python; charset=utf-8"}


class _QuietHandler(_Handler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass
