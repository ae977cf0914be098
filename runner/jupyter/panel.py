"""The JupyterLab panel's server side: a Jupyter server extension under `/grader/api/`.

    GET  /grader/api/problems   every problem with its status from the gradebook
    POST /grader/api/open       {"problem": ID}: the problem's notebook in the server's root folder
                                (KEY/KEY.ipynb, copied the first time); {"path": ...}
    POST /grader/api/submit     {"path": NOTEBOOK}: grade the notebook's `%%solution` cell as saved,
                                with the public and hidden tests in the sandbox, as `submit()` does,
                                and store it in the gradebook; the result and the problem's new status

The panel itself is the prebuilt labextension bundled next to this module (`labextension/`, built
from the repository's `labextension/` folder). `pip install` puts it where JupyterLab looks for
prebuilt extensions and enables this server extension (jupyter_server_config.d); both are also
declared by the `_jupyter_*_paths` functions below, for `jupyter labextension develop` and
`jupyter server extension enable`.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from runner.jupyter.kernel import MARKER, is_starter, module_source, submit_source
from runner.problems.catalogue import Catalogue, ProblemDir, UnknownProblem
from runner.problems.schema import ProblemFormatError
from runner.records.gradebook import Gradebook
from runner.records.results import Result

LABEXTENSION = "diffusion-grader-lab"  # the npm package's name, and its folder under labextensions/
BUNDLE = Path(__file__).with_name("labextension")  # holds LABEXTENSION/ (package.json, static/)


def _jupyter_labextension_paths() -> list[dict]:
    return [{"src": f"labextension/{LABEXTENSION}", "dest": LABEXTENSION}]


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "runner.jupyter.panel"}]


class SubmitRefused(ValueError):
    """The notebook cannot be submitted as it is (no solution cell, the untouched starter...)."""


# ---------------------------------------------------------------- what the handlers answer


def problem_status(pdir: ProblemDir, book: Gradebook) -> dict:
    """The problem's row of the panel: id, title, difficulty and its status in the gradebook,
    `not started`, `attempted` (with the best score) or `solved` (a full score once)."""
    meta = pdir.meta
    graded = [r for r in book.history(pdir.key, limit=10_000) if r.score is not None and r.max_score]
    best = max(graded, key=lambda r: r.score / r.max_score, default=None)
    if best is None:
        state = "not started" if not book.history(pdir.key, limit=1) else "attempted"
    else:
        state = "solved" if best.score >= best.max_score else "attempted"
    return {"key": pdir.key, "id": meta.id, "title": meta.title, "difficulty": meta.difficulty.value,
            "status": state, "best_score": best.score if best else None,
            "max_score": best.max_score if best else None, "attempts": len(graded)}


def list_problems(catalogue: Catalogue | None = None) -> list[dict]:
    """Every problem whose problem.toml is valid, in id order, with its status."""
    catalogue = catalogue or Catalogue()
    book = Gradebook()
    rows = []
    for pdir in catalogue.problems():
        try:
            rows.append(problem_status(pdir, book))
        except ProblemFormatError:
            continue
    return rows


def inside(root: Path, relative: str) -> Path:
    """`relative` (a path as the contents API writes it) under `root`; ValueError when it leaves it."""
    path = (root / relative.lstrip("/")).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{relative}: not inside the server's root folder")
    return path


def open_notebook(root: Path, ident: str, catalogue: Catalogue | None = None) -> tuple[str, bool]:
    """The problem's notebook in `root`, at KEY/KEY.ipynb where `grader start ID KEY` puts it; the
    problem's notebook is copied there the first time, and never overwritten after.
    (its path relative to root, whether it was copied now)"""
    import shutil

    pdir = (catalogue or Catalogue()).get(ident)
    notebook = inside(root, f"{pdir.key}/{pdir.notebook.name}")
    made = not notebook.is_file()
    if made:
        if not pdir.notebook.is_file():
            raise FileNotFoundError(f"{pdir.key} has no notebook (`grader notebooks {pdir.key}` makes it)")
        notebook.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pdir.notebook, notebook)
    return notebook.relative_to(root.resolve()).as_posix(), made


def solution_cell(nb: dict, catalogue: Catalogue | None = None) -> tuple[ProblemDir, str]:
    """(problem, source) of a notebook's `%%solution ID` cell (the first one); the problem is the
    cell's ID, else the notebook's `grader.problem` metadata. SubmitRefused when there is none."""
    catalogue = catalogue or Catalogue()
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]
    for cell in cells:
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        if src.startswith(MARKER):
            ident = src.split("\n", 1)[0][len(MARKER):].strip()
            ident = ident or ((nb.get("metadata") or {}).get("grader") or {}).get("problem", "")
            if not ident:
                raise SubmitRefused(f"the `{MARKER}` cell names no problem: its first line is `{MARKER} ID`")
            try:
                return catalogue.get(ident), src
            except UnknownProblem as exc:
                raise SubmitRefused(f"`{MARKER} {ident}`: {exc}") from None
    raise SubmitRefused(f"this notebook has no `{MARKER} ID` cell: write your solution in a code cell "
                        f"whose first line is `{MARKER} ID`")


def submit_notebook(path: Path, backend: str = "local") -> tuple[Result, dict]:
    """Grade the saved notebook's `%%solution` cell and store it: (result, the problem's new status).
    The untouched starter is refused, as `submit()` refuses it."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SubmitRefused(f"{path.name}: not a readable notebook ({exc})") from None
    pdir, cell = solution_cell(nb)
    source = module_source(cell)
    if is_starter(pdir, source):
        raise SubmitRefused(f"{pdir.key}: not submitted: your solution is still the starter. Write your "
                            f"code in the `{MARKER}` cell, then submit again.")
    result = submit_source(pdir, source, backend)
    return result, problem_status(pdir, Gradebook())


def result_record(result: Result) -> dict:
    """What the panel shows of a result: scores and each test's verdict (hidden tests show their
    name and verdict only, as everywhere)."""
    return {"problem": result.problem, "submission_id": result.submission_id, "status": result.status,
            "score": result.score, "max_score": result.max_score, "backend": result.backend,
            "duration_s": round(result.duration_s, 2),
            "tests": [{"name": t.name, "status": t.status, "score": t.score, "max_score": t.max_score,
                       "message": t.message, "visibility": t.visibility} for t in result.tests]}


# ---------------------------------------------------------------- the server extension


def _handlers():
    from jupyter_server.base.handlers import APIHandler
    from tornado import web

    class GraderHandler(APIHandler):
        def initialize(self, root: Path):
            self.root = root

        def reply(self, status: int, body: dict) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))

        def body(self) -> dict:
            try:
                data = json.loads(self.request.body or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise web.HTTPError(400, "the request body is not a JSON object")
            return data

    class ProblemsHandler(GraderHandler):
        @web.authenticated
        async def get(self):
            try:
                rows = await asyncio.get_running_loop().run_in_executor(None, list_problems)
            except LookupError as exc:
                return self.reply(404, {"message": str(exc)})
            self.reply(200, {"problems": rows})

    class OpenHandler(GraderHandler):
        @web.authenticated
        async def post(self):
            ident = str(self.body().get("problem", ""))
            try:
                path, created = open_notebook(self.root, ident)
            except (LookupError, OSError, ValueError) as exc:
                return self.reply(404, {"message": str(exc)})
            self.reply(200, {"path": path, "created": created})

    class SubmitHandler(GraderHandler):
        @web.authenticated
        async def post(self):
            try:
                path = inside(self.root, str(self.body().get("path", "")))
            except ValueError as exc:
                return self.reply(400, {"message": str(exc)})
            if path.suffix != ".ipynb" or not path.is_file():
                return self.reply(400, {"message": f"{path.name}: not a saved notebook"})
            try:
                result, status = await asyncio.get_running_loop().run_in_executor(None, submit_notebook, path)
            except SubmitRefused as exc:
                return self.reply(400, {"message": str(exc)})
            except Exception as exc:  # the grader's own failure; the gradebook marks it failed
                self.log.exception("grading %s failed", path)
                return self.reply(500, {"message": f"grading failed (the submission is stored, marked "
                                                   f"failed): {type(exc).__name__}: {exc}"})
            self.reply(200, {"result": result_record(result), "problem": status})

    return ProblemsHandler, OpenHandler, SubmitHandler


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    problems, open_, submit = _handlers()
    root = Path(serverapp.root_dir).expanduser().resolve()
    base = url_path_join(serverapp.web_app.settings["base_url"], "grader", "api")
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "problems"), problems, {"root": root}),
        (url_path_join(base, "open"), open_, {"root": root}),
        (url_path_join(base, "submit"), submit, {"root": root}),
    ])
    serverapp.log.info("diffusion-grader: the exercises panel's API is at %s", base)
