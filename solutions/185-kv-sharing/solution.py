"""KV sharing across layers (Gemma 4): which layer's keys and values each layer reads, and the
size of the KV cache that this leaves."""


def kv_source_layers(layer_types: list[str], num_kv_shared_layers: int) -> list[int]:
    """For each layer, the index of the layer whose keys and values it attends to.

    The last `num_kv_shared_layers` layers compute no K/V: each reads those of the last earlier
    non-shared layer of its own type. Every other layer reads its own (source = itself).
    """
    num_layers = len(layer_types)
    if not 0 <= num_kv_shared_layers <= num_layers:
        raise ValueError("num_kv_shared_layers must lie in [0, number of layers]")
    first_shared = num_layers - num_kv_shared_layers
    last_of_type: dict[str, int] = {}
    for i in range(first_shared):
        last_of_type[layer_types[i]] = i
    sources = list(range(first_shared))
    for i in range(first_shared, num_layers):
        if layer_types[i] not in last_of_type:
            raise ValueError("a shared layer has no earlier non-shared layer of its type")
        sources.append(last_of_type[layer_types[i]])
    return sources


def kv_cache_bytes(layer_types: list[str], num_kv_shared_layers: int, sliding_window: int,
                   head_dims: list[int], num_kv_heads: list[int], seq_len: int, batch: int,
                   dtype_bytes: int) -> int:
    """Bytes of keys and values that the cache holds after `seq_len` tokens.

    Only layers that compute their own K/V keep a cache entry; a sliding layer keeps at most
    `sliding_window - 1` positions, a full layer keeps all of them.
    """
    sources = kv_source_layers(layer_types, num_kv_shared_layers)
    total = 0
    for i, layer_type in enumerate(layer_types):
        if sources[i] != i:
            continue  # a shared layer stores nothing
        if layer_type == "sliding_attention":
            positions = min(seq_len, sliding_window - 1)
        else:
            positions = seq_len
        total += 2 * batch * num_kv_heads[i] * positions * head_dims[i] * dtype_bytes
    return int(total)
