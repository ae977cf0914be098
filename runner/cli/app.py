"""The `grader` command: one typer app, a command per task of solvers, instructors and operators."""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from runner.cli.output import console, err, fail, markdown, print_result, rule
from runner.problems.catalogue import Catalogue, ProblemDir, UnknownProblem, find_problem_for_path
from runner.problems.schema import ProblemFormatError
from runner.settings import current as current_settings

INVALID_EXIT = 4  # `grader submit`: 0 graded, 2 usage, 3 the grader failed, 4 the file could not be graded
MIN_MUTATION_SCORE = 0.95  # `grader validate --mutate`: the target for killed / (total - equivalent)

app = typer.Typer(help="Graded exercises for ML papers: list, read, solve, test and submit problems.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def verbosity(verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                          help="log what the grader does (-v: steps, -vv: details)")):
    """Graded exercises for ML papers: list, read, solve, test and submit problems."""
    from rich.logging import RichHandler

    # Only the platform's own loggers: the libraries' (Celery's worker banner and "ready") stay theirs.
    handler = RichHandler(console=err, show_path=False)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s", datefmt="[%X]"))
    logger = logging.getLogger("runner")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)


def catalogue() -> Catalogue:
    """The catalogue, or a clear exit when there is no problems folder."""
    try:
        return Catalogue()
    except UnknownProblem as exc:
        fail(str(exc))


def problem_or_exit(ident: str) -> ProblemDir:
    """The problem by id or slug with valid metadata, or a clear exit."""
    try:
        pdir = catalogue().get(ident)
        pdir.meta  # noqa: B018 - validate now, for a clear message
        return pdir
    except (UnknownProblem, ProblemFormatError) as exc:
        fail(str(exc))


@app.command("list")
def list_problems(as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """List the problems."""
    rows = []
    for pdir in catalogue().problems():
        try:
            m = pdir.meta
        except ProblemFormatError as exc:
            err.print(f"[yellow]skipping[/] {exc}")
            continue
        rows.append({"id": m.id, "slug": m.slug, "key": m.key, "title": m.title, "difficulty": m.difficulty.value,
                     "tags": m.tags, "framework": m.framework, "device": m.device})
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="Problems")
    for col in ("#", "title", "difficulty", "tags"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["title"], r["difficulty"], ", ".join(r["tags"]))
    console.print(table)


@app.command()
def show(ident: str = typer.Argument(..., metavar="ID"),
         learn: bool = typer.Option(False, "--learn", help="also show the background"),
         hints: bool = typer.Option(False, "--hints", help="also show the hints")):
    """Show a problem's statement."""
    pdir = problem_or_exit(ident)
    m = pdir.meta
    console.print(f"[bold]{m.id}. {m.title}[/]  [cyan]{m.difficulty.value}[/]  {', '.join(m.tags)}")
    console.print(f"[dim]{m.paper.title} - {m.paper.section}[/]")
    markdown(pdir.text("statement.md"))
    for flag, name in ((learn, "learn.md"), (hints, "hints.md")):
        if flag:
            rule(name)
            markdown(pdir.text(name))
    console.print(f"\nStart with: [bold]grader start {m.key}[/]")


@app.command()
def start(ident: str = typer.Argument(..., metavar="ID"), directory: Optional[Path] = typer.Argument(None, metavar="DIR")):
    """Copy the starter (as solution.py), public tests and notebook into a working folder."""
    from runner.authoring.scaffold import make_workspace

    pdir = problem_or_exit(ident)
    target = directory or Path(pdir.key)
    try:
        written = make_workspace(pdir, target)
    except FileExistsError as exc:
        fail(str(exc))
    for path in written:
        console.print(f"  wrote {path}")
    console.print(f"\nEdit [bold]{target / 'solution.py'}[/], then:\n"
                  f"  grader test {target}\n  grader submit {pdir.key} {target / 'solution.py'}")
    if target / pdir.notebook.name in written:
        console.print(f"Or open [bold]{target / pdir.notebook.name}[/] in JupyterLab (jupyter lab) and submit from it.")
    else:
        console.print("No notebook: JupyterLab support is not installed (pip install 'diffusion-grader[lab]').")


def _problem_for_file(path: Path, ident: Optional[str]) -> ProblemDir:
    if ident:
        return problem_or_exit(ident)
    found = find_problem_for_path(path if path.is_dir() else path.parent)
    if found is None:
        fail(f"cannot tell which problem {path} is for: pass --problem ID")
    return found


@app.command()
def test(path: Path = typer.Argument(..., metavar="FILE_OR_DIR"),
         ident: Optional[str] = typer.Option(None, "--problem", help="problem ID")):
    """Run the public tests on your code, in this process (it is your own code)."""
    from runner.grading.pipeline import GradingError, grade

    pdir = _problem_for_file(path, ident)
    file = path / "solution.py" if path.is_dir() else path
    try:
        result = grade(pdir, file, "inprocess", unsafe_inprocess=True, hidden=False)
    except GradingError as exc:
        fail(str(exc))
    print_result(result)
    raise typer.Exit(0 if result.score == result.max_score else 1)


@app.command()
def submit(ident: str = typer.Argument(..., metavar="ID"), file: Path = typer.Argument(..., metavar="FILE"),
           as_json: bool = typer.Option(False, "--json", help="print the result record as JSON"),
           backend: str = typer.Option("local", "--backend", help="sandbox: local (bubblewrap) or docker"),
           db: Optional[str] = typer.Option(None, "--db", help="gradebook database URL [default: GRADER_DB_URL]"),
           export: Optional[str] = typer.Option(None, "--format", help="with --json: gradescope or exercism"),
           server: Optional[str] = typer.Option(None, "--server",
                                                help="send it to a course server instead of grading here "
                                                     "[default: GRADER_SERVER]"),
           token: Optional[str] = typer.Option(None, "--token", help="your API token [default: GRADER_TOKEN]")):
    """Grade a file with the public and hidden tests in the sandbox and store the result.

    FILE is a .py file or a notebook (.ipynb); a working folder (from `grader start`) stands for its solution.py."""
    file = submission_file(file)
    settings = current_settings()
    server = server or settings.server
    if server:
        _submit_remote(server, token or (settings.token.get_secret_value() if settings.token else None),
                       ident, file, as_json)
        return
    from runner.records.gradebook import Gradebook
    from runner.grading.lifecycle import limits_from_settings, submit as run_submit
    from runner.grading.pipeline import GradingError
    from runner.records.results import to_exercism, to_gradescope

    pdir = problem_or_exit(ident)
    try:
        limits = limits_from_settings()
    except ValueError as exc:
        fail(str(exc))
    if backend not in ("local", "docker"):
        fail(f"--backend must be local or docker, not {backend!r}")
    with console.status(f"grading {file.name} on {pdir.key} ({backend} sandbox)...", spinner="dots") \
            if not as_json else contextlib.nullcontext():
        try:
            result = run_submit(pdir, file, Gradebook(db), backend, limits=limits)
        except GradingError as exc:
            fail(f"grading failed (the submission is stored, marked failed): {exc}", code=3)
    if as_json:
        record = {"gradescope": to_gradescope, "exercism": to_exercism}.get(export or "", None)
        print(json.dumps(record(result) if record else result.model_dump(), indent=2))
    else:
        print_result(result, file)
    _exit_for(result)


def submission_file(path: Path) -> Path:
    """The file `grader submit` grades: FILE itself, or a working folder's solution.py; a clear
    exit, before anything is stored or sent, when there is none. A file of the wrong type is
    handed in all the same: like any file that cannot be loaded, it is stored with one `invalid` verdict."""
    if path.is_dir():
        if not (path / "solution.py").is_file():
            fail(f"{path} is a folder without a solution.py: pass the file to grade (.py or .ipynb)")
        return path / "solution.py"
    if not path.is_file():
        fail(f"{path}: no such file")
    return path


def _exit_for(result) -> None:
    """Exit 4 when the file could not be graded at all (it is stored, as invalid)."""
    if result.status == "invalid":
        raise typer.Exit(INVALID_EXIT)


def _submit_remote(server: str, token: str | None, ident: str, file: Path, as_json: bool) -> None:
    from runner.service.remote import RemoteError, submit_remote

    try:
        with console.status("submitting...", spinner="dots") as status:
            result = submit_remote(server, token, ident, file,
                                   on_status=(lambda text: None) if as_json else status.update)
    except RemoteError as exc:
        fail(str(exc), code=exc.exit_code)
    if as_json:
        print(json.dumps(result.model_dump(), indent=2))
    else:
        print_result(result, file)
    _exit_for(result)


@app.command()
def results(ident: Optional[str] = typer.Argument(None, metavar="[ID]"),
            as_json: bool = typer.Option(False, "--json"),
            db: Optional[str] = typer.Option(None, "--db", help="gradebook database URL [default: GRADER_DB_URL]")):
    """Your submission history from the gradebook."""
    from runner.records.gradebook import Gradebook

    key = problem_or_exit(ident).key if ident else None
    rows = Gradebook(db).history(key)
    if as_json:
        print(json.dumps([{"id": r.id, "problem": r.problem, "status": r.status, "score": r.score,
                           "max_score": r.max_score, "sha256": r.sha256, "filename": r.filename,
                           "created_at": r.created_at.isoformat()} for r in rows], indent=2))
        return
    if not rows:
        where = f" for {key}" if key else ""
        console.print(f"No submissions{where} yet. Submit a file with: grader submit {key or 'ID'} FILE "
                      f"(FILE: your solution.py or notebook; `grader start {key or 'ID'} DIR` makes one)",
                      markup=False, highlight=False)
        return
    table = Table(title="Submissions")
    for col in ("#", "when (UTC)", "problem", "file", "status", "score"):
        table.add_column(col)
    for r in rows:
        score = f"{r.score:g}/{r.max_score:g}" if r.score is not None else "-"
        table.add_row(str(r.id), r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.problem, r.filename, r.status, score)
    console.print(table)


@app.command()
def validate(idents: Optional[list[str]] = typer.Argument(None, metavar="[ID ...]"),
             backend: str = typer.Option("local", "--backend"),
             unsafe_inprocess: bool = typer.Option(False, "--unsafe-inprocess",
                                                   help="run the reference, starter, mutants and empty "
                                                        "answers in this process"),
             mutate: bool = typer.Option(False, "--mutate",
                                         help="instead: mutation analysis of the tests (slow): grade every "
                                              "mutant of the reference made by cosmic-ray's operators"),
             limit: Optional[int] = typer.Option(None, "--limit", min=1,
                                                 help="with --mutate: grade N mutants, drawn with a fixed seed"),
             jobs: Optional[int] = typer.Option(None, "--jobs", min=1,
                                                help="with --mutate: mutants graded at once (default: one per core)"),
             min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0,
                                                       help="with --mutate: exit 1 below this mutation score "
                                                            f"(default {MIN_MUTATION_SCORE:g})")):
    """Check problems: metadata, files, statement, example, coverage map, reference, alternatives,
    starter, mutants, empty answers (or, with --mutate, the mutation score of their tests)."""
    if not mutate and (limit is not None or jobs is not None or min_score is not None):
        fail("--limit, --jobs and --min-score go with --mutate")
    pdirs = [problem_or_exit(i) for i in idents] if idents else catalogue().problems()
    if mutate:
        if unsafe_inprocess:
            fail("--mutate grades every mutant in the sandbox: leave out --unsafe-inprocess")
        _mutate(pdirs, backend, limit, jobs, MIN_MUTATION_SCORE if min_score is None else min_score)
        return
    from rich.markup import escape

    from runner.authoring.validation import validate as run_validate

    all_ok = True
    for pdir in pdirs:
        with console.status(f"validating {pdir.key}..."):
            report = run_validate(pdir, "inprocess" if unsafe_inprocess else backend, unsafe=unsafe_inprocess)
        console.print(f"[bold]{pdir.key}[/]")
        for c in report.checks:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            console.print(f"  {mark} {escape(c.name)}" + (f"  [dim]{escape(c.detail)}[/]" if c.detail else ""),
                          highlight=False)
        all_ok &= report.ok
    raise typer.Exit(0 if all_ok else 1)


def _mutate(pdirs: list[ProblemDir], backend: str, limit: int | None, jobs: int | None, min_score: float) -> None:
    """`grader validate --mutate`: each problem's mutation report; exit 1 when a score is too low."""
    from runner.authoring.mutants import MutantError
    from runner.authoring.mutation import analyse
    from runner.authoring.operators import MutationUnavailable
    from runner.cli.output import print_mutation_report

    all_ok = True
    for pdir in pdirs:
        with console.status(f"{pdir.key}: making the mutants...") as status:
            def progress(outcome, done, total):
                status.update(f"{pdir.key}: graded {done}/{total} mutants (last: {outcome.status})")

            try:
                report = analyse(pdir, backend, jobs=jobs, limit=limit, on_outcome=progress)
            except (MutantError, MutationUnavailable) as exc:
                fail(str(exc))
        all_ok &= print_mutation_report(report, min_score)
    raise typer.Exit(0 if all_ok else 1)


@app.command()
def new(ident: int = typer.Argument(..., metavar="ID"), slug: str = typer.Argument(..., metavar="SLUG"),
        title: str = typer.Option("TODO title", "--title"),
        framework: str = typer.Option("torch", "--framework",
                                      help="what the starter, reference and tests use: torch or numpy")):
    """Scaffold a problem folder (problems/, solutions/, graders/) for an instructor to fill in."""
    from runner.authoring.scaffold import FRAMEWORKS, scaffold_problem

    if framework not in FRAMEWORKS:
        fail(f"--framework {framework!r}: choose one of {', '.join(FRAMEWORKS)}")
    try:
        written = scaffold_problem(catalogue().root, ident, slug, title, framework)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
    for path in written:
        console.print(f"  wrote {path}")
    console.print(f"\nFill them in (replace every TODO), then run: grader notebooks {ident} && grader validate {ident}",
                  highlight=False)


@app.command()
def bench(ident: str = typer.Argument("413", metavar="ID"), repeats: int = typer.Option(5, "--repeats"),
          backend: str = typer.Option("local", "--backend",
                                      help="local, or docker: the docker backend's rows next to local's")):
    """Time grading the reference through the sandbox vs the same tests in-process."""
    from runner.grading.bench import grading_overhead
    from runner.sandbox.backends import BACKENDS, SandboxUnavailable, get_backend

    if backend not in BACKENDS:
        fail(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    try:
        get_backend(backend).check()
    except SandboxUnavailable as exc:
        fail(str(exc))
    grading_overhead(problem_or_exit(ident), repeats, console, backend)


site_app = typer.Typer(help="The static problem site: build it, serve it locally.", no_args_is_help=True)
app.add_typer(site_app, name="site")


@site_app.command("build")
def site_build(out: Path = typer.Argument(Path("_site"), metavar="OUT", help="folder for the site"),
               gradebook: bool = typer.Option(False, "--gradebook", help="add a page with your results"),
               db: Optional[str] = typer.Option(None, "--db", help="gradebook database URL [default: GRADER_DB_URL]")):
    """Render the problem site (index, a page per problem) from problems/ into OUT."""
    from runner.site.build import SiteError, build_site

    try:
        report = build_site(out, gradebook_url=db, results=gradebook)
    except SiteError as exc:
        fail(str(exc))
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"wrote {len(report.pages)} pages to {report.out}; view them with: grader site serve --dir {out}",
                  soft_wrap=True, highlight=False)


@site_app.command("serve")
def site_serve(port: int = typer.Option(8000, "--port", help="port on 127.0.0.1"),
               directory: Path = typer.Option(Path("_site"), "--dir", help="the built site")):
    """Serve a built site on http://127.0.0.1:PORT/ until interrupted."""
    from runner.site.serve import make_server

    if not (directory / "index.html").is_file():
        fail(f"{directory} has no index.html: run `grader site build {directory}` first")
    try:
        server = make_server(directory, port, quiet=False)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; pick another --port")
    console.print(f"serving {directory} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)",
                  soft_wrap=True, highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command()
def notebooks(idents: Optional[list[str]] = typer.Argument(None, metavar="[ID ...]"),
              check: bool = typer.Option(False, "--check", help="write nothing; exit 1 if a notebook is stale")):
    """Regenerate each problem's notebook (problems/NNN-slug/NNN-slug.ipynb) from its folder."""
    from runner.jupyter.notebooks import stale_notebooks, write_notebook

    pdirs = [problem_or_exit(i) for i in idents] if idents else catalogue().problems()
    if check:
        stale = [p for p in stale_notebooks() if p in pdirs]
        for pdir in stale:
            err.print(f"stale: {pdir.notebook} (run `grader notebooks {pdir.meta.id}`)", highlight=False)
        raise typer.Exit(1 if stale else 0)
    for pdir in pdirs:
        console.print(f"  {'wrote' if write_notebook(pdir) else 'unchanged'} {pdir.notebook}", highlight=False)


course_app = typer.Typer(help="An nbgrader course built from the problems.", no_args_is_help=True)
app.add_typer(course_app, name="course")


@course_app.command("build")
def course_build(directory: Path = typer.Argument(..., metavar="DIR", help="the nbgrader course folder"),
                 problems: Optional[str] = typer.Option(None, "--problems", help="IDs, comma-separated (default: all)"),
                 assignment: str = typer.Option("ps1", "--assignment", help="nbgrader assignment name"),
                 backend: str = typer.Option("local", "--backend", help="sandbox that checks the references")):
    """Write source notebooks (reference between solution markers, sandboxed test cells) and nbgrader_config.py."""
    from runner.jupyter.course import CourseError, build_course

    idents = [i.strip() for i in problems.split(",") if i.strip()] if problems else None
    pdirs = [problem_or_exit(i) for i in idents] if idents else catalogue().problems()
    with console.status("grading the references to set each problem's points..."):
        try:
            report = build_course(directory, pdirs, assignment, backend=backend)
        except CourseError as exc:
            fail(str(exc))
    for path in report.notebooks:
        console.print(f"  wrote {path}  ({report.points[path.stem]:g} points)", highlight=False)
    config = directory / "nbgrader_config.py"
    console.print(f"  {'wrote' if report.config_written else 'kept'} {config}", highlight=False)
    console.print(f"\nNext: cd {directory} && nbgrader generate_assignment {assignment}")


db_app = typer.Typer(help="The gradebook's database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
DB_OPTION = typer.Option(None, "--db", help="gradebook database URL [default: GRADER_DB_URL]")


def _engine_or_exit(url: Optional[str]):
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError

    url = url or current_settings().gradebook_url
    try:
        return create_engine(url)
    except (ArgumentError, ImportError) as exc:
        fail(f"cannot open the gradebook database {url!r}: {exc}")


@contextlib.contextmanager
def _database_errors(engine):
    """An unreachable database or an outdated schema ends the command with one clear line."""
    from sqlalchemy.exc import OperationalError

    from runner.records import schema

    try:
        yield
    except OperationalError as exc:
        fail(f"cannot reach the gradebook at {schema.shown(engine)}: {str(exc.orig).strip()}")
    except schema.SchemaError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(db: Optional[str] = DB_OPTION):
    """Create the gradebook's tables, or migrate them to the newest schema (safe to run concurrently)."""
    from runner.records import schema

    engine = _engine_or_exit(db)
    with _database_errors(engine):
        before, after = schema.upgrade(engine)
    state = "already at" if before == after else f"{before or 'empty'} ->"
    console.print(f"{schema.shown(engine)}: {state} revision {after}", highlight=False)


@db_app.command("status")
def db_status(db: Optional[str] = DB_OPTION):
    """The gradebook's schema revision and whether it is the newest; exit 1 when it is not."""
    from runner.records import schema

    engine = _engine_or_exit(db)
    with _database_errors(engine):
        schema.check(engine)
    console.print(f"{schema.shown(engine)}: revision {schema.head()} (the newest)", highlight=False)


def _require_schema() -> None:
    """Servers and workers refuse to start on a gradebook whose schema is not the newest."""
    from runner.records import schema

    engine = _engine_or_exit(None)
    with _database_errors(engine):
        schema.prepare(engine)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(8080, "--port")):
    """Run the course server (HTTP API; grading goes to the queue at $GRADER_BROKER_URL)."""
    import uvicorn

    _require_schema()
    uvicorn.run("runner.service.server:app", host=host, port=port, log_level="info")


@app.command()
def worker(queues: str = typer.Option("cpu", "--queues", help="cpu, gpu or cpu,gpu"),
           hostname: Optional[str] = typer.Option(None, "--hostname")):
    """Start a grading worker on the queue at $GRADER_BROKER_URL."""
    from runner.service.queue import run_worker

    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names or set(names) - {"cpu", "gpu"}:
        fail("--queues takes cpu, gpu or cpu,gpu")
    _require_schema()
    run_worker(names, hostname=hostname)


@app.command()
def token(user: str = typer.Argument(..., metavar="USER"),
          db: Optional[str] = typer.Option(None, "--db", help="gradebook database URL [default: GRADER_DB_URL]")):
    """Create an API token for a solver (printed once; only its hash is stored)."""
    from runner.records.gradebook import Gradebook, create_token

    print(create_token(Gradebook(db), user))


@app.command("config")
def show_config(as_json: bool = typer.Option(False, "--json", help="machine-readable output")):
    """Print the effective settings: every GRADER_* variable, its value and where it came from."""
    rows = current_settings().rows()
    if as_json:
        print(json.dumps([{"variable": v, "value": val, "source": src, "help": h} for v, val, src, h in rows], indent=2))
        return
    table = Table(title="Settings")
    for col in ("variable", "value", "from", "meaning"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def main() -> None:
    """The `grader` entry point: settings errors end with a message naming the variable."""
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:
        err.print("[bold red]error:[/] invalid settings: " + "; ".join(
            f"GRADER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()), highlight=False)
        raise SystemExit(2) from None
