"""The empty-answer submission: the reference with every answer swapped for an empty tensor
(or numpy array).

Every hidden test checks the type, shape and dtype of what it reads before its values, so a
submission whose functions return empty tensors of the right dtype must earn nothing. `grader
validate` builds that submission from the reference, the way mutants are built: the reference's
source plus code at the end that rebinds every function (and every listed method of a class) the
problem declares. Each call still runs the reference, so side effects the tests observe (a
model's log of its passes) are those of a correct solution; only the answer is emptied.

A function may legitimately answer with a number (a temperature); numbers are kept. Tests that
earn their points without reading any tensor are found with a second build whose functions raise
instead of answering with a tensor: what still passes there cannot check a shape.
"""
from __future__ import annotations

from runner.authoring.mutants import Mutant
from runner.problems.catalogue import ProblemDir

CHECK = "empty answers score zero"

# Appended to the reference. Its names start with _grader_ so they cannot clash with the
# reference's. It imports nothing: the sandbox's import guard refuses any import the problem does
# not list, and a build refused at load would earn nothing for the wrong reason. Tensors and arrays
# are recognised by their class's name, so that a numpy problem's build never needs torch.
_RUNTIME = '''
# Calls in progress: the reference calling its own functions must get real answers back;
# only the answer of the outermost call is changed.
_grader_depth = [0]


def _grader_is(value, module, name):
    return any(c.__module__ == module and c.__name__ == name for c in type(value).__mro__)


def _grader_map(value, leaf):
    """`value` with `leaf` applied to every torch tensor and numpy array, through tuples, lists
    and dicts."""
    if _grader_is(value, "torch", "Tensor") or _grader_is(value, "numpy", "ndarray"):
        return leaf(value)
    if isinstance(value, dict):
        return {k: _grader_map(v, leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_grader_map(v, leaf) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _grader_empty(value):
    """Every tensor or array in `value` replaced by an empty one of its dtype and number of
    dimensions."""
    def empty(t):
        # A 0-d tensor always holds one value; its nearest empty form has shape (0,).
        shape = (0,) * max(t.ndim, 1)
        return t.new_empty(shape) if hasattr(t, "new_empty") else t.reshape(-1)[:0].reshape(shape)
    return _grader_map(value, empty)


def _grader_no_tensor(value):
    """`value` when it holds no tensor or array; an error otherwise."""
    def refuse(t):
        raise RuntimeError("this build of the reference answers without tensors")
    return _grader_map(value, refuse)


def _grader_wrap(fn, transform):
    """`fn`, with `transform` applied to the answer of an outermost call."""
    def wrapper(*args, **kwargs):
        _grader_depth[0] += 1
        try:
            answer = fn(*args, **kwargs)
        finally:
            _grader_depth[0] -= 1
        return answer if _grader_depth[0] else transform(answer)
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        if hasattr(fn, attribute):
            setattr(wrapper, attribute, getattr(fn, attribute))
    wrapper.__wrapped__ = fn  # its signature is fn's: the grader checks it
    return wrapper


def _grader_rebind(functions, classes, transform):
    """Wrap the declared functions, and the listed methods of the declared classes, in place."""
    for name in functions:
        globals()[name] = _grader_wrap(globals()[name], transform)
    for name, methods in classes.items():
        cls = globals()[name]
        for method in methods:
            raw = next(c.__dict__[method] for c in cls.__mro__ if method in c.__dict__)
            if isinstance(raw, (staticmethod, classmethod)):
                setattr(cls, method, type(raw)(_grader_wrap(raw.__func__, transform)))
            else:
                setattr(cls, method, _grader_wrap(raw, transform))
'''


def wrapped_reference(pdir: ProblemDir, name: str, what: str, transform: str) -> Mutant:
    """The reference with every declared function's answer passed through `transform`
    (`_grader_empty` or `_grader_no_tensor`), as a Mutant so it is graded like one."""
    functions = [f.name for f in pdir.meta.functions if f.kind == "function"]
    classes = {f.name: list(f.methods) for f in pdir.meta.functions if f.kind == "class"}
    reference = pdir.solution_file.read_text(encoding="utf-8")
    header = f"\n\n# ---- appended by `grader validate` (runner/authoring/empty_answers.py): {what}"
    call = f"\n\n_grader_rebind({functions!r}, {classes!r}, {transform})\n"
    return Mutant(name, what, reference.rstrip("\n") + header + _RUNTIME + call)


def empty_answers(pdir: ProblemDir) -> Mutant:
    """The reference whose every answer is emptied: each tensor becomes an empty tensor of the
    same dtype and number of dimensions; numbers and other values are kept."""
    return wrapped_reference(pdir, "empty_answers", "every tensor answered is empty", "_grader_empty")


def tensor_free(pdir: ProblemDir) -> Mutant:
    """The reference that raises wherever it would answer with a tensor: the tests it passes read
    numbers (or errors) only, so they cannot check a shape."""
    return wrapped_reference(pdir, "tensor_free", "every answer holding a tensor raises", "_grader_no_tensor")
