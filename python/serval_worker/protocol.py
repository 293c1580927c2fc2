"""Serval worker protocol, version 2 (docs/worker-protocol.md): frame encoding and decoding.

Everything here is a pure function over bytes/memoryview, except ``FrameReader``, which pulls frames
from any ``recv_into`` callable (a socket's) into one reusable buffer.

Tensors (INFER, INFER_RESULT) are numpy arrays. ``decode_infer`` maps fixed-size tensor data straight out
of the frame buffer with ``numpy.frombuffer`` — no copy — so the arrays are only valid until the reader
reads the next frame; ``InferBatch.frame_ref`` tells whether anything still holds them afterwards.
"""
import functools
import json
import struct
import weakref
from collections import namedtuple

import numpy as np

VERSION = 2
READY, LOAD_FAILED, INVOKE, RESULT, INFER, INFER_RESULT, SHUTDOWN = 0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x20
INVOKE_FILE, FILE_RESULT = 0x14, 0x15
FRAME_TYPES = frozenset((READY, LOAD_FAILED, INVOKE, RESULT, INFER, INFER_RESULT, INVOKE_FILE, FILE_RESULT, SHUTDOWN))
OK, BAD_INPUT, MODEL_ERROR = 0, 1, 2
BATCH_MODE, ITEMS_MODE = 0, 1  # INFER_RESULT modes
MAX_FRAME = 256 * 1024 * 1024  # largest frame body, in bytes
MAX_RANK = 32  # largest tensor rank on the wire

# The Open Inference Protocol datatypes with a fixed element size, and the numpy dtype of their wire form
# (BF16 travels as the upper 16 bits of a float32, so as uint16).
WIRE_DTYPES = {name: np.dtype(code) for name, code in (
    ("BOOL", "?"), ("UINT8", "u1"), ("UINT16", "<u2"), ("UINT32", "<u4"), ("UINT64", "<u8"),
    ("INT8", "i1"), ("INT16", "<i2"), ("INT32", "<i4"), ("INT64", "<i8"),
    ("FP16", "<f2"), ("FP32", "<f4"), ("FP64", "<f8"), ("BF16", "<u2"))}
DATATYPES = tuple(WIRE_DTYPES) + ("BYTES",)
_DATATYPE_OF_CODE = {np.dtype(code).str: name for name, code in (
    ("BOOL", "?"), ("UINT8", "u1"), ("UINT16", "<u2"), ("UINT32", "<u4"), ("UINT64", "<u8"),
    ("INT8", "i1"), ("INT16", "<i2"), ("INT32", "<i4"), ("INT64", "<i8"),
    ("FP16", "<f2"), ("FP32", "<f4"), ("FP64", "<f8"))}

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_HEAD = struct.Struct("<IBB")  # length, version, type
_BATCH = struct.Struct("<QI")  # batch_id, count
_BATCH_HEAD = struct.Struct("<IBBQI")  # frame header + batch header
_INFER_HEAD = struct.Struct("<IBBQB")  # frame header + batch_id, mode
_STATUS = struct.Struct("<BH")  # status, content type length
_FILE_HEAD = struct.Struct("<IBBQBH")  # frame header + batch_id, status, content type length
_FILE_TAIL = struct.Struct("<QI")  # bytes_written, message length
_DIMS = [struct.Struct("<%dq" % rank) for rank in range(MAX_RANK + 1)]

Item = namedtuple("Item", "content_type accept custom_attrs body")
Item.__doc__ = "One INVOKE item: three header strings and the raw body (bytes)."

Tensor = namedtuple("Tensor", "name datatype array")
Tensor.__doc__ = """A named Open Inference Protocol tensor.

Decoded (``decode_infer``): ``array`` is a read-only numpy array of the datatype's dtype, a view of the frame
buffer; BF16 arrives as a float32 copy and BYTES as an object array of ``bytes``.
For encoding (``wire_tensor``): ``array`` is in wire form — C-contiguous little-endian (BF16 as uint16), or
for BYTES an object array of ``bytes``."""

FileItem = namedtuple("FileItem", "batch_id content_type accept custom_attrs input_path output_path")
FileItem.__doc__ = "A decoded INVOKE_FILE payload: the request's header strings and the paths of its body and response."

InferBatch = namedtuple("InferBatch", "batch_id rows inputs outputs frame_ref")
InferBatch.__doc__ = """A decoded INFER payload: ``rows`` per item, ``inputs`` (Tensors, in request order),
``outputs`` (requested names, possibly empty) and ``frame_ref``, a ``FrameRef``: ``frame_ref()`` is not None
while anything (an input array or a view of one) still uses the frame buffer."""


class ProtocolError(Exception):
    """A frame or payload that breaks the protocol; the connection cannot be trusted after it."""


def encode_frame(ftype, payload=b""):
    """Return one complete frame (header and payload) as bytes."""
    return _HEAD.pack(len(payload) + 2, VERSION, ftype) + payload


def encode_json_frame(ftype, obj):
    """Return a frame whose payload is ``obj`` as UTF-8 JSON (READY, LOAD_FAILED)."""
    return encode_frame(ftype, json.dumps(obj).encode("utf-8"))


def encode_result(batch_id, results):
    """Return a RESULT frame; ``results`` holds ``(status, content_type, body)`` per item (content types
    must fit in 65535 UTF-8 bytes)."""
    parts, size = [b""], 14
    for status, ct, body in results:
        raw = ct.encode("utf-8") if ct else b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        parts += (_STATUS.pack(status, len(raw)), raw, _U32.pack(len(body)), body)
        size += 7 + len(raw) + len(body)
    parts[0] = _BATCH_HEAD.pack(size, VERSION, RESULT, batch_id, len(results))
    return b"".join(parts)


def encode_file_result(batch_id, status, content_type, bytes_written, message=b""):
    """Return a FILE_RESULT frame (``content_type`` must fit in 65535 UTF-8 bytes; ``message`` is str or bytes)."""
    raw = content_type.encode("utf-8") if content_type else b""
    if isinstance(message, str):
        message = message.encode("utf-8")
    size = 2 + 8 + 1 + 2 + len(raw) + 12 + len(message)
    return b"".join((_FILE_HEAD.pack(size, VERSION, FILE_RESULT, batch_id, status, len(raw)), raw,
                     _FILE_TAIL.pack(bytes_written, len(message)), message))


def parse_frame(buf, start=0, end=None):
    """Parse the frame at ``buf[start:end]``.

    Returns ``(type, payload, next_start)`` with ``payload`` a memoryview into ``buf``, or None when the
    frame is not complete yet. Raises ProtocolError for a bad length, version or type.
    """
    if end is None:
        end = len(buf)
    avail = end - start
    if avail < 4:
        return None
    (length,) = _U32.unpack_from(buf, start)
    if length < 2 or length > MAX_FRAME:
        raise ProtocolError("bad frame length %d" % length)
    if avail < 6:
        return None
    if buf[start + 4] != VERSION:
        raise ProtocolError("unsupported protocol version %d" % buf[start + 4])
    ftype = buf[start + 5]
    if ftype not in FRAME_TYPES:
        raise ProtocolError("unknown frame type 0x%02x" % ftype)
    if avail < 4 + length:
        return None
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    return ftype, view[start + 6:start + 4 + length], start + 4 + length


def decode_invoke(payload):
    """Decode an INVOKE payload into ``(batch_id, [Item, ...])``; bodies are copied to bytes."""
    size = len(payload)
    if size < 12:
        raise ProtocolError("INVOKE header is truncated")
    batch_id, count = _BATCH.unpack_from(payload, 0)
    off, items = 12, []
    u16, u32 = _U16.unpack_from, _U32.unpack_from
    for index in range(count):
        fields = []
        for _ in range(3):
            if off + 2 > size:
                break
            end = off + 2 + u16(payload, off)[0]
            if end > size:
                break
            fields.append(str(payload[off + 2:end], "utf-8", "replace") if end > off + 2 else "")
            off = end
        if len(fields) < 3 or off + 4 > size or off + 4 + u32(payload, off)[0] > size:
            raise ProtocolError("INVOKE item %d is truncated" % index)
        end = off + 4 + u32(payload, off)[0]
        items.append(Item(fields[0], fields[1], fields[2], bytes(payload[off + 4:end])))
        off = end
    if off != size:
        raise ProtocolError("INVOKE has %d trailing bytes" % (size - off))
    return batch_id, items


def decode_invoke_file(payload):
    """Decode an INVOKE_FILE payload into a ``FileItem``."""
    size = len(payload)
    if size < 8:
        raise ProtocolError("INVOKE_FILE header is truncated")
    (batch_id,) = _U64.unpack_from(payload, 0)
    off, fields = 8, []
    for what in ("content type", "accept", "custom attributes", "input path", "output path"):
        text, off = _str16(payload, off, size, "INVOKE_FILE " + what)
        fields.append(text)
    if off != size:
        raise ProtocolError("INVOKE_FILE has %d trailing bytes" % (size - off))
    if not fields[3] or not fields[4] or "\0" in fields[3] or "\0" in fields[4]:
        raise ProtocolError("INVOKE_FILE has an empty path or one with a NUL byte")
    return FileItem(batch_id, *fields)


# ---------------------------------------------------------------- tensors

def _str16(mv, off, size, what):
    """Read a str16 at ``off``; returns ``(text, next_offset)``."""
    if off + 2 > size:
        raise ProtocolError("%s is truncated" % what)
    end = off + 2 + _U16.unpack_from(mv, off)[0]
    if end > size:
        raise ProtocolError("%s is truncated" % what)
    try:
        return str(mv[off + 2:end], "utf-8"), end
    except UnicodeDecodeError:
        raise ProtocolError("%s is not UTF-8" % what) from None


def _decode_bytes_elements(mv, off, length, count):
    """Decode ``count`` u32-length-prefixed elements filling exactly ``mv[off:off + length]``."""
    elements, end, u32 = [], off + length, _U32.unpack_from
    while off < end:
        if off + 4 > end:
            raise ProtocolError("has a truncated BYTES element (element %d)" % len(elements))
        stop = off + 4 + u32(mv, off)[0]
        if stop > end:
            raise ProtocolError("has a truncated BYTES element (element %d)" % len(elements))
        elements.append(bytes(mv[off + 4:stop]))
        off = stop
    if len(elements) != count:
        raise ProtocolError("has %d BYTES elements for %d in its shape" % (len(elements), count))
    array = np.empty(count, dtype=object)
    array[:] = elements
    return array


class FrameRef:
    """Weak references to the buffer exports of the arrays that view a frame: calling it returns one that is
    still alive (so the frame's bytes are still in use), or None."""
    __slots__ = ("_refs",)

    def __init__(self):
        self._refs = []

    def track(self, array):
        """Follow an array made by ``numpy.frombuffer`` (its ``base`` is the buffer export it holds)."""
        try:
            self._refs.append(weakref.ref(array.base))
        except TypeError:  # not weakly referenceable: consider the frame in use for good
            self._refs.append(lambda base=array.base: base)

    def __call__(self):
        for ref in self._refs:
            obj = ref()
            if obj is not None:
                return obj
        return None


def decode_tensor(mv, off, size, frame_ref=None):
    """Decode one tensor at ``mv[off:size]``; returns ``(Tensor, next_offset)``.

    Fixed-size data is mapped with ``numpy.frombuffer`` (no copy, read-only; ``frame_ref`` tracks it); BF16
    becomes float32 and BYTES an object array of ``bytes``. Raises ProtocolError for anything malformed.
    """
    name, off = _str16(mv, off, size, "tensor name")
    try:
        datatype, off = _str16(mv, off, size, "datatype")
        if off + 1 > size:
            raise ProtocolError("is truncated")
        rank = mv[off]
        if rank > MAX_RANK:
            raise ProtocolError("has rank %d; at most %d" % (rank, MAX_RANK))
        dims_struct = _DIMS[rank]
        if off + 1 + dims_struct.size + 8 > size:
            raise ProtocolError("is truncated")
        dims = dims_struct.unpack_from(mv, off + 1)
        off += 1 + dims_struct.size
        count = 1
        for d in dims:
            if d < 0:
                raise ProtocolError("has a negative dimension in %s" % list(dims))
            count *= d
        (length,) = _U64.unpack_from(mv, off)
        off += 8
        if length > size - off:
            raise ProtocolError("data is truncated")
        wire = WIRE_DTYPES.get(datatype)
        if wire is None:
            if datatype != "BYTES":
                raise ProtocolError("has unknown datatype %r" % datatype)
            array = _decode_bytes_elements(mv, off, length, count)
        else:
            if length != count * wire.itemsize:
                raise ProtocolError("has shape %s (%d %s elements, %d bytes) but %d bytes of data"
                                    % (list(dims), count, datatype, count * wire.itemsize, length))
            if not count:
                array = np.empty(0, wire)
            else:
                array = np.frombuffer(mv, wire, count, off)
                if datatype == "BF16":
                    array = (array.astype(np.uint32) << 16).view(np.float32)
                elif datatype == "BOOL" and array.view(np.uint8).max() > 1:
                    array = array.view(np.uint8) != 0  # bytes other than 0 and 1 (raw client data) are true
                else:
                    if frame_ref is not None:
                        frame_ref.track(array)
                    array.flags.writeable = False
        if len(dims) != 1:
            try:
                array = array.reshape(dims)
            except ValueError:  # zero elements but dimensions numpy cannot represent
                raise ProtocolError("has shape %s, which numpy cannot represent" % list(dims)) from None
    except ProtocolError as exc:
        raise ProtocolError("tensor %r %s" % (name, exc)) from None
    return Tensor(name, datatype, array), off + length


_ROWS = [struct.Struct("<%dI" % n) for n in range(65)]


def decode_infer(payload):
    """Decode an INFER payload into an ``InferBatch``; input arrays view the payload's buffer."""
    mv = payload if isinstance(payload, memoryview) else memoryview(payload)
    size = len(mv)
    if size < 12:
        raise ProtocolError("INFER header is truncated")
    batch_id, count = _BATCH.unpack_from(mv, 0)
    if count == 0:
        raise ProtocolError("INFER has no items")
    off = 12 + 4 * count
    if off + 2 > size:
        raise ProtocolError("INFER header is truncated")
    rows = list((_ROWS[count] if count < 65 else struct.Struct("<%dI" % count)).unpack_from(mv, 12))
    total = sum(rows)
    (n_inputs,) = _U16.unpack_from(mv, off)
    off += 2
    inputs, names, frame_ref = [], set(), FrameRef()
    for index in range(n_inputs):
        try:
            tensor, off = decode_tensor(mv, off, size, frame_ref)
        except ProtocolError as exc:
            raise ProtocolError("INFER input %d: %s" % (index, exc)) from None
        name, _, array = tensor
        if name in names:
            raise ProtocolError("INFER has two inputs named %r" % name)
        names.add(name)
        if count > 1 and (array.ndim == 0 or array.shape[0] != total):
            raise ProtocolError("INFER input %r has shape %s; its first dimension must be the %d rows of the batch"
                                % (name, list(array.shape), total))
        inputs.append(tensor)
    if off + 2 > size:
        raise ProtocolError("INFER output list is truncated")
    (n_outputs,) = _U16.unpack_from(mv, off)
    off += 2
    outputs = []
    for index in range(n_outputs):
        name, off = _str16(mv, off, size, "INFER output name")
        if name not in outputs:
            outputs.append(name)
    if off != size:
        raise ProtocolError("INFER has %d trailing bytes" % (size - off))
    return InferBatch(batch_id, rows, inputs, outputs, frame_ref)


def datatype_of(dtype):
    """Return the Open Inference Protocol datatype of a numpy dtype; raises TypeError when there is none."""
    name = _DATATYPE_OF_CODE.get(dtype.newbyteorder("<").str if dtype.byteorder == ">" else dtype.str)
    if name is not None:
        return name
    if dtype.kind in "OUST":  # objects, str, bytes, numpy 2's StringDType
        return "BYTES"
    if dtype.name == "bfloat16":  # ml_dtypes
        return "BF16"
    raise TypeError("numpy dtype %s has no Open Inference Protocol datatype" % dtype)


def _to_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


def _to_bf16(array):
    """Round a float array to bfloat16 (nearest even) and return the upper 16 bits as uint16."""
    if array.dtype.name == "bfloat16":
        return array.view(np.uint16)
    floats = np.asarray(array, dtype=np.float32)
    bits = floats.view(np.uint32)
    rounded = ((bits + (((bits >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)
    return np.where(np.isnan(floats), np.uint16(0x7FC0), rounded)


def wire_tensor(name, value, datatype=None):
    """Turn a model's output into a ``Tensor`` ready to encode.

    ``value`` is anything ``numpy.asarray`` takes. Without ``datatype`` it follows the array's dtype
    (strings and objects are BYTES); with one the values are cast to it. Raises TypeError/ValueError when
    that cannot be done.
    """
    _name_head(name)  # raises for a name too long for the wire
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if datatype is None:
        datatype = datatype_of(array.dtype)
    if array.ndim > MAX_RANK:
        raise ValueError("output %r has rank %d; at most %d" % (name, array.ndim, MAX_RANK))
    if datatype == "BYTES":
        if array.dtype.kind == "O" and all(type(e) is bytes for e in array.flat):
            return Tensor(name, datatype, array)
        out = np.empty(array.shape, dtype=object)
        out.flat[:] = [_to_bytes(e) for e in array.ravel().tolist()] if array.size else []
        return Tensor(name, datatype, out)
    if datatype == "BF16":
        return Tensor(name, datatype, np.asarray(_to_bf16(array), dtype="<u2", order="C"))
    wire = WIRE_DTYPES.get(datatype)
    if wire is None:
        raise ValueError("unknown datatype %r" % datatype)
    return Tensor(name, datatype, np.asarray(array, dtype=wire, order="C"))


def _bytes_data(array):
    parts = []
    for element in array.flat:
        parts += (_U32.pack(len(element)), element)
    return b"".join(parts)


_DIMS_LENGTH = [struct.Struct("<B%dqQ" % rank) for rank in range(MAX_RANK + 1)]  # rank, dims, data_length
_DATATYPE_HEAD = {name: _U16.pack(len(name)) + name.encode("ascii") for name in DATATYPES}


@functools.lru_cache(maxsize=256)
def _name_head(name):
    raw = name.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("output name longer than 65535 bytes")
    return _U16.pack(len(raw)) + raw


def _tensor_parts(tensor, parts):
    """Append a wire ``Tensor``'s encoding to ``parts``; returns its size in bytes."""
    name, datatype, array = tensor
    if datatype == "BYTES":
        data = _bytes_data(array)
        length = len(data)
    else:  # wire arrays are C-contiguous and little-endian: their memory is the data
        data, length = array.data, array.nbytes
    head = _name_head(name) + _DATATYPE_HEAD[datatype] + _DIMS_LENGTH[array.ndim].pack(array.ndim, *array.shape,
                                                                                        length)
    parts += (head, data)
    return len(head) + length


def tensor_size(tensor):
    """The encoded size of a wire ``Tensor`` in bytes."""
    name, datatype, array = tensor
    data = (sum(4 + len(e) for e in array.flat) if datatype == "BYTES" else array.nbytes)
    return 2 + len(name.encode("utf-8")) + 2 + len(datatype) + 1 + 8 * array.ndim + 8 + data


def encode_infer_batch(batch_id, tensors):
    """Return an INFER_RESULT frame in mode 0: the wire ``Tensor``s of the whole batch."""
    parts = [b"", _U16.pack(len(tensors))]
    size = 13 + sum(_tensor_parts(t, parts) for t in tensors)  # version, type, batch_id, mode, output_count
    parts[0] = _INFER_HEAD.pack(size, VERSION, INFER_RESULT, batch_id, BATCH_MODE)
    return b"".join(parts)


def encode_infer_items(batch_id, items):
    """Return an INFER_RESULT frame in mode 1: per item ``(OK, [Tensor, ...])`` or ``(status, message)``."""
    parts = [b"", _U32.pack(len(items))]
    size = 15  # version, type, batch_id, mode, item_count
    for status, answer in items:
        if status == OK:
            parts += (bytes((OK,)), _U16.pack(len(answer)))
            size += 3 + sum(_tensor_parts(t, parts) for t in answer)
        else:
            message = answer.encode("utf-8") if isinstance(answer, str) else bytes(answer)
            parts += (bytes((status,)), _U32.pack(len(message)), message)
            size += 5 + len(message)
    parts[0] = _INFER_HEAD.pack(size, VERSION, INFER_RESULT, batch_id, ITEMS_MODE)
    return b"".join(parts)


class FrameReader:
    """Reads frames from ``recv_into`` (e.g. ``sock.recv_into``) into one reusable buffer."""

    _SHRINK_ABOVE = 16 * 1024 * 1024

    def __init__(self, recv_into, size=64 * 1024):
        self._recv_into = recv_into
        self._size = size
        self._alloc(size)
        self._start = self._end = 0

    def _alloc(self, size, keep=b""):
        buf = bytearray(size)
        buf[:len(keep)] = keep
        self._buf, self._view = buf, memoryview(buf)

    def detach(self):
        """Leave the current buffer to whoever still holds views of it and read on into a fresh one."""
        pending = bytes(self._view[self._start:self._end])
        self._alloc(max(self._size, len(pending)), pending)
        self._start, self._end = 0, len(pending)

    def read(self):
        """Return the next ``(type, payload)``, or None at EOF between frames.

        ``payload`` is a memoryview into the buffer, valid until the next call (the bytes are overwritten
        then, unless ``detach`` was called).
        Raises ProtocolError for a bad frame or EOF inside a frame.
        """
        if self._start == self._end and len(self._buf) > self._SHRINK_ABOVE:
            self._alloc(self._size)  # let a huge one-off buffer go
            self._start = self._end = 0
        while True:
            frame = parse_frame(self._view, self._start, self._end)
            if frame is not None:
                ftype, payload, self._start = frame
                if self._start == self._end:
                    self._start = self._end = 0
                return ftype, payload
            self._make_room()
            n = self._recv_into(self._view[self._end:])
            if not n:
                if self._start == self._end:
                    return None
                raise ProtocolError("connection closed inside a frame")
            self._end += n

    def _make_room(self):
        avail = self._end - self._start
        need = 6 if avail < 4 else 4 + _U32.unpack_from(self._buf, self._start)[0]
        if self._start + need <= len(self._buf):
            return
        pending = self._view[self._start:self._end]
        if need <= len(self._buf):
            self._view[:avail] = bytes(pending)
        else:
            self._alloc(max(need, min(2 * len(self._buf), MAX_FRAME + 4)), pending)
        self._start, self._end = 0, avail
