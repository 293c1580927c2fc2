"""Serval worker protocol, version 1 (docs/worker-protocol.md): frame encoding and decoding.

Everything here is a pure function over bytes/memoryview, except ``FrameReader``, which pulls frames
from any ``recv_into`` callable (a socket's) into one reusable buffer.
"""
import json
import struct
from collections import namedtuple

VERSION = 1
READY, LOAD_FAILED, INVOKE, RESULT, SHUTDOWN = 0x01, 0x02, 0x10, 0x11, 0x20
FRAME_TYPES = frozenset((READY, LOAD_FAILED, INVOKE, RESULT, SHUTDOWN))
OK, BAD_INPUT, MODEL_ERROR = 0, 1, 2
MAX_FRAME = 256 * 1024 * 1024  # largest frame body, in bytes

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_HEAD = struct.Struct("<IBB")  # length, version, type
_BATCH = struct.Struct("<QI")  # batch_id, count
_BATCH_HEAD = struct.Struct("<IBBQI")  # frame header + batch header
_STATUS = struct.Struct("<BH")  # status, content type length

Item = namedtuple("Item", "content_type accept custom_attrs body")
Item.__doc__ = "One INVOKE item: three header strings and the raw body (bytes)."


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

    def read(self):
        """Return the next ``(type, payload)``, or None at EOF between frames.

        ``payload`` is a memoryview into the buffer, valid until the next call.
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
