"""Public tests of 185-kv-sharing: the statement's worked example."""
from __future__ import annotations

S, F = "sliding_attention", "full_attention"
TYPES = [S, F, S, S, F, S, F]
HEAD_DIMS = [8, 16, 8, 8, 16, 8, 16]
KV_HEADS = [2, 1, 2, 2, 1, 2, 1]


def _int_list(value, length: int, what: str) -> list[int]:
    assert isinstance(value, (list, tuple)), f"{what}: expected a list of ints"
    assert len(value) == length, f"{what}: expected {length} entries, one per layer"
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in value), f"{what}: expected ints"
    return list(value)


def test_worked_example_sources(submission):
    got = _int_list(submission.kv_source_layers(TYPES, 3), 7, "kv_source_layers(types, 3)")
    assert got == [0, 1, 2, 3, 1, 3, 1], "kv_source_layers(types, 3) differs from the worked example"
    got = _int_list(submission.kv_source_layers(TYPES, 0), 7, "kv_source_layers(types, 0)")
    assert got == list(range(7)), "with no shared layers every layer reads its own keys and values"


def test_worked_example_cache_bytes(submission):
    shared = submission.kv_cache_bytes(TYPES, 3, 4, HEAD_DIMS, KV_HEADS, 10, 1, 2)
    assert isinstance(shared, int), "kv_cache_bytes must return an int"
    assert shared == 1216, "the cache size with three shared layers differs from the worked example"
    unshared = submission.kv_cache_bytes(TYPES, 0, 4, HEAD_DIMS, KV_HEADS, 10, 1, 2)
    assert isinstance(unshared, int), "kv_cache_bytes must return an int"
    assert unshared == 2688, "the cache size without sharing differs from the worked example"
