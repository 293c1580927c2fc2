"""Protocol version 2: INFER decoding (zero-copy tensors) and INFER_RESULT encoding, without sockets."""
import struct

import numpy as np
import pytest

from serval_worker import protocol as P
from wire import array_tensor, bf16_bytes, decode_infer_result, encode_infer, encode_tensor, infer_payload

NUMERIC = [("BOOL", np.array([[True, False, True], [False, False, True]])),
           ("UINT8", np.array([[0, 255, 7]], dtype=np.uint8)),
           ("UINT16", np.array([0, 65535, 300], dtype=np.uint16)),
           ("UINT32", np.array([0, 2 ** 32 - 1], dtype=np.uint32)),
           ("UINT64", np.array([0, 2 ** 64 - 1], dtype=np.uint64)),
           ("INT8", np.array([-128, 127], dtype=np.int8)),
           ("INT16", np.array([[-32768], [32767]], dtype=np.int16)),
           ("INT32", np.array([-2 ** 31, 2 ** 31 - 1], dtype=np.int32)),
           ("INT64", np.array([[-2 ** 63, 2 ** 63 - 1, 0]], dtype=np.int64)),
           ("FP16", np.array([1.5, -0.0, np.inf, 65504], dtype=np.float16)),
           ("FP32", np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3),
           ("FP64", np.array([[np.pi, -1e300], [np.nan, 5e-324]]))]


def decode(payload):
    _, view, _ = P.parse_frame(bytearray(struct.pack("<IBB", len(payload) + 2, P.VERSION, P.INFER) + payload))
    return P.decode_infer(view)


@pytest.mark.parametrize("datatype, array", NUMERIC, ids=[n for n, _ in NUMERIC])
def test_numeric_round_trip(datatype, array):
    batch = decode(infer_payload(9, [len(array)], [array_tensor("x", array)], ["y"]))
    assert (batch.batch_id, batch.rows, batch.outputs) == (9, [len(array)], ["y"])
    (tensor,) = batch.inputs
    assert (tensor.name, tensor.datatype) == ("x", datatype)
    assert tensor.array.dtype == np.dtype(P.WIRE_DTYPES[datatype]) and tensor.array.shape == array.shape
    np.testing.assert_array_equal(tensor.array, array)
    assert not tensor.array.flags.writeable
    # and back: the worker's encoding of the decoded array, read by Serval's side
    wire = P.wire_tensor("y", tensor.array)
    assert wire.datatype == datatype
    _, mode, outputs = decode_infer_result(P.encode_infer_batch(1, [wire])[6:])
    assert mode == P.BATCH_MODE and outputs["y"][0] == datatype
    np.testing.assert_array_equal(outputs["y"][1], array)


def test_bf16_and_bytes_round_trip():
    values = np.array([[1.0, -2.5, 3.140625], [np.inf, 0.0, 1e30]], dtype=np.float32)
    strings = [b"", "h\u00e9llo".encode(), b"\x00\xff", b"x" * 300]
    batch = decode(infer_payload(1, [2], [encode_tensor("b", "BF16", [2, 3], bf16_bytes(values)),
                                          encode_tensor("s", "BYTES", [2, 2], strings)]))
    b, s = batch.inputs
    assert b.datatype == "BF16" and b.array.dtype == np.float32
    truncated = (values.view(np.uint32) & 0xFFFF0000).view(np.float32)
    np.testing.assert_array_equal(b.array, truncated)
    assert s.datatype == "BYTES" and s.array.dtype == object and s.array.shape == (2, 2)
    assert s.array.ravel().tolist() == strings
    # the worker rounds to nearest even when it encodes BF16; Serval reads the upper 16 bits back
    encoded = P.wire_tensor("b", np.array([1.0, 1.00390625, 1.01171875, np.nan, -np.inf], np.float32), "BF16")
    _, _, out = decode_infer_result(P.encode_infer_batch(0, [encoded, P.wire_tensor("s", s.array)])[6:])
    np.testing.assert_array_equal(out["b"][1][[0, 1, 2, 4]], [1.0, 1.0, 1.015625, -np.inf])
    assert np.isnan(out["b"][1][3])
    assert out["s"][0] == "BYTES" and out["s"][1].ravel().tolist() == strings


def test_scalar_and_empty_tensors():
    batch = decode(infer_payload(1, [0], [array_tensor("scalar", np.float64(2.5)),
                                          array_tensor("empty", np.zeros((0, 3), np.int32)),
                                          encode_tensor("nobytes", "BYTES", [0], [])]))
    scalar, empty, nobytes = batch.inputs
    assert scalar.array.shape == () and scalar.array == 2.5
    assert empty.array.shape == (0, 3) and empty.array.dtype == np.int32
    assert nobytes.array.shape == (0,)


@pytest.mark.parametrize("value, datatype", [
    (np.array([True]), "BOOL"), (np.array([1], np.int64), "INT64"), (np.array([1], np.int32), "INT32"),
    (np.array([1], np.uint16), "UINT16"), (np.array([1.0]), "FP64"), (np.array([1], np.float32), "FP32"),
    (np.array([1], np.float16), "FP16"), (np.array(["a"]), "BYTES"), (np.array([b"a"]), "BYTES"),
    (np.array(["a", 1], dtype=object), "BYTES"), (np.array([1], ">i4"), "INT32"), ([1.5, 2.5], "FP64"),
])
def test_output_datatypes(value, datatype):
    assert P.wire_tensor("o", value).datatype == datatype


def test_output_encoding_converts():
    big_endian = np.array([[1, 2], [3, 4]], dtype=">f4")
    transposed = np.arange(6, dtype=np.int64).reshape(2, 3).T
    labels = np.array(["cat", "ch\u00e8vre", "dog"])
    mixed = np.array([b"raw", "text", 7], dtype=object)
    frame = P.encode_infer_batch(5, [P.wire_tensor("a", big_endian), P.wire_tensor("t", transposed),
                                     P.wire_tensor("l", labels), P.wire_tensor("m", mixed),
                                     P.wire_tensor("cast", np.array([1, 2]), "FP32"), P.wire_tensor("z", 3.0)])
    assert struct.unpack_from("<IBB", frame) == (len(frame) - 4, P.VERSION, P.INFER_RESULT)
    batch_id, mode, out = decode_infer_result(frame[6:])
    assert (batch_id, mode) == (5, P.BATCH_MODE)
    assert out["a"][0] == "FP32" and out["a"][1].tolist() == [[1, 2], [3, 4]]
    assert out["t"][0] == "INT64" and out["t"][1].tolist() == transposed.tolist()
    assert out["l"][0] == "BYTES" and out["l"][1].tolist() == [b"cat", "ch\u00e8vre".encode(), b"dog"]
    assert out["m"][1].tolist() == [b"raw", b"text", b"7"]
    assert out["cast"][0] == "FP32" and out["cast"][1].tolist() == [1.0, 2.0]
    assert out["z"][0] == "FP64" and out["z"][1].shape == () and out["z"][1] == 3.0
    with pytest.raises(TypeError, match="complex128"):
        P.wire_tensor("c", np.array([1j]))
    with pytest.raises(ValueError):
        P.wire_tensor("n", np.array(["x"]), "FP32")


def test_items_mode_encoding():
    items = [(P.OK, [P.wire_tensor("p", np.array([1, 2]))]), (P.BAD_INPUT, "bad \u00e9"), (P.MODEL_ERROR, ""),
             (P.OK, [])]
    batch_id, mode, out = decode_infer_result(P.encode_infer_items(2 ** 64 - 1, items)[6:])
    assert (batch_id, mode) == (2 ** 64 - 1, P.ITEMS_MODE)
    assert out[0][0] == P.OK and out[0][1]["p"][1].tolist() == [1, 2]
    assert out[1:] == [(P.BAD_INPUT, "bad \u00e9"), (P.MODEL_ERROR, ""), (P.OK, {})]
    frame = P.encode_infer_items(1, items)
    assert len(frame) - 4 == struct.unpack_from("<I", frame)[0]


def small_payload():
    return infer_payload(3, [1, 2], [array_tensor("x", np.array([[1.5], [2], [3]], np.float32)),
                                     encode_tensor("s", "BYTES", [3], [b"a", b"", b"cd"]),
                                     array_tensor("f", np.array([True, False, True]))], ["out", "p"])


def test_small_payload_decodes():
    batch = decode(small_payload())
    assert batch.rows == [1, 2] and [t.name for t in batch.inputs] == ["x", "s", "f"]
    assert batch.outputs == ["out", "p"]


def test_truncated_infer_payloads_raise_protocol_error():
    payload = small_payload()
    for cut in range(len(payload)):
        with pytest.raises(P.ProtocolError):
            P.decode_infer(memoryview(payload)[:cut])
    with pytest.raises(P.ProtocolError, match="trailing"):
        P.decode_infer(payload + b"\x00")


def test_corrupted_payloads_raise_only_protocol_errors():
    payload = small_payload()
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(3000):
        mutated = bytearray(payload)
        for pos in rng.integers(0, len(payload), size=rng.integers(1, 4)):
            mutated[pos] = rng.integers(0, 256)
        try:
            P.decode_infer(memoryview(mutated))
            outcomes.add("ok")
        except P.ProtocolError:
            outcomes.add("error")
    assert outcomes == {"ok", "error"}


def tensor_with(rank=1, dims=(3,), datatype="FP32", data=b"\x00" * 12, name="x"):
    raw = name.encode() if isinstance(name, str) else name
    return (struct.pack("<H", len(raw)) + raw + struct.pack("<H", len(datatype)) + datatype.encode()
            + struct.pack("<B", rank) + struct.pack("<%dq" % len(dims), *dims) + struct.pack("<Q", len(data)) + data)


@pytest.mark.parametrize("payload, match", [
    (infer_payload(1, [3], [tensor_with(rank=33, dims=(1,) * 33, data=b"\x00" * 4)]), "rank 33"),
    (infer_payload(1, [3], [tensor_with(data=b"\x00" * 11)]), "11 bytes of data"),
    (infer_payload(1, [3], [tensor_with(data=b"\x00" * 16)]), "16 bytes of data"),
    (infer_payload(1, [3], [tensor_with(datatype="FP8")]), "unknown datatype 'FP8'"),
    (infer_payload(1, [3], [tensor_with(datatype="fp32")]), "unknown datatype"),
    (infer_payload(1, [3], [tensor_with(dims=(-3,))]), "negative dimension"),
    (infer_payload(1, [3], [tensor_with(datatype="BYTES", data=b"\x01\x00\x00\x00a")]), "1 BYTES elements for 3"),
    (infer_payload(1, [1], [tensor_with(datatype="BYTES", dims=(1,), data=b"\x05\x00\x00\x00ab")]), "truncated BYTES"),
    (infer_payload(1, [1], [tensor_with(datatype="BYTES", dims=(1,), data=b"\x01\x00\x00")]), "truncated BYTES"),
    (infer_payload(1, [3], [tensor_with(name=b"\xff\xfe")]), "not UTF-8"),
    (infer_payload(1, [1, 1], [tensor_with()]), "first dimension must be the 2 rows"),
    (infer_payload(1, [2, 1], [tensor_with(rank=0, dims=(), data=b"\x00" * 4)]), "first dimension"),
    (infer_payload(1, [], []), "no items"),
    (infer_payload(1, [3], [tensor_with(), tensor_with()]), "two inputs named 'x'"),
    (infer_payload(1, [0], [tensor_with(rank=3, dims=(2 ** 62, 2 ** 62, 0), data=b"")]), "cannot represent"),
])
def test_malformed_infer_payloads(payload, match):
    with pytest.raises(P.ProtocolError, match=match):
        P.decode_infer(payload)


def test_bool_bytes_other_than_one_are_true():
    (tensor,) = P.decode_infer(infer_payload(1, [4], [tensor_with(datatype="BOOL", dims=(4,),
                                                                  data=b"\x00\x01\x02\xff")])).inputs
    assert tensor.array.dtype == np.bool_ and tensor.array.tolist() == [False, True, True, True]


def test_duplicate_requested_outputs_are_asked_once():
    assert P.decode_infer(infer_payload(1, [3], [tensor_with()], ["a", "b", "a"])).outputs == ["a", "b"]


def test_decoded_arrays_view_the_frame_buffer():
    x = np.arange(40, dtype=np.float32).reshape(8, 5)
    frame = bytearray(encode_infer(1, [3, 5], [array_tensor("x", x), array_tensor("i", np.arange(8))]))
    reader = P.FrameReader(_Chunks([frame]).recv_into)
    ftype, payload = reader.read()
    assert ftype == P.INFER
    batch = P.decode_infer(payload)
    buffer = np.frombuffer(reader._buf, np.uint8)
    for tensor in batch.inputs:
        assert np.shares_memory(tensor.array, buffer)  # mapped, not copied
        assert not tensor.array.flags.writeable
    np.testing.assert_array_equal(batch.inputs[0].array, x)
    ref, arrays = batch.frame_ref, [t.array for t in batch.inputs]
    del batch, tensor
    assert ref() is not None  # the arrays still view the frame
    view = arrays[0][2:]
    del arrays
    assert ref() is not None  # so does a view of one
    del view
    assert ref() is None


class _Chunks:
    """A fake socket handing out the given chunks one per recv_into."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def recv_into(self, view):
        if not self.chunks:
            return 0
        chunk = self.chunks.pop(0)
        n = min(len(chunk), len(view))
        view[:n] = chunk[:n]
        if n < len(chunk):
            self.chunks.insert(0, chunk[n:])
        return n


def test_reader_detach_keeps_old_arrays_intact():
    first = encode_infer(1, [2], [array_tensor("x", np.array([1.0, 2.0]))])
    second = encode_infer(2, [2], [array_tensor("x", np.array([7.0, 8.0]))])
    reader = P.FrameReader(_Chunks([first, second[:10], second[10:]]).recv_into, size=64)
    kept = P.decode_infer(reader.read()[1]).inputs[0].array
    reader.detach()
    assert P.decode_infer(reader.read()[1]).inputs[0].array.tolist() == [7.0, 8.0]
    assert kept.tolist() == [1.0, 2.0]
    # detach keeps bytes already read past the current frame
    reader = P.FrameReader(_Chunks([first + second[:9], second[9:]]).recv_into, size=64)
    kept = P.decode_infer(reader.read()[1]).inputs[0].array
    reader.detach()
    assert P.decode_infer(reader.read()[1]).inputs[0].array.tolist() == [7.0, 8.0]
    assert kept.tolist() == [1.0, 2.0]
