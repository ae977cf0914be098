"""Alternative: NumPy arrays over layers, sources through a running maximum of producer indices."""
import numpy as np


def kv_source_layers(layer_types, num_kv_shared_layers):
    L = len(layer_types)
    if not (0 <= num_kv_shared_layers <= L):
        raise ValueError("num_kv_shared_layers out of range")
    if L == 0:
        return []
    first = L - num_kv_shared_layers
    types = np.array(layer_types, dtype=object)
    idx = np.arange(L)
    sources = idx.copy()
    for kind in set(layer_types[first:]):
        producers = idx[:first][types[:first] == kind]
        if producers.size == 0:
            raise ValueError("shared layer type without a producer")
        sources[first:][types[first:] == kind] = producers.max()
    return [int(s) for s in sources]


def kv_cache_bytes(layer_types, num_kv_shared_layers, sliding_window, head_dims, num_kv_heads,
                   seq_len, batch, dtype_bytes):
    sources = np.array(kv_source_layers(layer_types, num_kv_shared_layers), dtype=np.int64)
    L = len(layer_types)
    if L == 0:
        return 0
    own = sources == np.arange(L)
    sliding = np.array([t == "sliding_attention" for t in layer_types])
    positions = np.where(sliding, min(seq_len, sliding_window - 1), seq_len).astype(np.int64)
    elems = np.array(head_dims, dtype=np.int64) * np.array(num_kv_heads, dtype=np.int64)
    return int(2 * batch * dtype_bytes * np.sum(np.where(own, elems * positions, 0)))
