"""The wire between the trusted grader and the sandboxed worker.

A message is a JSON header plus raw byte buffers (tensor and array contents). Nothing is ever
unpickled: the trusted side decodes only JSON and typed byte buffers whose size it checks.

Frame: b"GRW1" | u32 json length | u32 buffer count | json | (u64 length | bytes) per buffer.
"""
from __future__ import annotations

import functools
import json
import math
import re
import struct
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any, BinaryIO

MAGIC = b"GRW1"
MAX_JSON = 64 << 20  # a request's JSON (the trusted grader's own arguments)
MAX_BUFFERS = 4096
MAX_TOTAL = 2 << 30

# What one reply from the sandbox may make the grader build. Real return values are tensors, and
# tuples, lists and dicts of a few dozen of them, a handful of levels deep; a failure reply of a
# RecursionError carries about 1000 traceback frames of 7 JSON nodes each. So 100k nodes and 64
# levels (a Python level is 2 JSON levels for a tuple, 3 for a dict) leave a wide margin, while
# 100k nodes of the costliest kind cost the grader about 10 MB, and 64 levels keep every recursion
# (json's scanner, decode) far from Python's limit. 2 MiB of JSON holds 100k floats written out;
# bigger results belong in tensor buffers. Measured: reading and decoding a hostile 8 MiB reply
# peaks at 2.3-3.2 times its size (the frame, one copy of each buffer, the JSON's objects).
MAX_REPLY_JSON = 2 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64
# Defaults of Limits.max_elements and Limits.max_dim in problem.toml (runner.problems.schema).
MAX_ELEMENTS = 1 << 28
MAX_DIM = 1 << 24
MAX_SAME_HASH = 8  # dict keys with one hash; crafted colliding keys would make building it quadratic

# dtypes that may cross the wire; bfloat16 travels as its 16-bit pattern.
TORCH_DTYPES = (
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "complex64",
)
NUMPY_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")


class WireError(Exception):
    """A message that does not follow the protocol (from a broken or hostile worker).

    Its text is fixed by the rule broken, never copied from the message: a verdict that showed
    what the sandboxed code sent would let it smuggle out the hidden tests' inputs."""


@dataclass(frozen=True)
class Bounds:
    """How much one message may make its receiver build: JSON size, nodes and depth, and tensor
    shapes (no dimension over max_dim, at most max_elements elements, zero dimensions counted as 1,
    so that a shape (2**59, 0) is refused as well)."""

    max_json: int = MAX_REPLY_JSON
    max_nodes: int = MAX_NODES
    max_depth: int = MAX_DEPTH
    max_elements: int = MAX_ELEMENTS
    max_dim: int = MAX_DIM

    def with_limits(self, limits: dict) -> "Bounds":
        """These bounds with the shape bounds of a problem's [limits] (absent ones keep theirs)."""
        return replace(self, max_elements=int(limits.get("max_elements", self.max_elements)),
                       max_dim=int(limits.get("max_dim", self.max_dim)))


REPLY = Bounds()
# The grader's requests are trusted: larger JSON (long strings) is accepted, the shapes stay bounded.
REQUEST = Bounds(max_json=MAX_JSON, max_nodes=MAX_JSON)


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


class NumpyGenerator:
    """A `numpy.random.Generator` to be built from a seed on the side that runs the function
    (`np.random.default_rng(seed)`), for problems whose functions take one.

    The same NumpyGenerator object keeps its state across calls into one worker.
    """

    def __init__(self, seed: int):
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise TypeError("NumpyGenerator seed must be a non-negative int")
        Generator._next_id += 1  # one count with Generator: an id names one generator of either kind
        self.id = Generator._next_id
        self.seed = seed

    def __repr__(self) -> str:
        return f"NumpyGenerator(seed={self.seed})"


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
    if isinstance(value, NumpyGenerator):
        return {"__np_generator__": value.id, "seed": value.seed}
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
            return _encode_ndarray(np, value, buffers)
        if isinstance(value, np.generic):
            return encode(value.item(), buffers)
    raise Unencodable(f"a value of type {type(value).__name__} cannot be sent")


def _encode_ndarray(np, a, buffers: list[bytes]) -> dict:
    """An array's contents in C order and little-endian bytes (a big-endian `>f4` array is sent as
    the float32 values it holds, not as its raw bytes)."""
    dtype = a.dtype.name
    if dtype not in NUMPY_DTYPES:
        raise Unencodable(f"numpy arrays of dtype {a.dtype} cannot be sent")
    buffers.append(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    return {"__ndarray__": len(buffers) - 1, "dtype": dtype, "shape": list(a.shape)}


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
_KEY_TYPES = (str, int, float, bool, type(None), tuple)


def _contained(fn):
    """`fn` raising only WireError, a fresh one with neither traceback into `fn` nor context: a
    failure is kept with the test's record, and must not keep the message it refused alive."""
    @functools.wraps(fn)
    def contained(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except WireError as exc:
            problem = str(exc)
        except RecursionError:
            problem = "nesting too deep"
        except MemoryError:
            problem = "the message does not fit in memory"
        except Exception as exc:  # noqa: BLE001 - a hostile message must not raise anything else
            problem = f"undecodable value ({type(exc).__name__})"
        del args, kwargs
        raise WireError(problem)

    return contained


@_contained
def decode(node: Any, buffers: list, resolve=None, *, bounds: Bounds = REPLY) -> Any:
    """Inverse of encode. `resolve(tag, node)` builds generators, handles and remote refs.

    Costs O(size of the message): each buffer may back one array only, and `bounds` caps nodes,
    depth and shapes. Whatever goes wrong, including in `resolve`, is a WireError."""
    return _Decoder(buffers, resolve, bounds).value(node, 0)


class _Decoder:
    """One decoding: counts nodes and remembers which buffers are taken."""

    def __init__(self, buffers: list, resolve, bounds: Bounds):
        self.buffers = buffers
        self.resolve = resolve
        self.bounds = bounds
        self.nodes = 0
        self.taken: set[int] = set()

    def count(self, depth: int) -> None:
        """Charge one node at `depth` (JSON levels below the decoded value)."""
        self.nodes += 1
        if self.nodes > self.bounds.max_nodes:
            raise WireError(f"more than {self.bounds.max_nodes} nodes")
        if depth > self.bounds.max_depth:
            raise WireError(f"nesting deeper than {self.bounds.max_depth} levels")

    def value(self, node: Any, depth: int) -> Any:
        """The value of one node."""
        self.count(depth)
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.value(v, depth + 1) for v in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise WireError("unexpected node")
        return self.tagged(node, depth)

    def tagged(self, node: dict, depth: int) -> Any:
        """The value of a {"__tag__": ...} node."""
        if "__tuple__" in node:
            return tuple(self.value(v, depth + 2) for v in _list(node["__tuple__"]))
        if "__dict__" in node:
            return self.dict(_list(node["__dict__"]), depth)
        if "__float__" in node:
            if node["__float__"] not in ("nan", "inf", "-inf"):
                raise WireError("bad float")
            return float(node["__float__"])
        if "__tensor__" in node:
            return self.tensor(node)
        if "__ndarray__" in node:
            return self.ndarray(node)
        if "__dtype__" in node:
            return _dtype(node["__dtype__"])
        if "__device__" in node:
            return _device(node["__device__"])
        for tag in ("__generator__", "__np_generator__", "__handle__", "__remote__"):
            if tag in node:
                if self.resolve is None:
                    raise WireError(f"{tag} not accepted here")
                return self.resolve(tag, node)
        raise WireError("unknown node keys")

    def dict(self, pairs: list, depth: int) -> dict:
        """A dict from [key, value] pairs; keys hashable, and not crafted to share a hash."""
        out: dict = {}
        per_hash: dict[int, int] = {}  # an int's hash is itself: counting hashes cannot collide
        for pair in pairs:
            self.count(depth + 2)
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("bad dict entry")
            key = self.value(pair[0], depth + 3)
            if not isinstance(key, _KEY_TYPES):
                raise WireError("unhashable dict key")
            h = hash(key)
            per_hash[h] = per_hash.get(h, 0) + 1
            if per_hash[h] > MAX_SAME_HASH:
                raise WireError("dict keys with colliding hashes")
            out[key] = self.value(pair[1], depth + 3)
        return out

    def take(self, node: dict, allowed) -> tuple[str, tuple[int, ...], Any]:
        """dtype, shape and buffer of an array node, checked; the buffer cannot be taken again."""
        index, dtype, shape = node.get("__tensor__", node.get("__ndarray__")), node.get("dtype"), node.get("shape")
        if dtype not in allowed:
            raise WireError("dtype not allowed")
        if type(index) is not int or not 0 <= index < len(self.buffers):
            raise WireError("bad buffer index")
        if index in self.taken:
            raise WireError("a buffer is used by more than one array")
        shape = _shape(shape, self.bounds)
        raw = self.buffers[index]
        if len(raw) != math.prod(shape) * _ITEMSIZE[dtype]:
            raise WireError("buffer size does not match shape and dtype")
        self.taken.add(index)
        return dtype, shape, raw

    def ndarray(self, node: dict):
        """A numpy array, copied out of its buffer (the one copy a buffer gets)."""
        dtype, shape, raw = self.take(node, NUMPY_DTYPES)
        return _array(raw, dtype).reshape(shape)

    def tensor(self, node: dict):
        """A torch tensor, sharing the memory of its copied-out array."""
        import torch

        dtype, shape, raw = self.take(node, TORCH_DTYPES)
        array = _array(raw, {"bfloat16": "int16"}.get(dtype, dtype)).reshape(shape)
        t = torch.from_numpy(array)
        return t.view(torch.bfloat16) if dtype == "bfloat16" else t


def _array(raw, dtype: str):
    """A fresh, writable numpy array of the buffer's bytes; bools are made 0 or 1."""
    import numpy as np

    if dtype == "bool":  # a byte other than 0 or 1 would be a bool that is neither
        return np.frombuffer(raw, dtype=np.uint8) != 0
    # The wire is little-endian; the copy is in this machine's own byte order.
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.dtype(dtype))


def _shape(shape: Any, bounds: Bounds) -> tuple[int, ...]:
    """A shape within bounds; zero dimensions count as 1, so (2**59, 0) is refused too."""
    if not isinstance(shape, list) or len(shape) > 16 or not all(type(s) is int and s >= 0 for s in shape):
        raise WireError("bad shape")
    if any(s > bounds.max_dim for s in shape):
        raise WireError(f"a dimension over {bounds.max_dim}")
    if math.prod(max(s, 1) for s in shape) > bounds.max_elements:
        raise WireError(f"more than {bounds.max_elements} elements")
    return tuple(shape)


def _dtype(name: Any):
    import torch

    if not isinstance(name, str) or name not in TORCH_DTYPES + ("int", "float"):
        raise WireError("bad dtype")
    return getattr(torch, name)


def _device(name: Any):
    import torch

    if not isinstance(name, str) or len(name) > 32:
        raise WireError("bad device")
    return torch.device(name)


def _list(v: Any) -> list:
    if not isinstance(v, list):
        raise WireError("expected a list")
    return v


# ---------------------------------------------------------------- the header's JSON

# A JSON string, escapes included; the closing quote is optional so that an unterminated string
# ends the match instead of making the search restart at every later quote (quadratic time).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def parse_header(text: str, bounds: Bounds) -> dict:
    """The JSON header, its nodes and depth checked before json builds anything."""
    # Brackets around a value max_depth levels deep: the header's, and the value's own.
    _check_structure(text, bounds.max_nodes, bounds.max_depth + 2)
    try:
        header = json.loads(text)
    except ValueError:
        raise WireError("header is not JSON") from None
    if not isinstance(header, dict):
        raise WireError("header is not an object")
    return header


def _tokens(text: str) -> int:
    # Every JSON value (object keys included) follows a '[', ',' or ':', or is the first: an upper
    # bound on the nodes json.loads would build (by one per empty container, and by the strings'
    # contents when they are not stripped).
    return 1 + text.count("[") + text.count("{") + text.count(",") + text.count(":")


def _check_structure(text: str, max_nodes: int, max_levels: int) -> None:
    """WireError unless the JSON has at most max_nodes nodes and max_levels levels of brackets;
    O(len(text)), and the exact look (strings stripped) only when the quick counts are over."""
    bare = None
    if _tokens(text) > max_nodes:
        bare = _STRING.sub('""', text)  # brackets and commas inside strings are not structure
        if _tokens(bare) > max_nodes:
            raise WireError(f"more than {max_nodes} nodes")
    if text.count("[") + text.count("{") <= max_levels:
        return
    brackets = _NOT_BRACKETS.sub("", bare if bare is not None else _STRING.sub('""', text))
    if 2 * (brackets.count("[") + brackets.count("{")) != len(brackets):
        raise WireError("unbalanced brackets")
    # At most 2 * max_nodes brackets are left (each opening one was counted as a node).
    if max(accumulate(map(_STEP.__getitem__, brackets))) > max_levels:
        raise WireError(f"nesting deeper than {max_levels - 2} levels")


# ---------------------------------------------------------------- framing

def write_message(stream: BinaryIO, header: dict, buffers: list) -> None:
    """Write one frame (header and buffers) to a binary stream."""
    body = json.dumps(header, allow_nan=False).encode()
    parts = [MAGIC, struct.pack("<II", len(body), len(buffers)), body]
    for b in buffers:
        parts.append(struct.pack("<Q", len(b)))
        parts.append(b)
    stream.write(b"".join(parts))
    stream.flush()


def pack_message(header: dict, buffers: list) -> bytes:
    """One frame as bytes."""
    import io

    out = io.BytesIO()
    write_message(out, header, buffers)
    return out.getvalue()


class FrameReader:
    """Incremental parser for frames arriving in chunks (used with select on a pipe).

    A frame is kept in one bytearray as it arrives; its buffers come back as memoryviews of it, so
    a reply of N bytes is held once, and decode copies each buffer once more."""

    def __init__(self, max_total: int = MAX_TOTAL, bounds: Bounds = REPLY):
        self.buf = bytearray()
        self.max_total = max_total
        self.bounds = bounds
        self.spans: list[tuple[int, int]] = []  # where the buffers of the frame being read lie
        self.total = 0  # their summed lengths

    @_contained
    def feed(self, chunk: bytes) -> None:
        """Add bytes read from the pipe; WireError as soon as they cannot be a frame."""
        self.buf += chunk
        if len(self.buf) >= 4 and self.buf[:4] != MAGIC:
            raise WireError("bad frame magic")
        if len(self.buf) >= 12:
            self._prefix()
        if len(self.buf) > 12 + self.bounds.max_json + 8 * MAX_BUFFERS + self.max_total:
            raise WireError("message too large")

    def _prefix(self) -> tuple[int, int]:
        json_len, nbuf = struct.unpack_from("<II", self.buf, 4)
        if json_len > self.bounds.max_json or nbuf > MAX_BUFFERS:
            raise WireError("frame header out of bounds")
        return json_len, nbuf

    def _end(self, json_len: int, nbuf: int) -> int | None:
        """Where the frame ends once it is all here, else None; each length is read once."""
        while len(self.spans) < nbuf:
            pos = self.spans[-1][1] if self.spans else 12 + json_len
            if len(self.buf) < pos + 8:
                return None
            (n,) = struct.unpack_from("<Q", self.buf, pos)
            self.total += n
            if self.total > self.max_total:
                raise WireError("message too large")
            self.spans.append((pos + 8, pos + 8 + n))
        end = self.spans[-1][1] if self.spans else 12 + json_len
        return end if len(self.buf) >= end else None

    @_contained
    def message(self) -> tuple[dict, list[memoryview]] | None:
        """A complete message if one is buffered, else None."""
        taken = self._take()
        if taken is None:
            return None
        frame, json_len, spans = taken
        view = memoryview(frame)
        return parse_header(_ascii(view[12: 12 + json_len]), self.bounds), [view[a:b] for a, b in spans]

    @_contained
    def frame(self) -> tuple[memoryview, str] | None:
        """A complete frame as its bytes and its header's text, unparsed, if one is buffered (the
        sandbox's relay forwards frames whole without decoding them), else None."""
        taken = self._take()
        if taken is None:
            return None
        frame, json_len, spans = taken
        end = spans[-1][1] if spans else 12 + json_len
        view = memoryview(frame)
        return view[:end], _ascii(view[12: 12 + json_len])

    def _take(self) -> tuple[bytearray, int, list[tuple[int, int]]] | None:
        if len(self.buf) < 12:
            return None
        json_len, nbuf = self._prefix()
        end = self._end(json_len, nbuf)
        if end is None:
            return None
        frame, self.buf = self.buf, self.buf[end:]  # the frame is not copied; what follows it is
        spans, self.spans, self.total = self.spans, [], 0
        return frame, json_len, spans


def _ascii(view: memoryview) -> str:
    try:
        return str(view, "ascii")  # json.dumps writes ASCII only
    except UnicodeDecodeError:
        raise WireError("header is not ASCII JSON") from None


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


def read_message(stream: BinaryIO, bounds: Bounds = REQUEST) -> tuple[dict, list[memoryview]] | None:
    """Blocking read of one message (worker side, so a request's bounds); None at end of stream."""
    first = stream.read(1)
    if not first:
        return None
    reader = FrameReader(bounds=bounds)
    reader.feed(first + _read_exact(stream, 11))
    json_len, nbuf = reader._prefix()
    reader.feed(_read_exact(stream, json_len))
    for _ in range(nbuf):
        size = _read_exact(stream, 8)
        reader.feed(size)
        reader.feed(_read_exact(stream, struct.unpack("<Q", size)[0]))
    msg = reader.message()
    if msg is None:
        raise WireError("truncated message")
    return msg
