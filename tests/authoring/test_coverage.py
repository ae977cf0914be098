"""The coverage map (graders/NNN-slug/coverage.toml): its parser, and the check that every test it
lists exists in the hidden or public tests (found by parsing them, not importing them)."""
from pathlib import Path

import pytest

from runner.authoring.coverage import (CHECK, CoverageError, check_coverage, coverage_file, defined_tests,
                                       parse_coverage)
from runner.authoring.scaffold import scaffold_problem
from runner.authoring.validation import Report
from runner.problems.catalogue import Catalogue
from tests.support.helpers import write

HIDDEN = '''import pytest


def helper():
    pass


def test_shape_and_dtype(submission):
    pass


async def test_async_one(submission):
    pass


class TestRanges:
    def test_low(self, submission):
        pass

    def helper(self):
        pass


class Helper:
    def test_not_collected(self):
        pass
'''

GOOD = '''# a comment
[[clause]]
id = "shape-dtype"
text = "returns a LongTensor of shape (B, L)"
tests = ["test_shape_and_dtype", "test_example"]

[[clause]]
id = "range"
text = "values lie in [0, V)"
tests = ["TestRanges::test_low", "test_async_one"]
'''


@pytest.fixture
def pdir(tmp_path):
    """A scaffolded problem whose hidden tests are HIDDEN (the public one is `test_example`)."""
    scaffold_problem(tmp_path, 900, "toy-problem", "Toy")
    pdir = Catalogue(tmp_path).get("900")
    write(pdir.grader_dir / "test_hidden.py", HIDDEN)
    return pdir


def set_map(pdir, text: str) -> Path:
    return write(coverage_file(pdir), text)


def test_tests_are_found_by_parsing(pdir):
    assert defined_tests(pdir.grader_dir / "test_hidden.py") == {
        "test_shape_and_dtype", "test_async_one", "test_low", "TestRanges::test_low"}


def test_a_good_map_passes(pdir):
    set_map(pdir, GOOD)
    coverage = parse_coverage(coverage_file(pdir))
    assert [c.id for c in coverage.clause] == ["shape-dtype", "range"]
    assert coverage.clause[0].text == "returns a LongTensor of shape (B, L)"
    ok, detail = check_coverage(pdir)
    assert ok, detail
    assert detail.startswith("2 clauses, 4 tests")


def test_the_scaffold_writes_a_complete_map(pdir):
    write(pdir.grader_dir / "test_hidden.py", "def test_random_inputs(submission):\n    pass\n")
    assert check_coverage(pdir) == (True, "1 clauses, 2 tests")


def test_a_missing_test_is_named_with_its_clause(pdir):
    set_map(pdir, GOOD.replace('"test_async_one"', '"test_async_two"').replace(
        '"TestRanges::test_low"', '"TestOther::test_low"'))
    ok, detail = check_coverage(pdir)
    assert not ok
    assert str(coverage_file(pdir)) in detail
    assert "clause 'range': TestOther::test_low" in detail and "clause 'range': test_async_two" in detail
    assert "test_shape_and_dtype" not in detail


def test_a_method_of_a_class_that_pytest_does_not_collect_does_not_count(pdir):
    set_map(pdir, GOOD.replace('"test_async_one"', '"test_not_collected"'))
    ok, detail = check_coverage(pdir)
    assert not ok and "clause 'range': test_not_collected" in detail


def test_duplicate_ids_are_refused(pdir):
    set_map(pdir, GOOD.replace('id = "range"', 'id = "shape-dtype"'))
    with pytest.raises(CoverageError, match="clause ids repeat: shape-dtype") as exc:
        parse_coverage(coverage_file(pdir))
    assert str(coverage_file(pdir)) in str(exc.value)
    assert not check_coverage(pdir)[0]


def test_a_clause_without_tests_is_named(pdir):
    set_map(pdir, GOOD.replace('tests = ["TestRanges::test_low", "test_async_one"]', "tests = []"))
    ok, detail = check_coverage(pdir)
    assert not ok
    assert f"{coverage_file(pdir)}: clause[1] (id 'range').tests: List should have at least 1 item" in detail


@pytest.mark.parametrize("edit, where", [
    (('text = "values lie in [0, V)"\n', ""), "clause[1] (id 'range').text: Field required"),
    (('id = "range"', 'id = "range"\nweight = 2'), "clause[1] (id 'range').weight: Extra inputs"),
    (('tests = ["TestRanges::test_low", "test_async_one"]', 'tests = "test_async_one"'),
     "clause[1] (id 'range').tests: Input should be a valid list"),
    (('id = "range"', 'id = ""'), "clause[1].id: String should have at least 1 character"),
])
def test_a_bad_field_names_the_file_and_the_clause(pdir, edit, where):
    set_map(pdir, GOOD.replace(*edit))
    with pytest.raises(CoverageError) as exc:
        parse_coverage(coverage_file(pdir))
    assert f"{coverage_file(pdir)}: {where}" in str(exc.value)


def test_bad_toml_names_the_file(pdir):
    set_map(pdir, GOOD.replace('id = "range"', 'id = "range'))
    ok, detail = check_coverage(pdir)
    assert not ok and detail.startswith(f"{coverage_file(pdir)}: not valid TOML")


def test_a_map_without_clauses_is_refused(pdir):
    set_map(pdir, "# nothing yet\n")
    ok, detail = check_coverage(pdir)
    assert not ok and "clause: Field required" in detail


def test_a_missing_map_says_what_to_write(pdir):
    coverage_file(pdir).unlink()
    ok, detail = check_coverage(pdir)
    assert not ok
    assert f"{coverage_file(pdir)} is missing" in detail and "[[clause]]" in detail and "tests = [" in detail


def test_validate_reports_the_check_by_name(pdir):
    report = Report(pdir.key)
    report.add(CHECK, *check_coverage(pdir))
    assert report.checks[0].name == "coverage map complete"
