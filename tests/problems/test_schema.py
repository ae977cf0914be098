"""problem.toml is validated with errors that name the file and the field."""
import pytest

from tests.support.helpers import write
from runner.problems.schema import ProblemFormatError, load_problem

GOOD = '''id = 7
slug = "demo"
title = "Demo"
difficulty = "Hard◆"
tags = ["A"]
framework = "torch"
imports = ["torch", "math", "transformers.DynamicCache"]
[paper]
title = "A paper"
[[functions]]
name = "f"
params = ["x"]
'''


def test_good_file_loads(tmp_path):
    p = load_problem(write(tmp_path / "7-demo" / "problem.toml", GOOD))
    assert p.key == "7-demo" and p.difficulty.value == "Hard◆" and p.limits.time_s == 10
    assert p.imports == ["torch", "math", "transformers.DynamicCache"]


@pytest.mark.parametrize("edit,field", [
    (lambda s: s.replace('difficulty = "Hard◆"', 'difficulty = "Trivial"'), "difficulty"),
    (lambda s: s.replace('framework = "torch"', 'framework = "jax"'), "framework"),
    (lambda s: s + "\n[limits]\ntime_s = -1\n", "limits.time_s"),
    (lambda s: s.replace('name = "f"', 'name = "1f"'), "functions[0].name"),
    (lambda s: s.replace('tags = ["A"]', 'tags = []'), "tags"),
    (lambda s: 'colour = "red"\n' + s, "colour"),
    (lambda s: s.replace('slug = "demo"\n', ''), "slug"),
    (lambda s: s + '\n[[handles]]\nname = "model"\nkind = "llama"\n', "handles[0].kind"),
    (lambda s: s.replace('imports = ["torch", "math", "transformers.DynamicCache"]\n', ''), "imports"),
    (lambda s: s.replace('"transformers.DynamicCache"', '"transformers..DynamicCache"'), "imports"),
    (lambda s: s.replace('"transformers.DynamicCache"', '"from transformers import DynamicCache"'), "imports"),
    (lambda s: s.replace('"transformers.DynamicCache"', '"builtins"'), "imports"),
    (lambda s: s.replace('"transformers.DynamicCache"', '"math"'), "imports"),
    (lambda s: s.replace('"transformers.DynamicCache"', '3'), "imports[2]"),
    (lambda s: s.replace('imports = ["torch", "math", "transformers.DynamicCache"]', 'imports = "torch"'), "imports"),
])
def test_bad_field_is_named(tmp_path, edit, field):
    path = write(tmp_path / "7-demo" / "problem.toml", edit(GOOD))
    with pytest.raises(ProblemFormatError) as info:
        load_problem(path)
    assert str(path) in str(info.value)
    assert f": {field}:" in str(info.value), str(info.value)


def test_folder_name_must_match(tmp_path):
    path = write(tmp_path / "8-other" / "problem.toml", GOOD)
    with pytest.raises(ProblemFormatError, match="id/slug"):
        load_problem(path)


def test_not_toml(tmp_path):
    path = write(tmp_path / "7-demo" / "problem.toml", "id = = 3")
    with pytest.raises(ProblemFormatError, match="not valid TOML"):
        load_problem(path)


def test_every_bundled_problem_is_valid(catalogue):
    keys = catalogue.keys()
    assert {"413-forward-process"} <= set(keys)
    for pdir in catalogue.problems():
        assert pdir.meta.key == pdir.key


def test_limit_overrides_name_their_source():
    from runner.problems.schema import parse_limit_overrides

    assert parse_limit_overrides(["time_s=2", "total_s=12"], "GRADER_LIMITS") == {"time_s": 2.0, "total_s": 12.0}
    with pytest.raises(ValueError, match=r"GRADER_LIMITS: no limit named 'time'"):
        parse_limit_overrides(["time=2"], "GRADER_LIMITS")
    with pytest.raises(ValueError, match=r"--limit: 'time_s=two': the value is not a number"):
        parse_limit_overrides(["time_s=two"], "--limit")


@pytest.mark.parametrize("entries,says", [
    (["torch", "torch.nn.functional", "transformers.DynamicCache", "__future__"], None),
    ([], None),
    (["torch", "torch"], "entries repeat: torch"),
    (["builtins.open"], "builtins cannot be allowed"),
    (["torch nn"], "is not a module or module.name"),
    ([".relative"], "is not a module or module.name"),
])
def test_import_entries(tmp_path, entries, says):
    text = GOOD.replace('["torch", "math", "transformers.DynamicCache"]', "[" + ", ".join(f'"{e}"' for e in entries) + "]")
    path = write(tmp_path / "7-demo" / "problem.toml", text)
    if says is None:
        assert load_problem(path).imports == entries
        return
    with pytest.raises(ProblemFormatError) as info:
        load_problem(path)
    assert f"{path}: imports: " in str(info.value) and says in str(info.value), str(info.value)
