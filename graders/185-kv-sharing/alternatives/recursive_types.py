"""Alternative: group layer indices by type first, then read sources and sizes per group."""
import math


def kv_source_layers(layer_types, num_kv_shared_layers):
    count = len(layer_types)
    shared = num_kv_shared_layers
    if shared < 0 or shared > count:
        raise ValueError("num_kv_shared_layers must be within 0..L")
    cut = count - shared
    groups = {}
    for i, kind in enumerate(layer_types[:cut]):
        groups.setdefault(kind, []).append(i)
    result = list(range(cut))
    for kind in layer_types[cut:]:
        if kind not in groups:
            raise ValueError("shared layer without a non-shared layer of its type")
        result.append(groups[kind][-1])
    return result


def kv_cache_bytes(layer_types, num_kv_shared_layers, sliding_window, head_dims, num_kv_heads,
                   seq_len, batch, dtype_bytes):
    mapping = kv_source_layers(layer_types, num_kv_shared_layers)
    owners = [i for i, s in enumerate(mapping) if s == i]
    sizes = []
    for i in owners:
        window = seq_len if layer_types[i] == "full_attention" else min(seq_len, sliding_window - 1)
        sizes.append(math.prod((2, batch, num_kv_heads[i], window, head_dims[i], dtype_bytes)))
    return sum(sizes)
