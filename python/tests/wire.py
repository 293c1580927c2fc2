"""Serval's side of the worker protocol (INVOKE, INFER, INVOKE_FILE encoding; RESULT, INFER_RESULT, FILE_RESULT
decoding), for tests."""
import struct

from serval_worker.protocol import INFER, INVOKE, INVOKE_FILE, VERSION, ProtocolError


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


def invoke_file_payload(batch_id, input_path, output_path, content_type="application/json", accept="", attrs=""):
    """An INVOKE_FILE payload."""
    parts = [struct.pack("<Q", batch_id)]
    for text in (content_type, accept, attrs, input_path, output_path):
        raw = text.encode()
        parts += (struct.pack("<H", len(raw)), raw)
    return b"".join(parts)


def encode_invoke_file(batch_id, input_path, output_path, content_type="application/json", accept="", attrs=""):
    """A complete INVOKE_FILE frame."""
    payload = invoke_file_payload(batch_id, input_path, output_path, content_type, accept, attrs)
    return struct.pack("<IBB", len(payload) + 2, VERSION, INVOKE_FILE) + payload


def decode_file_result(payload):
    """Decode a FILE_RESULT payload into ``(batch_id, status, content_type, bytes_written, message)``."""
    payload = bytes(payload)
    batch_id, status, n = struct.unpack_from("<QBH", payload, 0)
    content_type = payload[11:11 + n].decode()
    bytes_written, m = struct.unpack_from("<QI", payload, 11 + n)
    off = 11 + n + 12
    message = payload[off:off + m].decode()
    if off + m != len(payload):
        raise ProtocolError("FILE_RESULT is %d bytes, not %d" % (len(payload), off + m))
    return batch_id, status, content_type, bytes_written, message


# ---------------------------------------------------------------- version 2: tensors, written independently of
# serval_worker.protocol so that the two check each other

_NUMPY = {"BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "i1",
          "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def _str16(text):
    raw = text.encode()
    return struct.pack("<H", len(raw)) + raw


def bf16_bytes(values):
    """float32 values as BF16 data: the upper 16 bits of each (truncated)."""
    import numpy as np
    return (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()


def encode_tensor(name, datatype, shape, data):
    """One tensor as Serval writes it; ``data`` is raw bytes, or a list of bytes elements for BYTES."""
    if datatype == "BYTES" and not isinstance(data, (bytes, bytearray)):
        data = b"".join(struct.pack("<I", len(e)) + e for e in data)
    return (_str16(name) + _str16(datatype) + struct.pack("<B", len(shape))
            + struct.pack("<%dq" % len(shape), *shape) + struct.pack("<Q", len(data)) + bytes(data))


def array_tensor(name, array, datatype=None):
    """A numpy array as a tensor (datatype from its dtype unless given; BYTES from bytes/str elements)."""
    import numpy as np
    array = np.asarray(array)
    if datatype is None:
        datatype = next((dt for dt, code in _NUMPY.items() if np.dtype(code) == array.dtype), "BYTES")
    if datatype == "BYTES":
        data = [e if isinstance(e, bytes) else str(e).encode() for e in array.ravel().tolist()]
    else:
        data = np.ascontiguousarray(array, dtype=_NUMPY[datatype]).tobytes()
    return encode_tensor(name, datatype, array.shape, data)


def infer_payload(batch_id, rows, tensors, outputs=()):
    """An INFER payload: ``tensors`` are encoded tensors (bytes)."""
    return (struct.pack("<QI", batch_id, len(rows)) + struct.pack("<%dI" % len(rows), *rows)
            + struct.pack("<H", len(tensors)) + b"".join(tensors)
            + struct.pack("<H", len(outputs)) + b"".join(_str16(o) for o in outputs))


def encode_infer(batch_id, rows, tensors, outputs=()):
    """A complete INFER frame."""
    payload = infer_payload(batch_id, rows, tensors, outputs)
    return struct.pack("<IBB", len(payload) + 2, VERSION, INFER) + payload


def _read_tensor(payload, off):
    import numpy as np
    (n,) = struct.unpack_from("<H", payload, off)
    name = payload[off + 2:off + 2 + n].decode()
    off += 2 + n
    (n,) = struct.unpack_from("<H", payload, off)
    datatype = payload[off + 2:off + 2 + n].decode()
    off += 2 + n
    rank = payload[off]
    shape = list(struct.unpack_from("<%dq" % rank, payload, off + 1))
    off += 1 + 8 * rank
    (length,) = struct.unpack_from("<Q", payload, off)
    data = payload[off + 8:off + 8 + length]
    if len(data) != length:
        raise ProtocolError("tensor data is truncated")
    off += 8 + length
    if datatype == "BYTES":
        elements, pos = [], 0
        while pos < len(data):
            (n,) = struct.unpack_from("<I", data, pos)
            elements.append(data[pos + 4:pos + 4 + n])
            pos += 4 + n
        array = np.empty(len(elements), dtype=object)
        array[:] = elements
        value = array.reshape(shape)
    elif datatype == "BF16":
        value = (np.frombuffer(data, "<u2").astype("<u4") << 16).view("<f4").reshape(shape)
    else:
        value = np.frombuffer(data, _NUMPY[datatype]).reshape(shape)
    return (name, datatype, value), off


def decode_infer_result(payload):
    """Decode an INFER_RESULT payload: ``(batch_id, 0, {name: (datatype, array)})`` in mode 0, or
    ``(batch_id, 1, [(status, {name: (datatype, array)} or message str), ...])`` in mode 1."""
    payload = bytes(payload)
    batch_id, mode = struct.unpack_from("<QB", payload, 0)
    off = 9

    def tensors():
        nonlocal off
        (count,) = struct.unpack_from("<H", payload, off)
        off += 2
        out = {}
        for _ in range(count):
            (name, datatype, value), off = _read_tensor(payload, off)
            out[name] = (datatype, value)
        return out

    if mode == 0:
        result = tensors()
    elif mode == 1:
        (count,) = struct.unpack_from("<I", payload, off)
        off += 4
        result = []
        for _ in range(count):
            status = payload[off]
            off += 1
            if status == 0:
                result.append((0, tensors()))
            else:
                (n,) = struct.unpack_from("<I", payload, off)
                result.append((status, payload[off + 4:off + 4 + n].decode()))
                off += 4 + n
    else:
        raise ProtocolError("unknown INFER_RESULT mode %d" % mode)
    if off != len(payload):
        raise ProtocolError("INFER_RESULT has %d trailing bytes" % (len(payload) - off))
    return batch_id, mode, result
