"""The static site solvers browse: an index, a page per problem, and optionally their results.

`build_site` renders `site/templates` with Jinja2 from the public `problems/` folders only, copies
the starter, the public tests and the notebook for download, and refuses to leave a site behind that contains any
line of `solutions/` or `graders/` (runner.site.leaks). The results page is runner.site.results_page
and the loopback server runner.site.serve.
"""
from __future__ import annotations

import html
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from runner.problems.catalogue import Catalogue, ProblemDir
from runner.problems.schema import ProblemFormatError
from runner.site.leaks import find_leaks
from runner.site.markdown import highlight_code, pygments_css, render_markdown, split_list_items

SITE_DIR = Path(__file__).resolve().parents[2] / "site"  # templates and static assets of the checkout
SITE_NAME = "diffusion-grader"
MARKER = ".grader-site"  # marks a folder this builder made, so a rebuild may empty it
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


class SiteError(Exception):
    """The site cannot be built (a bad output folder, or a leak); the message says why."""


@dataclass
class BuildReport:
    """What a build wrote, and what it warns about (broken problems, images without alt text)."""

    out: Path
    pages: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(eq=False)
class ProblemPage:
    """The rendered parts of one problem's page."""

    pdir: ProblemDir
    statement: str
    learn: str
    hints_intro: str
    hints: list[str]
    starter: str
    has_starter: bool
    has_notebook: bool
    public_tests: list[Path] = field(default_factory=list)  # tests/test_*.py of the problem folder
    set: ProblemSet | None = None  # the set it is listed in (None under "More problems")
    prev: ProblemPage | None = None  # its neighbours in that set
    next: ProblemPage | None = None

    @property
    def meta(self):
        """The problem's metadata."""
        return self.pdir.meta

    @property
    def single_names(self) -> list[tuple[str, str]]:
        """(module, name) of each `imports` entry that allows one name of a module, not all of it
        ("transformers.DynamicCache"), for the page to show as `from module import name`."""
        top_level = [e for e in self.meta.imports if "." not in e]
        return [tuple(e.rsplit(".", 1)) for e in self.meta.imports
                if "." in e and not any(e.startswith(t + ".") for t in top_level)]

    @property
    def href(self) -> str:
        """The page's path inside the site."""
        return f"problems/{self.pdir.key}/index.html"

    @property
    def position(self) -> int:
        """1-based place in its set."""
        return self.set.problems.index(self) + 1 if self.set else 0

    @property
    def commands(self) -> list[tuple[str, str]]:
        """(command, what it does) for solving the problem, shown on its page."""
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

    sets = _problem_sets(pages, report.warnings)
    write("index.html", "index.html", page="index", sets=sets,
          tags=sorted({t for p in pages for t in p.meta.tags}, key=str.lower),
          difficulties=_difficulties(pages), total=len(pages))
    for page in pages:
        folder = out / "problems" / page.pdir.key
        folder.mkdir(parents=True, exist_ok=True)
        _copy_downloads(page, folder)
        _copy_images(page, folder, report.warnings)
        write(page.href, "problem.html", page="problem", p=page)
    if results:
        from runner.site.results_page import results_context

        write("results.html", "results.html", page="results", **results_context(gradebook_url, pages))

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
        public_tests=sorted(pdir.public_tests.glob("test_*.py")),
    )


@dataclass(eq=False)
class ProblemSet:
    """A group of problems on the index (site/problem-sets.toml); `key` is what problem.toml names."""

    key: str
    title: str
    about: str = ""
    paper_title: str = ""
    paper_url: str = ""
    problems: list[ProblemPage] = field(default_factory=list)
    linked: bool = True  # its pages link to their neighbours (not so for "More problems")

    @property
    def anchor(self) -> str:
        """The id of its section on the index."""
        return f"set-{self.key}"


def read_set_spec(path: Path | None = None) -> list[dict]:
    """The `[[set]]` tables of site/problem-sets.toml; SiteError naming the file and entry when one
    lacks a key or a title, repeats a key, or still lists its problems (membership is in problem.toml)."""
    path = path or SITE_DIR / "problem-sets.toml"
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8")).get("set", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SiteError(f"{path}: {exc}") from None
    seen = set()
    for i, entry in enumerate(spec):
        where = f"{path}: set[{i}]"
        if not entry.get("key") or not entry.get("title"):
            raise SiteError(f"{where}: needs a key and a title")
        if "problems" in entry:
            raise SiteError(f"{where}: a problem joins a set with `set = \"{entry['key']}\"` in its "
                            "problem.toml, not through a list here")
        if entry["key"] in seen:
            raise SiteError(f"{where}: the key {entry['key']!r} is used twice")
        seen.add(entry["key"])
    return spec


def _problem_sets(pages: list[ProblemPage], warnings: list[str]) -> list[ProblemSet]:
    """The sets of `site/problem-sets.toml` in order, each holding the problems whose problem.toml
    names it, in catalogue (id) order; the rest last. Each page learns its set and neighbours."""
    spec, sets = read_set_spec(), []
    for entry in spec:
        paper = entry.get("paper", {})
        members = [p for p in pages if p.meta.set == entry["key"]]
        if members:
            sets.append(ProblemSet(entry["key"], entry["title"], entry.get("about", ""),
                                   paper.get("title", ""), paper.get("url", ""), members))
    known = {e["key"] for e in spec}
    for p in pages:
        if p.meta.set and p.meta.set not in known:
            warnings.append(f"{p.pdir.key}: problem.toml names the set {p.meta.set!r}, which "
                            "site/problem-sets.toml does not define; it is listed under More problems")
    rest = [p for p in pages if p.meta.set not in known]
    if rest:
        sets.append(ProblemSet("more", "More problems" if sets else "Problems", problems=rest, linked=False))
    for s in sets:
        for i, page in enumerate(s.problems):
            page.set = s
            if s.linked:
                page.prev = s.problems[i - 1] if i else None
                page.next = s.problems[i + 1] if i + 1 < len(s.problems) else None
    return sets


def _difficulties(pages: list[ProblemPage]) -> list[str]:
    from runner.problems.schema import Difficulty

    present = {p.meta.difficulty for p in pages}
    return [d.value for d in Difficulty if d in present]


def _copy_downloads(page: ProblemPage, folder: Path) -> None:
    if page.has_starter:
        shutil.copyfile(page.pdir.starter, folder / "starter.py")
    if page.has_notebook:
        shutil.copyfile(page.pdir.notebook, folder / page.pdir.notebook.name)
    if page.public_tests:
        (folder / "tests").mkdir(exist_ok=True)
        for test in page.public_tests:
            shutil.copyfile(test, folder / "tests" / test.name)


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
