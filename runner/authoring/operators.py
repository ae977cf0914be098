"""Mutants of a reference solution, made by the operators of cosmic-ray, a mutation-testing library.

Each of its core operators (those that need no arguments from the user) is applied at each place it
applies: `+` becomes `-`, `<` becomes `<=`, a number n becomes n + 1 or n - 1, a condition is negated,
a loop runs zero times, ... Mutants that do not compile are left out, and so are mutants that run as
the reference or an earlier mutant does (the same syntax tree: identical source, or a change to an
annotation, which `from __future__ import annotations` never evaluates).
"""
from __future__ import annotations

import ast
import difflib
import warnings
from dataclasses import dataclass


class MutationUnavailable(RuntimeError):
    """The mutation library is not installed; the message says how to install it."""


def _library():
    """cosmic-ray's modules that make mutants, or MutationUnavailable."""
    try:
        import cosmic_ray.ast
        import cosmic_ray.mutating
        import cosmic_ray.plugins
    except ImportError:
        raise MutationUnavailable('mutation analysis needs cosmic-ray: pip install -e ".[authoring]"') from None
    return cosmic_ray


@dataclass(frozen=True)
class GeneratedMutant:
    """The reference with one change made by one operator of the mutation library."""

    number: int  # its place among the problem's mutants, from 1
    operator: str  # the library's name of the operator, e.g. core/ReplaceBinaryOperator_Add_Sub
    occurrence: int  # which of the operator's places in the file
    line: int  # the first line of the reference it changes
    original: str  # the reference's changed lines
    mutated: str  # what the mutant has instead
    source: str
    diff: str  # unified diff against the reference

    @property
    def name(self) -> str:
        """`#12 core/ReplaceBinaryOperator_Add_Sub (line 40)`."""
        return f"#{self.number} {self.operator} (line {self.line})"


def _operators():
    """The library's operators that need no arguments from the user, by name, in a fixed order."""
    plugins = _library().plugins
    for name in plugins.operator_names():
        cls = plugins.get_operator(name)
        if not cls.arguments():  # the variable operators need variable names chosen by a user
            yield name, cls()


def changed_lines(reference: str, mutant: str) -> tuple[int, str, str]:
    """(first changed line of the reference, its changed lines, the mutant's lines instead)."""
    ref, mut = reference.splitlines(), mutant.splitlines()
    first, old, new = 0, [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ref, mut, autojunk=False).get_opcodes():
        if tag != "equal":
            first = first or i1 + 1
            old += ref[i1:i2]
            new += mut[j1:j2]
    return first, "\n".join(s.strip() for s in old), "\n".join(s.strip() for s in new)


def runs_as(source: str) -> str:
    """What of `source` runs, as text: its syntax tree without positions and, under `from __future__
    import annotations` (which never evaluates them), without annotations. Raises SyntaxError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. `x is 1`, which a comparison operator can make
        tree = ast.parse(source)
        compile(tree, "mutant", "exec")  # what the parser lets through but the compiler refuses
    lazy = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
               for n in tree.body)
    if lazy:
        for node in ast.walk(tree):
            if isinstance(node, ast.arg):
                node.annotation = None
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.returns = None
            elif isinstance(node, ast.AnnAssign):
                node.annotation = ast.Constant(None)
    return ast.dump(tree)


@dataclass
class Generated:
    """The mutants of a reference, and how many the library made that are not among them."""

    mutants: list[GeneratedMutant]
    uncompilable: int = 0  # do not compile
    duplicates: int = 0  # run as the reference or an earlier mutant does (e.g. a change to an annotation)


def generate_mutants(reference: str, filename: str = "solution.py") -> Generated:
    """Every mutant of `reference` the library's operators make, less those that do not compile and
    those that run as the reference or an earlier mutant does."""
    library = _library()
    nodes = list(library.ast.ast_nodes(library.ast.get_ast(reference)))
    out = Generated([])
    seen = {runs_as(reference)}
    for name, operator in _operators():
        places = sum(1 for node in nodes for _ in operator.mutation_positions(node))
        for occurrence in range(places):
            source = library.mutating.mutate_code(reference, operator, occurrence)
            if source is None:
                continue
            try:
                code = runs_as(source)
            except (SyntaxError, ValueError):
                out.uncompilable += 1
                continue
            if code in seen:
                out.duplicates += 1
                continue
            seen.add(code)
            line, old, new = changed_lines(reference, source)
            number = len(out.mutants) + 1
            diff = "".join(difflib.unified_diff(reference.splitlines(keepends=True), source.splitlines(keepends=True),
                                                f"a/{filename}", f"b/{filename} (mutant #{number})", n=2))
            out.mutants.append(GeneratedMutant(number, name, occurrence, line, old, new, source, diff))
    return out
