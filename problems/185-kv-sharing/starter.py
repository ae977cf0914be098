"""KV sharing across layers (Gemma 4)."""


def kv_source_layers(layer_types: list[str], num_kv_shared_layers: int) -> list[int]:
    """For each of the L layers, the index of the layer whose keys and values it attends to.

    layer_types: L strings, "sliding_attention" or "full_attention".
    num_kv_shared_layers: how many of the last layers reuse an earlier layer's K/V.
    Returns a list of L Python ints; raises ValueError when no valid sharing exists.
    """
    # your code here
    raise NotImplementedError


def kv_cache_bytes(layer_types: list[str], num_kv_shared_layers: int, sliding_window: int,
                   head_dims: list[int], num_kv_heads: list[int], seq_len: int, batch: int,
                   dtype_bytes: int) -> int:
    """Bytes of keys and values held by the KV cache after seq_len tokens (a Python int)."""
    # your code here
    raise NotImplementedError
