"""INVOKE_FILE: a request whose body is a file and whose response goes to a file (asynchronous inference)."""
import json
import os

import pytest

from conftest import Picky, write_code
from serval_worker import protocol as P
from serval_worker import server
from serval_worker.runtimes import load
from serval_worker.runtimes.sklearn import SKLearnRuntime
from test_server import InProcessWorker, read_frame, start_worker, stop
from wire import decode_file_result, encode_invoke, encode_invoke_file, invoke_file_payload


def run_file(handler, tmp_path, body, content_type="application/json", accept="", attrs="", output=None):
    """Write ``body`` to an input file, answer it as INVOKE_FILE; returns (decoded FILE_RESULT, output path)."""
    input_path = str(tmp_path / "input.bin")
    output_path = output or str(tmp_path / "output.bin")
    if body is not None:
        with open(input_path, "wb") as f:
            f.write(body if isinstance(body, bytes) else json.dumps(body).encode())
    item = P.FileItem(9, content_type, accept, attrs, input_path, output_path)
    frame = server.answer_file(handler, item)
    ftype, payload, end = P.parse_frame(frame)
    assert (ftype, end) == (P.FILE_RESULT, len(frame))
    return decode_file_result(payload), output_path


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- protocol

def test_invoke_file_decodes():
    payload = invoke_file_payload(2 ** 64 - 1, "/in/ünï.json", "/out/x", "text/csv", "application/json", "a=1")
    assert P.decode_invoke_file(memoryview(payload)) == P.FileItem(
        2 ** 64 - 1, "text/csv", "application/json", "a=1", "/in/ünï.json", "/out/x")


@pytest.mark.parametrize("payload", [
    invoke_file_payload(1, "/in", "/out")[:-1],  # truncated
    invoke_file_payload(1, "/in", "/out") + b"\0",  # trailing byte
    invoke_file_payload(1, "/in", "/out")[:7],  # no batch id
    invoke_file_payload(1, "", "/out"),  # empty path
    invoke_file_payload(1, "/in", ""),
    invoke_file_payload(1, "/in\0x", "/out"),
    invoke_file_payload(1, "/in", "/o\0"),
    invoke_file_payload(1, "/in", "/out")[:-4] + b"\xff\xfe\xfd\xfc",  # not UTF-8
])
def test_malformed_invoke_file_is_a_protocol_error(payload):
    with pytest.raises(P.ProtocolError):
        P.decode_invoke_file(payload)


def test_file_result_encodes():
    frame = P.encode_file_result(7, P.OK, "text/csv", 2 ** 40)
    assert decode_file_result(P.parse_frame(frame)[1]) == (7, P.OK, "text/csv", 2 ** 40, "")
    frame = P.encode_file_result(8, P.BAD_INPUT, "", 0, "bad ü")
    assert decode_file_result(P.parse_frame(frame)[1]) == (8, P.BAD_INPUT, "", 0, "bad ü")


# ---------------------------------------------------------------- handling

def test_default_handler_file_in_file_out(clf_dir, classifier, data, tmp_path):
    handler = load(clf_dir)
    X = data[0][:5]
    (batch_id, status, ct, n, msg), out = run_file(handler, tmp_path, {"instances": X.tolist()})
    assert (batch_id, status, ct, msg) == (9, P.OK, "application/json", "")
    assert read(out) == json.dumps({"predictions": classifier.predict(X).tolist()}).encode()
    assert n == os.path.getsize(out)
    csv = "".join(",".join(map(repr, row)) + "\n" for row in X.tolist()).encode()
    (_, status, ct, n, _), out = run_file(handler, tmp_path, csv, "text/csv", "text/csv")
    assert (status, ct) == (P.OK, "text/csv")
    assert read(out) == "".join("%d\n" % p for p in classifier.predict(X)).encode()


def test_output_is_truncated(clf_dir, data, tmp_path):
    handler = load(clf_dir)
    out = tmp_path / "output.bin"
    out.write_bytes(b"x" * 100000)
    (_, status, _, n, _), _ = run_file(handler, tmp_path, data[0][:1].tolist())
    assert status == P.OK and out.stat().st_size == n < 100000


CUSTOM = '''
import json

def input_fn(input_data, content_type):
    return (type(input_data).__name__, len(input_data), content_type)

def predict_fn(data, model):
    if data[1] == 0:
        raise ValueError("empty input")
    return data

def output_fn(prediction, accept):
    if accept == "application/x-raise":
        raise RuntimeError("cannot encode")
    return json.dumps(prediction), "application/x-custom"
'''


def test_custom_handlers_see_the_same_body(clf_dir, tmp_path):
    write_code(clf_dir, CUSTOM)
    handler = load(clf_dir)
    body = b"\x00\xff" * 300000
    (_, status, ct, n, _), out = run_file(handler, tmp_path, body, "application/octet-stream", "*/*")
    assert (status, ct) == (P.OK, "application/x-custom")
    assert json.loads(read(out)) == ["bytes", 600000, "application/octet-stream"]
    assert n == len(read(out))
    (_, status, ct, _, _), out = run_file(handler, tmp_path, {"a": "é"})
    assert json.loads(read(out)) == ["str", len(json.dumps({"a": "é"})), "application/json"]


def test_transform_fn(clf_dir, tmp_path):
    write_code(clf_dir, "def transform_fn(model, data, content_type, accept):\n"
                        "    return data[::-1], 'text/plain'\n")
    handler = load(clf_dir)
    (_, status, ct, n, _), out = run_file(handler, tmp_path, b"abc", "text/plain")
    assert (status, ct, n, read(out)) == (P.OK, "text/plain", 3, b"cba")


def test_custom_errors_leave_no_output(clf_dir, tmp_path):
    write_code(clf_dir, CUSTOM)
    handler = load(clf_dir)
    out = tmp_path / "output.bin"
    out.write_bytes(b"stale")  # e.g. a previous attempt's
    (_, status, ct, n, msg), _ = run_file(handler, tmp_path, b"")
    assert (status, ct, n, msg) == (P.MODEL_ERROR, "", 0, "ValueError: empty input")
    assert not out.exists()
    (_, status, _, _, msg), _ = run_file(handler, tmp_path, b"x", "text/plain", "application/x-raise")
    assert (status, msg) == (P.MODEL_ERROR, "RuntimeError: cannot encode")
    assert not out.exists()


def test_default_errors_leave_no_output(tmp_path):
    handler = SKLearnRuntime(Picky())
    out = tmp_path / "output.bin"
    out.write_bytes(b"stale")
    (_, status, _, _, msg), _ = run_file(handler, tmp_path, b"{", "application/json")
    assert status == P.BAD_INPUT and msg.startswith("malformed JSON")
    assert not out.exists()
    (_, status, _, _, msg), _ = run_file(handler, tmp_path, [[-1, 2]])
    assert (status, msg) == (P.MODEL_ERROR, "ValueError: negative input")
    assert not out.exists()
    (_, status, _, _, msg), _ = run_file(handler, tmp_path, [[1, 2]], accept="image/png")
    assert status == P.BAD_INPUT and "unsupported accept" in msg
    assert not out.exists()


def test_missing_input_is_bad_input(clf_dir, tmp_path):
    handler = load(clf_dir)
    out = tmp_path / "output.bin"
    out.write_bytes(b"stale")
    (_, status, ct, n, msg), _ = run_file(handler, tmp_path, None)
    assert (status, ct, n) == (P.BAD_INPUT, "", 0)
    assert msg == "the input file cannot be read: No such file or directory"
    assert str(tmp_path) not in msg  # paths are Serval's, not the client's
    assert not out.exists()


def test_unwritable_output_is_a_model_error(clf_dir, data, tmp_path):
    handler = load(clf_dir)
    out = str(tmp_path / "missing" / "output.bin")
    (_, status, _, _, msg), _ = run_file(handler, tmp_path, data[0][:1].tolist(), output=out)
    assert (status, msg) == (P.MODEL_ERROR, "the worker could not write the response: No such file or directory")
    assert not os.path.exists(out)


def test_unexpected_handler_failure(tmp_path):
    class Broken:
        def handle(self, items):
            raise MemoryError("out of memory")

    out = tmp_path / "output.bin"
    (_, status, _, _, msg), _ = run_file(Broken(), tmp_path, b"x")
    assert (status, msg) == (P.MODEL_ERROR, "internal worker error: MemoryError: out of memory")
    assert not out.exists()


# ---------------------------------------------------------------- the worker loop

def test_in_process_file_between_invokes(reg_dir, regressor, data, tmp_path):
    worker = InProcessWorker(reg_dir)
    assert read_frame(worker.sock)[0] == P.READY
    X = data[0][:3]
    inp, out = tmp_path / "in.json", tmp_path / "out.json"
    inp.write_text(json.dumps(X.tolist()))
    worker.sock.sendall(encode_invoke_file(5, str(inp), str(out), accept="text/csv"))
    ftype, payload = read_frame(worker.sock)
    assert ftype == P.FILE_RESULT
    batch_id, status, ct, n, _ = decode_file_result(payload)
    assert (batch_id, status, ct, n) == (5, P.OK, "text/csv", out.stat().st_size)
    assert [float(v) for v in out.read_text().split()] == pytest.approx(regressor.predict(X).tolist())
    worker.sock.sendall(encode_invoke(6, [("application/json", "", "", json.dumps(X.tolist()).encode())]))
    assert read_frame(worker.sock)[0] == P.RESULT
    worker.sock.sendall(encode_invoke_file(7, str(tmp_path / "nope"), str(out)))
    ftype, payload = read_frame(worker.sock)
    assert decode_file_result(payload)[:2] == (7, P.BAD_INPUT)
    assert not out.exists()
    worker.sock.sendall(P.encode_frame(P.SHUTDOWN))
    assert worker.finish() == 0


def test_malformed_invoke_file_exits_2(clf_dir):
    worker = InProcessWorker(clf_dir)
    assert read_frame(worker.sock)[0] == P.READY
    worker.sock.sendall(P.encode_frame(P.INVOKE_FILE, invoke_file_payload(1, "/in", "/out")[:-2]))
    assert worker.finish() == 2


def test_file_invoke_subprocess(clf_dir, classifier, data, tmp_path):
    X = data[0][:4]
    inp, out = tmp_path / "in.csv", tmp_path / "out.json"
    inp.write_text("".join(",".join(map(repr, row)) + "\n" for row in X.tolist()))
    sock, proc = start_worker(clf_dir)
    try:
        assert read_frame(sock)[0] == P.READY
        sock.sendall(encode_invoke_file(3, str(inp), str(out), "text/csv", "application/json"))
        ftype, payload = read_frame(sock)
        assert ftype == P.FILE_RESULT
        assert decode_file_result(payload) == (3, P.OK, "application/json", out.stat().st_size, "")
        assert json.loads(out.read_bytes()) == {"predictions": classifier.predict(X).tolist()}
        sock.sendall(P.encode_frame(P.SHUTDOWN))
        assert proc.wait(timeout=30) == 0
    finally:
        stop(sock, proc)
