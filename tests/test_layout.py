"""The package's shape: subpackages that import each other without cycles, and a docstring on
every public module, class and function."""
import ast
from pathlib import Path

from tests.support.helpers import ROOT

PACKAGE = ROOT / "runner"


def stage(module: str) -> str | None:
    """`runner.sandbox.client` -> `sandbox`; top-level modules (`runner.settings`) are their own stage."""
    parts = module.split(".")
    return parts[1] if parts[0] == "runner" and len(parts) > 1 else None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every runner module a file imports, at any depth, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(node):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m.startswith("runner.")}


def stage_graph() -> dict[str, set[str]]:
    """stage -> the other stages it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        src = stage(module_name(path))
        if src is None:
            continue
        targets = {stage(m) for m in imported_modules(path)} - {None, src}
        graph.setdefault(src, set()).update(targets)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def walk(node, trail):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return trail + [node, nxt]
            if nxt not in state and (cycle := walk(nxt, trail + [node])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node, [])):
            return cycle
    return None


def test_stages_import_each_other_without_cycles():
    graph = stage_graph()
    assert {"problems", "sandbox", "grading", "records", "cli"} <= set(graph), graph
    assert find_cycle(graph) is None, f"import cycle between subpackages: {' -> '.join(find_cycle(graph))}"


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_sandbox_depends_only_on_light_stages():
    """The sandboxed process imports the package: the sandbox may use handles and settings, never
    the trusted stages (problems, grading, records, service...)."""
    assert stage_graph()["sandbox"] <= {"handles", "settings", "modules"}, stage_graph()["sandbox"]


def undocumented(path: Path) -> list[str]:
    """Public modules, classes, functions and methods of one file that have no docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(ROOT)
    missing = [] if ast.get_docstring(tree) or path.name == "__main__.py" else [f"{rel}: module"]

    def check(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
                public = not name.startswith("_")
                if public and not ast.get_docstring(node):
                    missing.append(f"{rel}:{node.lineno}: {prefix}{name}")
                if isinstance(node, ast.ClassDef) and public:
                    check(node.body, f"{name}.")

    check(tree.body, "")
    return missing


def test_every_public_name_has_a_docstring():
    missing = [m for path in sorted(PACKAGE.rglob("*.py")) for m in undocumented(path)]
    assert not missing, f"{len(missing)} without a docstring:\n" + "\n".join(missing)


def test_the_docstring_check_can_fail(tmp_path):
    bad = tmp_path / "runner_mod.py"
    bad.write_text('"""A module."""\ndef public():\n    pass\n\n\nclass K:\n    """K."""\n    def m(self):\n        pass\n')
    import tests.test_layout as layout

    saved = layout.ROOT
    layout.ROOT = tmp_path
    try:
        assert [m.split(": ")[1] for m in undocumented(bad)] == ["public", "K.m"]
    finally:
        layout.ROOT = saved
