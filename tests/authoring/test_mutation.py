"""Mutation analysis (`grader validate --mutate`): mutants made by cosmic-ray's operators from the
reference, graded through the sandbox; survivors are listed with their diff, and declaring one
equivalent in mutants.toml takes it out of the score."""
import re

import pytest

from runner.authoring.mutants import Equivalent, MutantError, load_equivalents, load_mutants, mutants_file
from runner.authoring.mutation import declared, sample
from runner.authoring.operators import changed_lines, generate_mutants, runs_as
from runner.authoring.scaffold import scaffold_problem
from runner.problems.catalogue import Catalogue
from tests.support.helpers import grader_cli, write

SOURCE = '''"""A module to mutate."""
from __future__ import annotations

import torch


def solve(x: torch.Tensor | None) -> torch.Tensor:
    return x.clamp(min=-1000.0) * 2
'''

# The scaffold's problem (solve(x) = 2 * x), with a clamp far outside what any test passes: moving its
# bound (-2000 -> -2001 or -1999) is a mutant no test can kill.
REFERENCE = '''"""Reference solution of 900-toy-problem."""
import torch


def solve(x: torch.Tensor) -> torch.Tensor:
    return torch.mul(x, 2.0).clamp(min=-2000.0)
'''

MISTAKES = '''[returns_input]
mistake = "returns its input unchanged"
[[returns_input.edit]]
find = "return torch.mul(x, 2.0).clamp(min=-2000.0)"
replace = "return x"
'''


def test_mutants_come_from_the_library_and_skip_what_changes_nothing_or_does_not_compile():
    made = generate_mutants(SOURCE)
    operators = {m.operator for m in made.mutants}
    assert {"core/ReplaceBinaryOperator_Mul_Add", "core/NumberReplacer", "core/ReplaceUnaryOperator_USub_UAdd"} <= operators
    # `torch.Tensor | None` is never evaluated (lazy annotations): its 11 replacements run as the reference
    assert made.duplicates == 11 and all(m.line == 8 for m in made.mutants)
    assert len({m.source for m in made.mutants}) == len(made.mutants) == 19
    bound = [m for m in made.mutants if "1001.0" in m.mutated]
    assert len(bound) == 1 and bound[0].original == "return x.clamp(min=-1000.0) * 2"
    assert "-    return x.clamp(min=-1000.0) * 2\n+    return x.clamp(min=- 1001.0) * 2\n" in bound[0].diff
    # `a & ~b` -> `a & not b` does not compile
    assert generate_mutants("def f(a, b):\n    return a & ~b\n").uncompilable == 1
    with pytest.raises(SyntaxError):
        runs_as("def f(a, b):\n    return a & not b\n")


def test_annotations_count_where_they_run():
    eager = SOURCE.replace("from __future__ import annotations\n", "")
    assert generate_mutants(eager).duplicates == 0


def test_the_sample_is_fixed_and_in_order():
    mutants = generate_mutants(SOURCE).mutants
    picked = sample(mutants, 6)
    assert picked == sample(mutants, 6) and len(picked) == 6
    assert [m.number for m in picked] == sorted(m.number for m in picked)
    assert sample(mutants, None) == mutants == sample(mutants, 100)


def test_an_equivalent_is_matched_by_its_lines_whitespace_aside():
    entry = Equivalent("return x.clamp(min=-1000.0)*2", "return  x.clamp(min=-1001.0) * 2", "far away")
    mutants = generate_mutants("# an edit above moves every line\n" + SOURCE).mutants
    assert [m.mutated for m in mutants if declared(m, [entry])] == ["return x.clamp(min=- 1001.0) * 2"]
    assert changed_lines("a\nb\nc\n", "a\nB\nc\nd\n") == (2, "b", "B\nd")


@pytest.fixture
def pdir(tmp_path):
    scaffold_problem(tmp_path, 900, "toy-problem", "Toy")
    pdir = Catalogue(tmp_path).get("900")
    write(pdir.solution_file, REFERENCE)
    write(mutants_file(pdir), MISTAKES)
    return pdir


@pytest.mark.parametrize("entry, error", [
    ('[[equivalent]]\noriginal = "a"\nmutated = "b"\n', "needs the strings `original` (not empty), `mutated` and `reason`"),
    ('[[equivalent]]\noriginal = "a"\nmutated = "b"\nreason = "r"\nline = 3\n', "takes only the strings"),
    ('[[equivalent]]\noriginal = "a + b"\nmutated = "a+b"\nreason = "r"\n', "are the same text"),
    ('[equivalent]\noriginal = "a"\n', "must be an array of tables"),
])
def test_bad_equivalents_name_the_file_and_entry(pdir, entry, error):
    write(mutants_file(pdir), MISTAKES + "\n" + entry)
    with pytest.raises(MutantError, match=re.escape(error)) as exc:
        load_equivalents(pdir)
    assert str(mutants_file(pdir)) in str(exc.value)


def test_a_mutant_that_cannot_be_applied_is_named(pdir):
    write(mutants_file(pdir), MISTAKES + '[[returns_input.edit]]\nfind = "not in the reference"\nreplace = "x"\n')
    with pytest.raises(MutantError) as exc:
        load_mutants(pdir)
    assert str(exc.value).startswith(f"{mutants_file(pdir)}: returns_input: edit 2: `find` occurs 0 times")


def test_equivalents_live_beside_the_hand_written_mutants(pdir):
    write(mutants_file(pdir), MISTAKES + '\n[[equivalent]]\noriginal = "a"\nmutated = ""\nreason = "r"\n')
    assert [m.name for m in load_mutants(pdir)] == ["returns_input"]
    assert load_equivalents(pdir) == [Equivalent("a", "", "r")]


def counts(output: str) -> list[str]:
    """The counts row of the report's table: mutants, killed, survived, equivalent, grader errors,
    mutation score, time."""
    row = next(line for line in output.splitlines() if re.match(r"│\s*\d+ of \d+\s*│", line))
    return [cell.strip() for cell in row.strip("│").split("│")]


@pytest.mark.slow
def test_validate_mutate_lists_survivors_and_honours_declared_equivalents(pdir):
    env = {"GRADER_ROOT": str(pdir.root), "GRADER_DATA_DIR": str(pdir.root / "data")}
    made = generate_mutants(REFERENCE).mutants
    picked = sample(made, 4)
    survivors = [m for m in picked if "2001.0" in m.mutated or "1999.0" in m.mutated]
    assert survivors, "the sample should hold a mutant of the clamp's bound"
    line = "return torch.mul(x, 2.0).clamp(min=-2000.0)"

    first = grader_cli("validate", "--mutate", "900", "--limit", "4", "--jobs", "2", env=env)
    assert first.returncode == 1, first.stdout + first.stderr
    killed = 4 - len(survivors)
    assert counts(first.stdout)[:6] == [f"4 of {len(made)}", str(killed), str(len(survivors)), "0", "0",
                                        f"{killed / 4:.3f} ({killed}/4)"], first.stdout
    for mutant in survivors:
        assert f"survived: mutant {mutant.name}" in first.stdout
        assert f"+    {mutant.mutated}\n" in first.stdout
    assert f"-    {line}\n" in first.stdout and f'original = "{line}"' in first.stdout
    assert f"FAIL 900-toy-problem: mutation score {killed / 4:.3f} (minimum 0.95)" in first.stdout

    # Declare them equivalent (spaced differently), after an edit elsewhere in the reference, plus a stale entry.
    write(pdir.solution_file, REFERENCE.replace('"""\n', '"""\n# an edit that moves every line\n', 1))
    entries = "".join(f'\n[[equivalent]]\noriginal = "{line.replace("2.0)", "2.0 )")}"\n'
                      f'mutated = "{m.mutated}"\nreason = "no test passes values near -2000"\n' for m in survivors)
    stale = '\n[[equivalent]]\noriginal = "return 2 * x"\nmutated = "return 3 * x"\nreason = "gone"\n'
    write(mutants_file(pdir), MISTAKES + entries + stale)
    second = grader_cli("validate", "--mutate", "900", "--limit", "4", "--jobs", "1", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert counts(second.stdout)[:6] == [f"4 of {len(made)}", str(killed), "0", str(len(survivors)), "0",
                                         f"1.000 ({killed}/{killed})"], second.stdout
    assert "survived:" not in second.stdout
    assert "ok 900-toy-problem: mutation score 1.000" in second.stdout
    assert "stale:" in second.stderr and "return 2 * x" in second.stderr
