"""The wire between the trusted grader and the sandboxed worker.

A message is a JSON header plus raw byte buffers (tensor and array contents). Nothing is ever
unpickled: the trusted side decodes only JSON and typed byte buffers whose size it checks.

Frame: b"GRW1" | u32 json length | u32 buffer count | json | (u64 length | bytes) per buffer.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any, BinaryIO

MAGIC = b"GRW1"
MAX_JSON = 64 << 20
MAX_BUFFERS = 4096
MAX_TOTAL = 2 << 30

# dtypes that may cross the wire; bfloat16 travels as its 16-bit pattern.
TORCH_DTYPES = (
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "complex64",
)
NUMPY_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


class WireError(Exception):
    """A message that does not follow the protocol (from a broken or hostile worker)."""


class Generator:
    """A `torch.Generator` to be built from a seed on the side that runs the function.

    The same Generator object keeps its state across calls into one worker.
    """

    _next_id = 0

    def __init__(self, seed: int, device: str = "cpu"):
        if not isinstance(seed, int):
            raise TypeError("Generator seed must be an int")
        Generator._next_id += 1
        self.id = Generator._next_id
        self.seed = seed
        self.device = device

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed})"


class Handle:
    """A named object that exists only inside the sandbox (for example the capstone's model)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Handle({self.name!r})"


class RemoteRef:
    """A reference to an object the worker keeps (an instance of the solver's class)."""

    def __init__(self, ref: int, type_name: str):
        self.ref = ref
        self.type_name = type_name


class Unencodable(TypeError):
    """A value that cannot cross the wire (the sandboxed side keeps it and sends a reference)."""

    pass


# ---------------------------------------------------------------- encoding

def encode(value: Any, buffers: list[bytes]) -> Any:
    """Turn a value into JSON-able structure, appending raw contents to `buffers`."""
    import sys

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, buffers) for v in value]}
    if isinstance(value, list):
        return [encode(v, buffers) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, buffers), encode(v, buffers)] for k, v in value.items()]}
    if isinstance(value, Generator):
        return {"__generator__": value.id, "seed": value.seed, "device": value.device}
    if isinstance(value, Handle):
        return {"__handle__": value.name}
    if isinstance(value, RemoteRef):
        return {"__remote__": value.ref, "type": value.type_name}
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return _encode_tensor(torch, value, buffers)
        if isinstance(value, torch.dtype):
            return {"__dtype__": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            if value.dtype.name not in NUMPY_DTYPES:
                raise Unencodable(f"numpy arrays of dtype {value.dtype} cannot be sent")
            buffers.append(np.ascontiguousarray(value).tobytes())
            return {"__ndarray__": len(buffers) - 1, "dtype": value.dtype.name, "shape": list(value.shape)}
        if isinstance(value, np.generic):
            return encode(value.item(), buffers)
    raise Unencodable(f"a value of type {type(value).__name__} cannot be sent")


def _encode_tensor(torch, t, buffers: list[bytes]) -> dict:
    dtype = str(t.dtype).removeprefix("torch.")
    if dtype not in TORCH_DTYPES:
        raise Unencodable(f"tensors of dtype {t.dtype} cannot be sent")
    device = t.device.type
    flat = t.detach().to("cpu").contiguous()
    if dtype == "bfloat16":
        flat = flat.view(torch.int16)
    elif dtype == "bool":
        flat = flat.to(torch.uint8)
    buffers.append(flat.numpy().tobytes() if flat.numel() else b"")
    return {"__tensor__": len(buffers) - 1, "dtype": dtype, "shape": list(t.shape), "device": device,
            "requires_grad": bool(t.requires_grad)}


# ---------------------------------------------------------------- decoding

_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
             "int8": 1, "uint8": 1, "bool": 1, "complex64": 8}


def decode(node: Any, buffers: list[bytes], resolve=None) -> Any:
    """Inverse of encode. `resolve(tag, node)` builds generators, handles and remote refs."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [decode(v, buffers, resolve) for v in node]
    if not isinstance(node, dict) or len(node) == 0:
        raise WireError(f"unexpected node {type(node).__name__}")
    if "__tuple__" in node:
        return tuple(decode(v, buffers, resolve) for v in _list(node["__tuple__"]))
    if "__dict__" in node:
        out = {}
        for pair in _list(node["__dict__"]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("bad dict entry")
            key = decode(pair[0], buffers, resolve)
            if not isinstance(key, (str, int, float, bool, type(None), tuple)):
                raise WireError("unhashable dict key")
            out[key] = decode(pair[1], buffers, resolve)
        return out
    if "__float__" in node:
        if node["__float__"] not in ("nan", "inf", "-inf"):
            raise WireError("bad float")
        return float(node["__float__"])
    if "__tensor__" in node:
        return _decode_tensor(node, buffers)
    if "__ndarray__" in node:
        import numpy as np

        dtype, shape, raw = _array_parts(node, buffers, NUMPY_DTYPES)
        return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    if "__dtype__" in node:
        import torch

        name = node["__dtype__"]
        if name not in TORCH_DTYPES + ("int", "float"):
            raise WireError("bad dtype")
        return getattr(torch, name)
    if "__device__" in node:
        import torch

        return torch.device(str(node["__device__"]))
    for tag in ("__generator__", "__handle__", "__remote__"):
        if tag in node:
            if resolve is None:
                raise WireError(f"{tag} not accepted here")
            return resolve(tag, node)
    raise WireError(f"unknown node keys {sorted(node)[:3]}")


def _list(v: Any) -> list:
    if not isinstance(v, list):
        raise WireError("expected a list")
    return v


def _array_parts(node: dict, buffers: list[bytes], allowed) -> tuple[str, tuple[int, ...], bytes]:
    index, dtype, shape = node.get("__tensor__", node.get("__ndarray__")), node.get("dtype"), node.get("shape")
    if dtype not in allowed:
        raise WireError(f"dtype {dtype!r} not allowed")
    if not isinstance(index, int) or not 0 <= index < len(buffers):
        raise WireError("bad buffer index")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape) or len(shape) > 16:
        raise WireError("bad shape")
    raw = buffers[index]
    if len(raw) != math.prod(shape) * _ITEMSIZE[dtype]:
        raise WireError("buffer size does not match shape and dtype")
    return dtype, tuple(shape), raw


def _decode_tensor(node: dict, buffers: list[bytes]):
    import numpy as np
    import torch

    dtype, shape, raw = _array_parts(node, buffers, TORCH_DTYPES)
    np_dtype = {"bfloat16": "int16", "bool": "uint8"}.get(dtype, dtype)
    array = np.frombuffer(raw, dtype=np.dtype(np_dtype)).reshape(shape).copy()
    t = torch.from_numpy(array)
    if dtype == "bfloat16":
        t = t.view(torch.bfloat16)
    elif dtype == "bool":
        t = t.to(torch.bool)
    return t


# ---------------------------------------------------------------- framing

def write_message(stream: BinaryIO, header: dict, buffers: list[bytes]) -> None:
    """Write one frame (header and buffers) to a binary stream."""
    body = json.dumps(header, allow_nan=False).encode()
    parts = [MAGIC, struct.pack("<II", len(body), len(buffers)), body]
    for b in buffers:
        parts.append(struct.pack("<Q", len(b)))
        parts.append(b)
    stream.write(b"".join(parts))
    stream.flush()


def pack_message(header: dict, buffers: list[bytes]) -> bytes:
    """One frame as bytes."""
    import io

    out = io.BytesIO()
    write_message(out, header, buffers)
    return out.getvalue()


class FrameReader:
    """Incremental parser for frames arriving in chunks (used with select on a pipe)."""

    def __init__(self, max_total: int = MAX_TOTAL):
        self.buf = bytearray()
        self.max_total = max_total

    def feed(self, chunk: bytes) -> None:
        """Add bytes read from the pipe; WireError as soon as they cannot be a frame."""
        self.buf += chunk
        if len(self.buf) > self.max_total + MAX_JSON:
            raise WireError("message too large")
        if len(self.buf) >= 4 and self.buf[:4] != MAGIC:
            raise WireError("bad frame magic")

    def message(self) -> tuple[dict, list[bytes]] | None:
        """A complete message if one is buffered, else None."""
        if len(self.buf) < 12:
            return None
        json_len, nbuf = struct.unpack_from("<II", self.buf, 4)
        if json_len > MAX_JSON or nbuf > MAX_BUFFERS:
            raise WireError("frame header out of bounds")
        pos = 12 + json_len
        if len(self.buf) < pos:
            return None
        buffers: list[bytes] = []
        total = 0
        for _ in range(nbuf):
            if len(self.buf) < pos + 8:
                return None
            (n,) = struct.unpack_from("<Q", self.buf, pos)
            total += n
            if total > self.max_total:
                raise WireError("message too large")
            if len(self.buf) < pos + 8 + n:
                return None
            buffers.append(bytes(self.buf[pos + 8: pos + 8 + n]))
            pos += 8 + n
        try:
            header = json.loads(bytes(self.buf[12: 12 + json_len]))
        except ValueError:
            raise WireError("header is not JSON") from None
        if not isinstance(header, dict):
            raise WireError("header is not an object")
        del self.buf[:pos]
        return header, buffers


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Read n bytes from a raw stream (a pipe returns what it has, not what was asked for)."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 20))
        if not chunk:
            raise WireError("truncated message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> tuple[dict, list[bytes]] | None:
    """Blocking read of one message (worker side); None at end of stream."""
    first = stream.read(1)
    if not first:
        return None
    head = first + _read_exact(stream, 11)
    reader = FrameReader()
    reader.feed(head)
    json_len, nbuf = struct.unpack_from("<II", head, 4)
    if json_len > MAX_JSON or nbuf > MAX_BUFFERS:
        raise WireError("frame header out of bounds")
    reader.feed(_read_exact(stream, json_len))
    for _ in range(nbuf):
        size = _read_exact(stream, 8)
        reader.feed(size)
        reader.feed(_read_exact(stream, struct.unpack("<Q", size)[0]))
    msg = reader.message()
    if msg is None:
        raise WireError("truncated message")
    return msg
