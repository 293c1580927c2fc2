"""Serval's side of the worker protocol (INVOKE encoding, RESULT decoding), for tests."""
import struct

from serval_worker.protocol import INVOKE, VERSION, ProtocolError


def encode_invoke(batch_id, items):
    """Return an INVOKE frame for ``items`` (``Item``s or 4-tuples)."""
    parts = []
    for ct, accept, attrs, body in items:
        for text in (ct, accept, attrs):
            raw = text.encode()
            parts += (struct.pack("<H", len(raw)), raw)
        parts += (struct.pack("<I", len(body)), body)
    payload = struct.pack("<QI", batch_id, len(items)) + b"".join(parts)
    return struct.pack("<IBB", len(payload) + 2, VERSION, INVOKE) + payload


def decode_result(payload):
    """Decode a RESULT payload into ``(batch_id, [(status, content_type, body), ...])``."""
    payload = bytes(payload)
    batch_id, count = struct.unpack_from("<QI", payload, 0)
    off, out = 12, []
    for _ in range(count):
        status, n = struct.unpack_from("<BH", payload, off)
        ct = payload[off + 3:off + 3 + n].decode()
        off += 3 + n
        (n,) = struct.unpack_from("<I", payload, off)
        body = payload[off + 4:off + 4 + n]
        if len(body) != n:
            raise ProtocolError("RESULT is truncated")
        out.append((status, ct, body))
        off += 4 + n
    if off != len(payload):
        raise ProtocolError("RESULT has %d trailing bytes" % (len(payload) - off))
    return batch_id, out
