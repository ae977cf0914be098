"""The static site solvers browse: an index, a page per problem, and optionally their results.

`build_site` renders `site/templates` with Jinja2 from the public `problems/` folders only, copies
the starter and the notebook for download, and refuses to leave a site behind that contains any
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


@dataclass
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
    )


@dataclass
class ProblemSet:
    """A group of problems on the index (site/problem-sets.toml)."""

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
    from runner.problems.schema import Difficulty

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
