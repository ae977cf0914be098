"""The wire format: values round-trip; malformed or oversized frames are refused, never unpickled."""
import struct

import numpy as np
import pytest
import torch

from runner.sandbox import wire


def roundtrip(value):
    buffers: list[bytes] = []
    node = wire.encode(value, buffers)
    reader = wire.FrameReader()
    reader.feed(wire.pack_message({"v": node}, buffers))
    header, out = reader.message()
    return wire.decode(header["v"], out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64,
                                   torch.int32, torch.bool, torch.uint8])
def test_tensors_roundtrip_exactly(dtype):
    t = (torch.randn(3, 5) * 100).to(dtype)
    back = roundtrip(t)
    assert back.dtype == dtype and back.shape == t.shape
    assert torch.equal(back, t)


def test_structures_roundtrip():
    value = {"a": [1, 2.5, None, True], 3: (torch.zeros(0, 4), "s"), "nan": float("nan"),
             "arr": np.arange(6, dtype=np.int32).reshape(2, 3), "dtype": torch.bfloat16}
    back = roundtrip(value)
    assert back["a"] == [1, 2.5, None, True]
    assert isinstance(back[3], tuple) and back[3][0].shape == (0, 4) and back[3][1] == "s"
    assert back["nan"] != back["nan"]
    assert back["arr"].dtype == np.int32 and back["arr"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["dtype"] is torch.bfloat16


def test_objects_are_refused():
    with pytest.raises(wire.Unencodable):
        wire.encode(object(), [])
    with pytest.raises(wire.Unencodable):
        wire.encode(np.array([object()]), [])


def frame(header_bytes: bytes, buffers=(), nbuf=None):
    parts = [wire.MAGIC, struct.pack("<II", len(header_bytes), len(buffers) if nbuf is None else nbuf),
             header_bytes]
    for b in buffers:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


@pytest.mark.parametrize("data,match", [
    (b"XXXX" + b"\0" * 20, "magic"),
    (frame(b"[1,2]"), "not an object"),
    (frame(b"{not json"), "not JSON"),
    (frame(b"{}", nbuf=10**6), "out of bounds"),
])
def test_malformed_frames(data, match):
    reader = wire.FrameReader()
    with pytest.raises(wire.WireError, match=match):
        reader.feed(data)
        reader.message()


@pytest.mark.parametrize("node,match", [
    ({"__tensor__": 0, "dtype": "float32", "shape": [3]}, "size"),
    ({"__tensor__": 5, "dtype": "float32", "shape": [1]}, "index"),
    ({"__tensor__": 0, "dtype": "object", "shape": [1]}, "not allowed"),
    ({"__pickle__": "gASV"}, "unknown"),
    ({"__remote__": 1}, "not accepted"),
    ({"__float__": "1e999999"}, "bad float"),
])
def test_decode_refuses_bad_nodes(node, match):
    with pytest.raises(wire.WireError, match=match):
        wire.decode(node, [b"\0" * 4])


def test_oversized_message_refused():
    reader = wire.FrameReader(max_total=1000)
    with pytest.raises(wire.WireError, match="too large"):
        reader.feed(frame(b"{}", [b"x" * 2000]))
        reader.message()


def test_read_message_from_a_pipe_in_pieces():
    """A pipe hands over what it has; a large message arrives in many reads."""
    import os
    import threading

    big = torch.arange(3_000_000, dtype=torch.int64)
    buffers: list[bytes] = []
    data = wire.pack_message({"v": wire.encode(big, buffers)}, buffers)
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb", buffering=0) as out:
            for i in range(0, len(data), 65536):
                out.write(data[i:i + 65536])

    threading.Thread(target=writer).start()
    with os.fdopen(r, "rb", buffering=0) as stream:
        header, out = wire.read_message(stream)
        assert wire.read_message(stream) is None
    assert torch.equal(wire.decode(header["v"], out), big)


# ---------------------------------------------------------------- hostile replies

def tensor_node(index, shape, dtype="uint8"):
    return {"__tensor__": index, "dtype": dtype, "shape": list(shape)}


def read_reply(data: bytes, reader=None):
    """Header and buffers of one frame, read as the client reads them."""
    reader = reader or wire.FrameReader()
    reader.feed(data)
    return reader.message()


@pytest.mark.parametrize("value", [
    [tensor_node(0, [4]), tensor_node(0, [4])],
    [{"__ndarray__": 0, "dtype": "uint8", "shape": [4]}, tensor_node(0, [4])],
    {"__dict__": [["a", tensor_node(0, [4])], ["b", {"__tuple__": [tensor_node(0, [2, 2])]}]]},
])
def test_a_buffer_backs_one_array_only(value):
    """Many nodes naming one buffer would each get a copy of it: refused."""
    with pytest.raises(wire.WireError, match="more than one array"):
        wire.decode(value, [b"\0" * 4])


def test_node_count_is_bounded_in_decode_and_before_json():
    """decode counts its nodes; the reader bounds them from the raw JSON, before json builds any."""
    with pytest.raises(wire.WireError, match="more than 10 nodes"):
        wire.decode(list(range(10)), [], bounds=wire.Bounds(max_nodes=10))
    assert wire.decode(list(range(9)), [], bounds=wire.Bounds(max_nodes=10)) == list(range(9))
    many = wire.pack_message({"v": [0] * wire.MAX_NODES}, [])
    with pytest.raises(wire.WireError, match=f"more than {wire.MAX_NODES} nodes"):
        read_reply(many)
    # brackets, commas and colons inside strings are not structure
    header, _ = read_reply(wire.pack_message({"v": ",[{:" * wire.MAX_NODES}, []))
    assert len(header["v"]) == 4 * wire.MAX_NODES


def test_a_header_of_empty_lists_is_refused_before_it_is_parsed():
    """16 MiB of [] is refused from the frame's first 12 bytes; a 2 MiB one (the reply limit) costs
    no more than its text, since json never parses it."""
    import tracemalloc

    huge = frame(b"[" + b"[]," * ((16 << 20) // 3) + b"[]]")
    with pytest.raises(wire.WireError, match="out of bounds"):
        wire.FrameReader().feed(huge[:12])
    body = b'{"v": [' + b"[]," * ((wire.MAX_REPLY_JSON - 16) // 3) + b"[]]}"
    data = frame(body)
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError, match="nodes"):
            read_reply(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the frame, its text, the text with strings stripped and the join that made it; json.loads
    # would have built 700k lists, about 20 times the text
    assert peak < 5 * len(body), peak


def test_depth_is_bounded():
    """Nesting beyond max_depth is refused by decode, and by the reader before json recurses."""
    assert wire.decode(nested(wire.MAX_DEPTH), []) is not None
    with pytest.raises(wire.WireError, match="deeper than 64"):
        wire.decode(nested(wire.MAX_DEPTH + 1), [])
    header, _ = read_reply(wire.pack_message({"v": nested(wire.MAX_DEPTH)}, []))
    assert wire.decode(header["v"], []) == nested(wire.MAX_DEPTH)
    with pytest.raises(wire.WireError, match="deeper than 64"):
        read_reply(wire.pack_message({"v": nested(wire.MAX_DEPTH + 1)}, []))
    # a tuple is two JSON levels: 33 nested tuples are 66
    assert wire.decode(wire.encode(nested_tuples(31), []), []) == nested_tuples(31)
    with pytest.raises(wire.WireError, match="deeper than 64"):
        wire.decode(wire.encode(nested_tuples(33), []), [])


def nested(depth: int) -> list:
    """A list nested `depth` levels below the outermost."""
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def nested_tuples(depth: int):
    value: tuple = ()
    for _ in range(depth):
        value = (value,)
    return value


@pytest.mark.parametrize("depth", [10_000, 1_000_000])
def test_deep_nesting_is_a_wire_error_not_a_recursion_error(depth):
    """However deep, and whatever the bounds let through, nesting ends as a WireError."""
    text = b'{"v": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(wire.WireError, match="nesting|nodes"):
        read_reply(frame(text))
    loose = wire.Bounds(max_depth=10 ** 7, max_nodes=10 ** 7, max_json=10 ** 7)
    with pytest.raises(wire.WireError, match="nesting too deep"):
        read_reply(frame(text), wire.FrameReader(bounds=loose))  # json's own recursion guard
    with pytest.raises(wire.WireError, match="nesting too deep"):
        wire.decode(nested(depth), [], bounds=loose)  # decode's recursion


@pytest.mark.parametrize("shape,match", [
    ([2 ** 59, 0], "dimension over"),
    ([0, 2 ** 59], "dimension over"),
    ([wire.MAX_DIM + 1, 0], "dimension over"),
    ([2 ** 20, 2 ** 20, 0], "elements"),  # no dimension too long, but a test may loop over 2**40
])
def test_zero_element_shapes_are_bounded_too(shape, match):
    """A tensor holding nothing still has dimensions a test may loop over: each is bounded, and so
    is the product of the non-zero ones."""
    with pytest.raises(wire.WireError, match=match):
        wire.decode(tensor_node(0, shape, "float32"), [b""])


def test_largest_zero_element_shape_within_bounds_decodes():
    t = wire.decode(tensor_node(0, [wire.MAX_DIM, 0], "float32"), [b""])
    assert t.shape == (wire.MAX_DIM, 0)


def test_element_count_and_dimension_bounds_come_from_the_limits():
    """The problem's max_elements and max_dim (as the client passes them) bound a reply's arrays."""
    bounds = wire.REPLY.with_limits({"max_elements": 12.0, "max_dim": 5, "time_s": 3})
    assert (bounds.max_elements, bounds.max_dim, bounds.max_nodes) == (12, 5, wire.MAX_NODES)
    assert wire.decode(tensor_node(0, [3, 4]), [b"\0" * 12], bounds=bounds).shape == (3, 4)
    with pytest.raises(wire.WireError, match="more than 12 elements"):
        wire.decode(tensor_node(0, [4, 4]), [b"\0" * 16], bounds=bounds)
    with pytest.raises(wire.WireError, match="dimension over 5"):
        wire.decode({"__ndarray__": 0, "dtype": "uint8", "shape": [6, 1]}, [b"\0" * 6], bounds=bounds)
    assert wire.REPLY.with_limits({}) == wire.REPLY


def test_limits_schema_defaults_are_the_wire_defaults():
    from runner.problems.schema import Limits

    limits = Limits()
    assert (limits.max_elements, limits.max_dim) == (wire.MAX_ELEMENTS, wire.MAX_DIM) == (2 ** 28, 2 ** 24)
    assert wire.REPLY.with_limits(limits.model_dump()) == wire.REPLY


def failing_resolve(exc: BaseException):
    """A resolve callback that raises `exc`."""
    def resolve(tag, node):
        raise exc
    return resolve


@pytest.mark.parametrize("node,resolve", [
    ({"__remote__": 1}, failing_resolve(KeyError("SECRET"))),
    ({"__remote__": 1}, failing_resolve(OverflowError("SECRET"))),
    ({"__remote__": 1}, failing_resolve(MemoryError("SECRET"))),
    ({"__remote__": 1}, failing_resolve(RecursionError("SECRET"))),
    ({"__remote__": 1}, failing_resolve(ZeroDivisionError("SECRET"))),
    ({"__remote__": 1}, failing_resolve(UnicodeDecodeError("utf-8", b"", 0, 1, "SECRET"))),
    ({"__dict__": [[{"__tuple__": [[1]]}, 1]]}, None),  # TypeError: a tuple key holding a list
    ({"__device__": "SECRET"}, None),  # RuntimeError from torch
], ids=["KeyError", "OverflowError", "MemoryError", "RecursionError", "ZeroDivisionError",
        "UnicodeDecodeError", "TypeError", "RuntimeError"])
def test_every_failure_is_a_wire_error(node, resolve):
    """Whatever decoding raises, the caller sees a WireError, with a text of the wire's own and
    nothing chained to it."""
    with pytest.raises(wire.WireError) as info:
        wire.decode(node, [], resolve)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "SECRET" not in str(info.value)


def test_refusals_do_not_echo_what_was_sent():
    """A verdict shows the refusal's text: it must carry nothing the sandboxed code chose."""
    secret = "SECRET-hidden-input-3.14159"
    nodes = [{secret: 1}, {"__tensor__": 0, "dtype": secret, "shape": [1]},
             {"__device__": secret * 10}, {"__dtype__": secret}, {"__float__": secret}]
    for node in nodes:
        with pytest.raises(wire.WireError) as info:
            wire.decode(node, [b"\0"])
        assert secret not in str(info.value)
    with pytest.raises(wire.WireError) as info:
        read_reply(frame(('{"v": "' + secret + '"').encode()))
    assert secret not in str(info.value)


def test_colliding_dict_keys_are_refused():
    """Keys crafted to share one hash would make building the dict quadratic."""
    p = 2 ** 61 - 1  # hash(k * p) == 0 for every int k
    colliding = {"__dict__": [[k * p, None] for k in range(1, 50)]}
    with pytest.raises(wire.WireError, match="colliding"):
        wire.decode(colliding, [])
    ordinary = {"__dict__": [[k, None] for k in range(5000)]}
    assert len(wire.decode(ordinary, [])) == 5000


def test_bool_bytes_are_normalised():
    """A bool buffer byte other than 0 or 1 becomes True, not a bool that is neither."""
    t = wire.decode(tensor_node(0, [3], "bool"), [bytes([0, 1, 7])])
    assert t.tolist() == [False, True, True] and (t == True).tolist() == [False, True, True]  # noqa: E712
    a = wire.decode({"__ndarray__": 0, "dtype": "bool", "shape": [3]}, [bytes([0, 1, 7])])
    assert a.tolist() == [False, True, True]


def test_header_must_be_ascii_json():
    with pytest.raises(wire.WireError, match="ASCII"):
        read_reply(frame('{"v": "é"}'.encode()))


def test_unterminated_strings_cost_linear_time():
    """Stripping strings to count nodes never restarts at every quote (quadratic on 2 MiB)."""
    import time

    body = ('{"v": [' + '"\\",' * ((wire.MAX_REPLY_JSON - 16) // 4)).encode()
    t0 = time.monotonic()
    with pytest.raises(wire.WireError):
        read_reply(frame(body))
    assert time.monotonic() - t0 < 5


def test_requests_may_be_larger_than_replies():
    """The child reads the grader's requests with the larger request limit; a reply that size is refused."""
    import io

    data = wire.pack_message({"v": "x" * (wire.MAX_REPLY_JSON + 10)}, [])
    header, _ = wire.read_message(io.BytesIO(data))
    assert len(header["v"]) == wire.MAX_REPLY_JSON + 10
    with pytest.raises(wire.WireError, match="out of bounds"):
        read_reply(data)


def test_a_refused_reply_is_not_kept_alive_by_its_failure():
    """A failure outlives the call (a test's record keeps it); it must not hold the reply's memory."""
    import gc
    import tracemalloc

    def refuse():
        reader = wire.FrameReader()
        reader.feed(wire.pack_message({"v": [tensor_node(0, [4 << 20])] * 2}, [bytes(4 << 20)]))
        header, buffers = reader.message()
        try:
            wire.decode(header["v"], buffers)
        except wire.WireError as exc:
            del header, buffers  # as the client does: the traceback keeps this frame
            return exc

    tracemalloc.start()
    try:
        failure = refuse()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert failure.__traceback__ is not None and failure.__context__ is None
    assert held < 1 << 20, held


def many_tensors(buffers: list) -> list:
    """4000 small tensors, each with its own buffer (close to MAX_BUFFERS)."""
    for _ in range(4000):
        buffers.append(bytes(2000))
    return [tensor_node(i, [2000]) for i in range(4000)]


# Values that pass every bound and cost the most per byte of JSON: nodes up to MAX_NODES (an empty
# container is counted twice), or one string of a 4-byte character filling MAX_REPLY_JSON.
HOSTILE = {
    "empty-lists": lambda buffers: [[] for _ in range(49_000)],
    "one-entry-dicts": lambda buffers: [{"__dict__": [[i, None]]} for i in range(16_000)],
    "one-item-tuples": lambda buffers: [{"__tuple__": [i]} for i in range(24_000)],
    "floats": lambda buffers: [i + 0.123456789 for i in range(99_000)],
    "astral-string": lambda buffers: ["a" * (wire.MAX_REPLY_JSON - 100) + "\U0001F600"],
    "many-tensors": many_tensors,
}
REPLY_BYTES = 8 << 20


def hostile_reply(make) -> bytes:
    """A reply of about REPLY_BYTES: the hostile value, and a tensor that fills the rest."""
    buffers: list[bytes] = []
    value = make(buffers)
    used = len(wire.pack_message({"ok": True, "value": value}, buffers))
    buffers.append(bytes(REPLY_BYTES - used - 200))
    value = [value, tensor_node(len(buffers) - 1, [len(buffers[-1])])]
    return wire.pack_message({"ok": True, "value": value}, buffers)


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_decoding_costs_a_small_multiple_of_the_reply(kind):
    """Reading and decoding a legal-size hostile reply, as the client does (in 1 MiB reads), peaks
    under 4 times the reply's size: the frame, one copy of each buffer, and the bounded JSON."""
    import time
    import tracemalloc

    data = hostile_reply(HOSTILE[kind])
    assert abs(len(data) - REPLY_BYTES) < 1024
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        reader = wire.FrameReader()
        for i in range(0, len(data), 1 << 20):
            reader.feed(data[i: i + (1 << 20)])
            message = reader.message()
        value = wire.decode(message[0]["value"], message[1])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - t0
    assert value[1].numel() > 0
    assert peak < 4 * len(data), f"{peak / len(data):.2f} times the reply"
    assert elapsed < 10  # measured 0.1-0.5 s untraced, about 1.5 s under tracemalloc


@pytest.mark.parametrize("reply", [
    {"ok": False, "kind": "error", "type": "E", "message": "m", "frames": 5},
    {"ok": False, "kind": "error", "type": "E", "message": "m", "frames": [{"line": "7"}]},
    {"ok": False, "kind": "error", "type": "E", "message": "m", "frames": [{"line": 1, "function": 2, "code": ""}]},
    {"ok": False, "kind": "memory", "type": ["E"], "message": "m", "frames": []},
    {"ok": False, "kind": "timeout", "type": "E", "message": "the grader's clock, says the sandbox"},
])
def test_a_malformed_failure_reply_is_a_crash(reply):
    from runner.sandbox.failures import SolverCrashed, failure_from_reply

    failure = failure_from_reply(reply)
    assert type(failure) is SolverCrashed and "says the sandbox" not in failure.message
