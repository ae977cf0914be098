"""Mutants: realistic mistakes, written as edits of the reference solution.

`graders/NNN-slug/mutants.toml` holds one table per mistake; each says what is wrong and lists
find/replace edits applied to `solutions/NNN-slug/solution.py`. Keeping only the edits means a
change to the reference reaches every mutant, and a reviewer reads the mistake, not 100 lines.

    [corrupts_pad]
    mistake = "ignores valid_mask, so pads are resampled and marked"
    [[corrupts_pad.edit]]
    find = "resample = draw < t[:, None]"
    replace = "resample = draw >= 0"

The same file declares the generated mutants (`grader validate --mutate`, runner.authoring.mutation)
that no test can kill because they change no behaviour the statement specifies: one
`[[equivalent]]` per such mutant, naming the line it changes by its text, so that edits elsewhere in
the reference leave the entry in force. `equivalent` is therefore not a mistake's name.

    [[equivalent]]
    original = "resampled = (u < t[:, None]) & valid"    # the reference's line, as it reads there
    mutated = "resampled = (u <= t[:, None]) & valid"    # the same line in the mutant
    reason = "u is drawn from [0, 1): u == t has probability about 2**-24 at a position"

Whitespace does not count in `original` and `mutated`; a mutant that changes several lines gives
them joined by newlines.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from runner.problems.catalogue import ProblemDir


class MutantError(ValueError):
    """A mutants.toml entry that cannot be applied; the message names the file and entry."""

    pass


@dataclass(frozen=True)
class Mutant:
    """A realistic mistake: the reference with a few edits, and a sentence saying what is wrong."""

    name: str
    mistake: str
    source: str

    def write(self, folder: Path) -> Path:
        """Write the mutant as NAME.py into `folder`; its path."""
        path = folder / f"{self.name}.py"
        path.write_text(self.source, encoding="utf-8")
        return path


EQUIVALENT = "equivalent"  # the key of the [[equivalent]] tables: never a mistake's name


@dataclass(frozen=True)
class Equivalent:
    """A generated mutant the instructor declared equivalent: the line it changes and why."""

    original: str
    mutated: str
    reason: str

    def matches(self, original: str, mutated: str) -> bool:
        """Whether a mutant that turns `original` (the reference's changed lines) into `mutated` is
        this one; whitespace does not count."""
        return squeeze(self.original) == squeeze(original) and squeeze(self.mutated) == squeeze(mutated)


def squeeze(text: str) -> str:
    """`text` without any whitespace (how equivalent mutants are compared)."""
    return "".join(text.split())


def mutants_file(pdir: ProblemDir) -> Path:
    """The problem's graders/NNN-slug/mutants.toml."""
    return pdir.grader_dir / "mutants.toml"


def apply_edits(reference: str, edits: list[dict], where: str) -> str:
    """Each `find` must occur exactly once in the text it edits, so an edit cannot land elsewhere."""
    text = reference
    for i, edit in enumerate(edits, 1):
        find, replace = edit.get("find"), edit.get("replace")
        if not isinstance(find, str) or not isinstance(replace, str) or not find:
            raise MutantError(f"{where}: edit {i}: needs the strings `find` (not empty) and `replace`")
        count = text.count(find)
        if count != 1:
            raise MutantError(f"{where}: edit {i}: `find` occurs {count} times in the reference (must be once): "
                              f"{find.splitlines()[0][:80]!r}")
        text = text.replace(find, replace)
    if text == reference:
        raise MutantError(f"{where}: the edits leave the reference unchanged")
    return text


def read_tables(pdir: ProblemDir) -> dict:
    """mutants.toml's tables ({} when there is none); MutantError naming the file when it is not TOML."""
    path = mutants_file(pdir)
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MutantError(f"{path}: {exc}") from None


def load_equivalents(pdir: ProblemDir) -> list[Equivalent]:
    """The `[[equivalent]]` entries of mutants.toml; MutantError naming the file and entry."""
    path, entries = mutants_file(pdir), read_tables(pdir).get(EQUIVALENT, [])
    if not isinstance(entries, list):
        raise MutantError(f"{path}: `{EQUIVALENT}` must be an array of tables ([[{EQUIVALENT}]])")
    out = []
    for i, entry in enumerate(entries, 1):
        where = f"{path}: [[{EQUIVALENT}]] {i}"
        if not isinstance(entry, dict) or set(entry) - {"original", "mutated", "reason"}:
            raise MutantError(f"{where}: takes only the strings `original`, `mutated` and `reason`")
        values = [entry.get(k) for k in ("original", "mutated", "reason")]
        if not all(isinstance(v, str) for v in values) or not values[0].strip() or not values[2].strip():
            raise MutantError(f"{where}: needs the strings `original` (not empty), `mutated` and `reason` "
                              "(not empty: why no test can tell the mutant from the reference)")
        if squeeze(values[0]) == squeeze(values[1]):
            raise MutantError(f"{where}: `original` and `mutated` are the same text")
        out.append(Equivalent(*values))
    return out


def load_mutants(pdir: ProblemDir) -> list[Mutant]:
    """Every mutant of the problem, built from the reference (none when there is no mutants.toml)."""
    path = mutants_file(pdir)
    tables = {k: v for k, v in read_tables(pdir).items() if k != EQUIVALENT}
    if not tables:
        return []
    reference = pdir.solution_file.read_text(encoding="utf-8")
    mutants = []
    for name, table in tables.items():
        where = f"{path}: {name}"
        if not isinstance(table, dict) or not isinstance(table.get("mistake"), str):
            raise MutantError(f"{where}: needs `mistake`, a sentence saying what is wrong")
        edits = table.get("edit")
        if not isinstance(edits, list) or not edits:
            raise MutantError(f"{where}: needs at least one [[{name}.edit]] with `find` and `replace`")
        header = f"# MUTANT ({name}): {table['mistake']}\n"  # a comment keeps `from __future__` first
        mutants.append(Mutant(name, table["mistake"], header + apply_edits(reference, edits, where)))
    return mutants


def mutant(pdir: ProblemDir, name: str) -> Mutant:
    """One mutant by name."""
    for m in load_mutants(pdir):
        if m.name == name:
            return m
    raise MutantError(f"{mutants_file(pdir)}: no mutant named {name!r}")
