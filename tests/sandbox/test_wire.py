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
