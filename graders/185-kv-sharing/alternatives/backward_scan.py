"""Alternative: for each shared layer, scan backwards from the shared block for its type."""


def kv_source_layers(layer_types, num_kv_shared_layers):
    L = len(layer_types)
    n = num_kv_shared_layers
    if n < 0 or n > L:
        raise ValueError("bad number of shared layers")
    boundary = L - n
    out = []
    for i in range(L):
        if i < boundary:
            out.append(i)
            continue
        j = boundary - 1
        while j >= 0 and layer_types[j] != layer_types[i]:
            j -= 1
        if j < 0:
            raise ValueError("no producer for a shared layer")
        out.append(j)
    return out


def kv_cache_bytes(layer_types, num_kv_shared_layers, sliding_window, head_dims, num_kv_heads,
                   seq_len, batch, dtype_bytes):
    src = kv_source_layers(layer_types, num_kv_shared_layers)
    per_token = 0          # elements per position, summed over full layers
    sliding_elems = 0      # elements per position, summed over sliding layers
    for i, kind in enumerate(layer_types):
        if src[i] == i:
            elems = num_kv_heads[i] * head_dims[i]
            if kind == "sliding_attention":
                sliding_elems += elems
            else:
                per_token += elems
    kept = max(0, min(seq_len, sliding_window - 1))
    return 2 * batch * dtype_bytes * (per_token * seq_len + sliding_elems * kept)
