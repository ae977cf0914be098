"""Hidden tests of 185-kv-sharing.

Every answer is checked for its type and length before its values. Layer patterns are drawn in the
grader from rng(seed); the solver's code draws nothing.
"""
from __future__ import annotations

import pytest

from runner.testing import rng

S, F = "sliding_attention", "full_attention"


def _raises_value_error(call) -> bool:
    """True when the solver's call raised ValueError (it crosses the sandbox as an error whose
    message starts with the exception's type name)."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the sandbox wraps the solver's exception
        if isinstance(exc, ValueError) or str(exc).startswith("ValueError"):
            return True
        raise  # any other exception is the solver's error, reported as such
    return False


def _sources(submission, types, n, what="kv_source_layers") -> list[int]:
    got = submission.kv_source_layers(list(types), n)
    assert isinstance(got, (list, tuple)), f"{what}: the answer must be a list of ints"
    assert len(got) == len(types), f"{what}: the answer must have one entry per layer"
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in got), \
        f"{what}: every entry must be an int"
    return list(got)


def _bytes(submission, *args, what="kv_cache_bytes") -> int:
    got = submission.kv_cache_bytes(*args)
    assert isinstance(got, int) and not isinstance(got, bool), f"{what}: the answer must be an int"
    return got


def _random_types(g, n_layers: int) -> list[str]:
    return [S if g.random() < 0.75 else F for _ in range(n_layers)]


def _valid_pattern(g, n_layers: int):
    """A random layer pattern and a number of shared layers that leaves a producer for every type."""
    while True:
        types = _random_types(g, n_layers)
        n = int(g.integers(0, n_layers + 1))
        first = n_layers - n
        if set(types[first:]) <= set(types[:first]):
            return types, n


def _dims(g, types):
    head_dims = [int(g.choice([4, 8, 16])) if t == S else int(g.choice([16, 32, 64])) for t in types]
    kv_heads = [int(g.integers(1, 5)) for _ in types]
    return head_dims, kv_heads


# ------------------------------------------------------------------------------ kv_source_layers

def test_no_sharing_is_the_identity(submission):
    g = rng(1850)
    for n_layers in (1, 2, 5, 12):
        types = _random_types(g, n_layers)
        assert _sources(submission, types, 0) == list(range(n_layers)), \
            "with num_kv_shared_layers = 0 every layer must read its own keys and values"


def test_no_layers(submission):
    got = submission.kv_source_layers([], 0)
    assert isinstance(got, (list, tuple)) and len(got) == 0, "a model with no layers has an empty map"
    # and a real model next to it, so that an answer that is always empty earns nothing here
    assert _sources(submission, [F, S, F, S], 1) == [0, 1, 2, 1] and _sources(submission, [F, S, F], 1) == [0, 1, 0], \
        "a single shared layer reads the last non-shared layer of its type"


def test_non_shared_layers_read_themselves(submission):
    g = rng(1851)
    for _ in range(20):
        types, n = _valid_pattern(g, int(g.integers(2, 16)))
        got = _sources(submission, types, n)
        first = len(types) - n
        assert got[:first] == list(range(first)), "a non-shared layer must read its own keys and values"


def test_shared_block_is_exactly_the_last_n_layers(submission):
    # every layer sliding: shared layers read the last non-shared layer, non-shared ones themselves
    for n_layers in (3, 6, 9):
        types = [S] * (n_layers - 1) + [F]
        types[0] = F  # a full producer at the front
        for n in sorted({1, 2, n_layers - 2} & set(range(1, n_layers - 1))):
            first = n_layers - n
            want = list(range(first)) + [
                max(j for j in range(first) if types[j] == types[i]) for i in range(first, n_layers)]
            assert _sources(submission, types, n) == want, \
                "the shared layers must be exactly the last num_kv_shared_layers layers"


def test_source_is_the_last_producer_of_its_type(submission):
    # several non-shared layers of each type: the source is the last of them, not the first
    types = [S, F, S, S, F, S, S, S, F, S, F]
    assert _sources(submission, types, 3) == list(range(8)) + [4, 7, 4], \
        "a shared layer must read the LAST non-shared layer of its own type"


def test_source_has_the_same_type(submission):
    # the layer just before the shared block has the other type
    types = [F, S, S, S, F, F, S]
    assert _sources(submission, types, 2) == [0, 1, 2, 3, 4, 4, 3], \
        "a shared layer must read a layer of its own type, not simply the layer before the shared block"
    types = [S, F, S, F, S, S]
    assert _sources(submission, types, 3) == [0, 1, 2, 1, 2, 2], \
        "a shared layer must read a layer of its own type, not simply the layer before the shared block"


def test_source_is_never_a_shared_layer(submission):
    # several shared layers of one type: all read the same producer, none chains to a shared layer
    types = [S, F, S, S, S, S, F, S, F]
    assert _sources(submission, types, 5) == [0, 1, 2, 3, 3, 3, 1, 3, 1], \
        "a shared layer must read a non-shared layer, never another shared layer"


def test_random_patterns(submission, reference):
    g = rng(1852)
    for _ in range(40):
        types, n = _valid_pattern(g, int(g.integers(1, 40)))
        assert _sources(submission, types, n) == reference.kv_source_layers(types, n), \
            "the map differs from the rule on a random layer pattern"


def test_missing_producer_raises(submission):
    # a valid pattern answers first, so that a stub that always raises earns nothing here
    assert _sources(submission, [S, F, S, F], 2) == [0, 1, 0, 1], \
        "a shared layer reads the last non-shared layer of its own type"
    for types, n in (([S, S, F], 1), ([S, S, S, F, F], 2), ([F, F, S], 1), ([S, F, S, F], 3)):
        assert _raises_value_error(lambda: submission.kv_source_layers(types, n)), \
            "a shared layer whose type has no non-shared layer must raise ValueError"


def test_bad_num_shared_raises(submission):
    assert _sources(submission, [S, F, S, F], 2) == [0, 1, 0, 1], \
        "a shared layer reads the last non-shared layer of its own type"
    for types, n in (([S, F, S, F], 4), ([S, F, S, F], 5), ([S, F], -1), ([F], 1), ([], 1)):
        assert _raises_value_error(lambda: submission.kv_source_layers(types, n)), \
            "a num_kv_shared_layers that leaves no producer, or lies outside 0 .. L, must raise ValueError"


# ------------------------------------------------------------------------------ kv_cache_bytes

def test_full_layer_holds_every_position(submission):
    for seq_len in (1, 7, 300):
        got = _bytes(submission, [F], 0, 8, [16], [2], seq_len, 3, 2)
        assert got == 2 * 3 * 2 * seq_len * 16 * 2, \
            "a full layer holds keys and values of every position, for every batch row and KV head"


def test_sliding_layer_holds_window_minus_one(submission):
    for window, seq_len in ((8, 20), (8, 8), (5, 6), (512, 4096)):
        got = _bytes(submission, [S, F], 0, window, [4, 8], [1, 1], seq_len, 1, 4)
        want = 2 * (window - 1) * 4 * 4 + 2 * seq_len * 8 * 4
        assert got == want, "past the window, a sliding layer holds W - 1 positions"


def test_sliding_layer_short_sequence(submission):
    for window, seq_len in ((8, 3), (8, 7), (512, 100)):
        got = _bytes(submission, [S, F], 0, window, [4, 8], [2, 1], seq_len, 2, 2)
        want = 2 * 2 * 2 * seq_len * 4 * 2 + 2 * 2 * seq_len * 8 * 2
        assert got == want, "before the window fills, a sliding layer holds every position"


def test_empty_cache(submission):
    assert _bytes(submission, [S, F, S, F], 1, 4, [4, 8, 4, 8], [1, 1, 1, 1], 0, 2, 2) == 0, \
        "no tokens, no cache"
    assert _bytes(submission, [S, F], 0, 1, [4, 8], [1, 1], 5, 1, 2) == 2 * 5 * 8 * 2, \
        "a sliding layer with W = 1 needs no past position"


def test_shared_layers_hold_nothing(submission):
    types = [S, S, F, S, S, F, S, F]
    head_dims = [8, 8, 32, 8, 8, 32, 8, 32]
    kv_heads = [2, 2, 1, 2, 2, 1, 2, 1]
    per_sliding, per_full = 2 * 2 * 5 * 8 * 2, 2 * 1 * 12 * 32 * 2
    for n, (n_sliding, n_full) in ((0, (5, 3)), (2, (4, 2)), (3, (4, 1)), (5, (2, 1))):
        got = _bytes(submission, types, n, 6, head_dims, kv_heads, 12, 1, 2)
        assert got == n_sliding * per_sliding + n_full * per_full, \
            "only non-shared layers hold cache entries"


def test_per_layer_head_sizes(submission):
    types = [S, F, S, F, S, F]
    head_dims = [4, 32, 8, 64, 16, 16]
    kv_heads = [1, 2, 3, 1, 2, 4]
    want = sum(2 * h * min(30, 9 if t == S else 30) * d * 4 for t, d, h in zip(types, head_dims, kv_heads))
    assert _bytes(submission, types, 0, 10, head_dims, kv_heads, 30, 1, 4) == want, \
        "each layer's entry uses its own head size and number of KV heads"


def test_shared_layer_entries_are_not_read(submission):
    types = [S, F, S, S, F, F]
    base = _bytes(submission, types, 2, 4, [8, 16, 8, 8, 16, 16], [2, 1, 2, 2, 1, 1], 9, 2, 2)
    other = _bytes(submission, types, 2, 4, [8, 16, 8, 8, 999, 1], [2, 1, 2, 2, 7, 3], 9, 2, 2)
    assert base == other, "the head sizes listed for shared layers must not change the cache size"
    assert base == 2 * 2 * 2 * (3 * 2 * 3 * 8 + 1 * 1 * 9 * 16), \
        "the cache size with two shared layers is off"


def test_batch_and_dtype_scale(submission):
    types = [S, S, F, S, F]
    head_dims, kv_heads = [8, 8, 16, 8, 16], [2, 2, 1, 2, 1]
    one = _bytes(submission, types, 2, 6, head_dims, kv_heads, 11, 1, 2)
    assert one == 2 * (2 * 2 * 5 * 8 + 1 * 11 * 16) * 2, "the cache size of one bfloat16 row is off"
    for batch, dtype_bytes in ((3, 2), (1, 4), (5, 4)):
        got = _bytes(submission, types, 2, 6, head_dims, kv_heads, 11, batch, dtype_bytes)
        assert got == one * batch * dtype_bytes // 2, "the cache size must scale with batch and bytes per element"


def test_cache_random_configs(submission, reference):
    g = rng(1853)
    for _ in range(40):
        types, n = _valid_pattern(g, int(g.integers(1, 30)))
        head_dims, kv_heads = _dims(g, types)
        window = int(g.integers(1, 40))
        args = (types, n, window, head_dims, kv_heads, int(g.integers(0, 80)), int(g.integers(1, 4)),
                int(g.choice([1, 2, 4])))
        assert _bytes(submission, *args) == reference.kv_cache_bytes(*args), \
            "the cache size differs from the rule on a random configuration"


def test_cache_refuses_invalid_sharing(submission):
    assert _bytes(submission, [S, F, S, F], 2, 4, [4, 8, 4, 8], [1, 1, 1, 1], 3, 1, 2) == 2 * 3 * (4 + 8) * 2, \
        "the cache size with two shared layers is off"
    for types, n in (([S, S, F], 1), ([S, F], 2), ([S, F], 3), ([S, F], -1)):
        assert _raises_value_error(
            lambda: submission.kv_cache_bytes(types, n, 4, [4] * len(types), [1] * len(types), 3, 1, 2)), \
            "kv_cache_bytes must raise ValueError where kv_source_layers does"


def test_deep_stack(submission):
    # 300 layers, the pattern [S, S, S, S, F] repeated, the last 40 shared
    types = ([S] * 4 + [F]) * 60
    head_dims = [16 if t == S else 64 for t in types]
    kv_heads = [1] * 300
    sources = _sources(submission, types, 40)
    assert sources[:260] == list(range(260)) and set(sources[260:]) == {258, 259}, \
        "the map of a deep stack is off"
    got = _bytes(submission, types, 40, 32, head_dims, kv_heads, 100, 1, 2)
    assert got == 2 * 2 * (208 * 31 * 16 + 52 * 100 * 64), "the cache size of a deep stack is off"
