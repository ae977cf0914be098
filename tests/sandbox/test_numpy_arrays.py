"""numpy arrays cross the real sandbox as numpy arrays, both ways: dtype, shape and values kept
(non-contiguous, 0-d and big-endian arrays too), never turned into torch tensors; a numpy
problem's sandbox runs without torch; `NumpyGenerator(seed)` becomes np.random.default_rng(seed)."""
import numpy as np
import pytest

from runner.testing import NumpyGenerator

NUMPY = {"preload": ["numpy"]}  # what the grader asks of the sandbox for a problem with framework = "numpy"

ECHO = '''
import numpy as np


def probe(x=None, what="echo"):
    if what == "seen":  # what the solver's code received
        return type(x).__module__, type(x).__name__, x.dtype.name, x.shape
    if what == "transposed":
        return x.T
    if what == "reversed":
        return x[::-1, ::2]
    if what == "big-endian":
        return x.astype(x.dtype.newbyteorder(">"))
    if what == "zero-d":
        return np.asarray(x.sum(), dtype=x.dtype)
    return x
'''

DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"]


def sample(dtype: str, shape=(3, 4)) -> np.ndarray:
    """Values of `dtype` that are not all alike (negative ones where the dtype has them)."""
    values = np.random.default_rng(5).standard_normal(shape) * 50
    if dtype == "bool":
        return values > 0
    if dtype == "uint8":
        return np.abs(values).astype(np.uint8)
    return values.astype(dtype)


def same(back, sent: np.ndarray) -> None:
    assert type(back) is np.ndarray, f"came back as {type(back).__name__}"
    assert back.dtype == sent.dtype and back.shape == sent.shape
    assert np.array_equal(back, sent)


@pytest.mark.parametrize("dtype", DTYPES)
def test_arrays_cross_both_ways_with_dtype_shape_and_values(sandbox, dtype):
    client = sandbox(ECHO, **NUMPY)
    x = sample(dtype)
    assert client.call("probe", None, (x, "seen"), {}) == ("numpy", "ndarray", dtype, (3, 4))
    same(client.call("probe", None, (x,), {}), x)


def test_non_contiguous_arrays_cross_both_ways(sandbox):
    client = sandbox(ECHO, **NUMPY)
    base = sample("float32", (6, 8))
    for view in (base.T, base[::2, 1::3], base[::-1], base[:, 2]):
        assert not view.flags.c_contiguous or view.ndim == 1
        same(client.call("probe", None, (view,), {}), view)
    same(client.call("probe", None, (base, "transposed"), {}), base.T)  # the solver answers views, too
    same(client.call("probe", None, (base, "reversed"), {}), base[::-1, ::2])


def test_zero_d_and_empty_arrays_stay_arrays(sandbox):
    client = sandbox(ECHO, **NUMPY)
    scalar = np.array(2.5, dtype=np.float32)
    assert client.call("probe", None, (scalar, "seen"), {}) == ("numpy", "ndarray", "float32", ())
    same(client.call("probe", None, (scalar,), {}), scalar)
    same(client.call("probe", None, (np.arange(6, dtype=np.int64).reshape(2, 3), "zero-d"), {}),
         np.array(15, dtype=np.int64))
    same(client.call("probe", None, (np.zeros((0, 5), dtype=np.float16),), {}), np.zeros((0, 5), dtype=np.float16))


def test_big_endian_arrays_keep_their_values(sandbox):
    client = sandbox(ECHO, **NUMPY)
    big = np.arange(-3, 3, dtype=">i4").reshape(2, 3)
    back = client.call("probe", None, (big,), {})
    assert back.dtype == np.int32 and back.tolist() == big.tolist()
    little = sample("float64")
    back = client.call("probe", None, (little, "big-endian"), {})
    assert back.dtype == np.float64 and np.array_equal(back, little)


def test_arrays_inside_structures(sandbox):
    client = sandbox(ECHO, **NUMPY)
    value = {"pair": (sample("int32"), sample("bool")), "list": [np.float32(1.5), np.array([1, 2], dtype=np.int64)]}
    back = client.call("probe", None, (value,), {})
    same(back["pair"][0], value["pair"][0])
    same(back["pair"][1], value["pair"][1])
    assert back["list"][0] == 1.5  # a numpy number crosses as a number
    same(back["list"][1], value["list"][1])


def test_a_numpy_problems_sandbox_never_imports_torch(sandbox):
    code = ECHO + '''
import sys


def loaded():
    return sorted(m for m in ("numpy", "torch") if m in sys.modules)
'''
    client = sandbox(code, **NUMPY)
    x = sample("float32")
    same(client.call("probe", None, (x, "transposed"), {}), x.T)
    assert client.call("loaded", None, (), {}) == ["numpy"]


GENERATOR = '''
import numpy as np


def probe(generator=None, n=4):
    assert isinstance(generator, np.random.Generator)
    return generator.random(n)
'''


def test_numpy_generator_is_a_seeded_default_rng_that_keeps_its_state(sandbox):
    client = sandbox(GENERATOR, **NUMPY)
    g = NumpyGenerator(7)
    first = client.call("probe", None, (g,), {})
    second = client.call("probe", None, (g,), {})
    expected = np.random.default_rng(7).random(8)
    assert np.array_equal(np.concatenate([first, second]), expected)  # one stream across calls
    again = client.call("probe", None, (NumpyGenerator(7),), {})
    assert np.array_equal(again, expected[:4])  # a new object with the same seed starts over
    other = client.call("probe", None, (NumpyGenerator(8),), {})
    assert not np.array_equal(other, expected[:4])


def test_numpy_generator_refuses_bad_seeds():
    for seed in (-1, 1.5, True, "7"):
        with pytest.raises(TypeError):
            NumpyGenerator(seed)


def test_in_process_a_numpy_generator_is_the_same_seeded_stream(tmp_path):
    """`grader test` runs public tests in-process: a NumpyGenerator becomes the same default_rng there."""
    from runner.sandbox.inprocess import InProcessSubmission

    path = tmp_path / "solution.py"
    path.write_text(GENERATOR, encoding="utf-8")
    submission = InProcessSubmission(path, [{"name": "probe", "params": ["generator"]}])
    g = NumpyGenerator(7)
    drawn = np.concatenate([submission.probe(g), submission.probe(g)])
    assert np.array_equal(drawn, np.random.default_rng(7).random(8))
