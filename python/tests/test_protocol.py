"""Frame encoding and decoding, without sockets."""
import json
import struct

import pytest

from serval_worker import protocol as P
from serval_worker.protocol import Item
from wire import decode_result, encode_invoke


def test_invoke_round_trip():
    items = [Item("application/json", "text/csv", "a=1", b"[1, 2]"), Item("", "", "", b""),
             Item("text/csv; charset=utf-8", "*/*", "", b"x" * 70000)]
    frame = encode_invoke(7, items)
    assert struct.unpack_from("<I", frame)[0] == len(frame) - 4
    ftype, payload, end = P.parse_frame(frame)
    assert (ftype, end) == (P.INVOKE, len(frame))
    assert P.decode_invoke(payload) == (7, items)


def test_result_round_trip():
    results = [(P.OK, "application/json", b'{"predictions": [1]}'), (P.BAD_INPUT, "", "bad \u00e9"),
               (P.MODEL_ERROR, "", b"")]
    ftype, payload, _ = P.parse_frame(P.encode_result(2 ** 64 - 1, results))
    assert ftype == P.RESULT
    batch_id, decoded = decode_result(payload)
    assert batch_id == 2 ** 64 - 1
    assert decoded == [(0, "application/json", b'{"predictions": [1]}'), (1, "", "bad \u00e9".encode()),
                       (2, "", b"")]


def test_json_and_empty_frames():
    ftype, payload, _ = P.parse_frame(P.encode_json_frame(P.READY, {"protocol": 1}))
    assert ftype == P.READY and json.loads(bytes(payload)) == {"protocol": 1}
    frame = P.encode_frame(P.SHUTDOWN)
    assert frame == b"\x02\x00\x00\x00\x02\x20"
    assert P.parse_frame(frame)[:1] == (P.SHUTDOWN,) and len(P.parse_frame(frame)[1]) == 0


def test_incomplete_and_bad_frames():
    frame = P.encode_frame(P.SHUTDOWN)
    for cut in range(len(frame)):
        assert P.parse_frame(frame[:cut]) is None
    with pytest.raises(P.ProtocolError, match="version"):
        P.parse_frame(b"\x02\x00\x00\x00\x01\x20")  # version 1
    with pytest.raises(P.ProtocolError, match="type"):
        P.parse_frame(b"\x02\x00\x00\x00\x02\x99")
    with pytest.raises(P.ProtocolError, match="length"):
        P.parse_frame(struct.pack("<I", P.MAX_FRAME + 1))
    with pytest.raises(P.ProtocolError, match="length"):
        P.parse_frame(b"\x01\x00\x00\x00\x01")


def test_truncated_and_trailing_invoke_payloads():
    _, payload, _ = P.parse_frame(encode_invoke(1, [Item("a", "b", "c", b"body")]))
    for cut in range(len(payload)):
        with pytest.raises(P.ProtocolError):
            P.decode_invoke(payload[:cut])
    with pytest.raises(P.ProtocolError, match="trailing"):
        P.decode_invoke(bytes(payload) + b"\x00")


class OneByteAtATime:
    """A fake socket whose recv_into hands out one byte per call."""

    def __init__(self, data):
        self.data, self.pos, self.calls = data, 0, 0

    def recv_into(self, view):
        self.calls += 1
        if self.pos == len(self.data) or len(view) == 0:
            return 0
        view[0] = self.data[self.pos]
        self.pos += 1
        return 1


class AllAtOnce(OneByteAtATime):
    """A fake socket whose recv_into fills as much of the view as it can."""

    def recv_into(self, view):
        n = min(len(view), len(self.data) - self.pos)
        view[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize("source", [OneByteAtATime, AllAtOnce])
def test_reader_decodes_a_stream(source):
    big = Item("application/x-npy", "", "", bytes(range(256)) * 600)  # larger than the initial buffer
    stream = (encode_invoke(1, [Item("application/json", "", "", b"[1]")]) + encode_invoke(2, [big])
              + encode_invoke(3, []) + P.encode_frame(P.SHUTDOWN))
    reader = P.FrameReader(source(stream).recv_into, size=16)
    got = []
    while True:
        frame = reader.read()
        if frame is None:
            break
        ftype, payload = frame
        got.append((ftype, P.decode_invoke(payload) if ftype == P.INVOKE else None))
    assert got == [(P.INVOKE, (1, [Item("application/json", "", "", b"[1]")])), (P.INVOKE, (2, [big])),
                   (P.INVOKE, (3, [])), (P.SHUTDOWN, None)]


def test_reader_eof_inside_a_frame():
    reader = P.FrameReader(OneByteAtATime(P.encode_frame(P.SHUTDOWN)[:-1]).recv_into)
    with pytest.raises(P.ProtocolError, match="inside a frame"):
        reader.read()
