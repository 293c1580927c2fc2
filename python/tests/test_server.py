"""The worker loop, in-process over a socketpair and as a real ``python -m serval_worker`` subprocess."""
import json
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import answer, item, save, write_code
from serval_worker import protocol as P
from serval_worker import server
from serval_worker.runtimes import load
from wire import array_tensor, decode_infer_result, decode_result, encode_infer, encode_invoke, infer_payload

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_frame(sock):
    """Blocking read of one frame from a socket (Serval's side)."""
    reader = P.FrameReader(sock.recv_into)
    frame = reader.read()
    assert frame is not None, "worker closed the socket"
    return frame[0], bytes(frame[1])


def start_worker(model_dir):
    """Start ``python -m serval_worker`` the way Serval does: socket on an inherited fd, PYTHONPATH set."""
    ours, theirs = socket.socketpair()
    ours.settimeout(30)
    env = dict(os.environ, SM_MODEL_DIR=model_dir, PYTHONPATH=PYTHON_DIR)
    proc = subprocess.Popen([sys.executable, "-m", "serval_worker", "--model-dir", model_dir,
                             "--fd", str(theirs.fileno())], pass_fds=[theirs.fileno()], cwd=model_dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    theirs.close()
    return ours, proc


def stop(sock, proc):
    """Close our end and reap the worker; returns its (stdout, stderr)."""
    sock.close()
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=30)


def test_end_to_end_subprocess(clf_dir, classifier, data):
    # prints, even at the file-descriptor level, must land in the log (stderr), never on stdout
    write_code(clf_dir, "import os\nprint('hello from user code')\nos.write(1, b'raw fd 1 write\\n')\n")
    sock, proc = start_worker(clf_dir)
    try:
        ftype, payload = read_frame(sock)
        assert ftype == P.READY
        ready = json.loads(payload)
        assert ready["protocol"] == 2 and ready["pid"] == proc.pid and ready["n_features"] == 4
        assert (ready["handler"], ready["batching"]) == ("custom", "stacked")
        X = data[0][:4]
        sock.sendall(encode_invoke(42, [item(X[:2].tolist()), item([1, 2]), item(X[2:].tolist(), accept="text/csv")]))
        ftype, payload = read_frame(sock)
        assert ftype == P.RESULT
        batch_id, results = decode_result(payload)
        expected = classifier.predict(X).tolist()
        assert batch_id == 42
        assert results[0] == (P.OK, "application/json", json.dumps({"predictions": expected[:2]}).encode())
        assert results[1] == (P.BAD_INPUT, "", b"expected 4 features per row, got 2")
        assert results[2] == (P.OK, "text/csv", "".join("%d\n" % p for p in expected[2:]).encode())
        sock.sendall(P.encode_frame(P.SHUTDOWN))
        assert proc.wait(timeout=30) == 0
    finally:
        out, err = stop(sock, proc)
    assert out == b""
    assert b"hello from user code" in err and b"raw fd 1 write" in err


def test_load_failure_subprocess(clf_dir):
    write_code(clf_dir, "def model_fn(model_dir):\n    raise RuntimeError('weights are\\ncorrupt')\n")
    sock, proc = start_worker(clf_dir)
    try:
        ftype, payload = read_frame(sock)
        assert ftype == P.LOAD_FAILED
        failure = json.loads(payload)
        assert failure["message"] == "RuntimeError: weights are corrupt"
        assert "Traceback" in failure["traceback"] and "inference.py" in failure["traceback"]
        assert proc.wait(timeout=30) == 1
    finally:
        _, err = stop(sock, proc)
    assert b"RuntimeError: weights are" in err


class InProcessWorker:
    """Runs ``server.run`` on a thread with one end of a socketpair."""

    def __init__(self, model_dir):
        self.sock, theirs = socket.socketpair()
        self.sock.settimeout(30)
        self.status = None

        def target():
            try:
                self.status = server.run(theirs, model_dir)
            finally:
                theirs.close()
        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def finish(self):
        self.thread.join(30)
        self.sock.close()
        return self.status


def test_model_table_holds_runtimes_by_id(clf_dir, regressor, tmp_path_factory):
    models = server.ModelTable()
    runtime = models.load(server.DEFAULT_MODEL, clf_dir)
    assert models[server.DEFAULT_MODEL] is runtime and runtime.outputs[-1].name == "predict_proba"
    other = save(tmp_path_factory.mktemp("regressor"), regressor)
    assert models.load("regressor", other) is models["regressor"] is not runtime
    with pytest.raises(ValueError, match="^model 'model' is loaded already$"):
        models.load(server.DEFAULT_MODEL, other)
    assert models[server.DEFAULT_MODEL] is runtime
    with pytest.raises(KeyError):
        models["nope"]
    with pytest.raises(FileNotFoundError):
        models.load("empty", str(tmp_path_factory.mktemp("empty")))
    with pytest.raises(KeyError):
        models["empty"]


def test_in_process_batches_then_eof(reg_dir, regressor, data):
    worker = InProcessWorker(reg_dir)
    assert read_frame(worker.sock)[0] == P.READY
    X = data[0]
    for batch_id in range(3):
        items = [item(X[i:i + 1].tolist()) for i in range(batch_id + 1)] + [item(b"{", "")]
        worker.sock.sendall(encode_invoke(batch_id, items))
        ftype, payload = read_frame(worker.sock)
        got_id, results = decode_result(payload)
        assert (ftype, got_id, len(results)) == (P.RESULT, batch_id, batch_id + 2)
        for i, (status, _, body) in enumerate(results[:-1]):
            assert status == P.OK
            assert json.loads(body)["predictions"] == pytest.approx(regressor.predict(X[i:i + 1]).tolist())
        assert results[-1][0] == P.BAD_INPUT
    worker.sock.shutdown(socket.SHUT_WR)  # EOF between frames: a clean exit
    assert worker.finish() == 0


def test_in_process_load_failure(tmp_path):
    worker = InProcessWorker(str(tmp_path))
    ftype, payload = read_frame(worker.sock)
    assert ftype == P.LOAD_FAILED
    assert json.loads(payload)["message"].startswith("FileNotFoundError: no model file in")
    assert worker.finish() == 1


def test_bad_frame_exits_2(clf_dir):
    worker = InProcessWorker(clf_dir)
    assert read_frame(worker.sock)[0] == P.READY
    worker.sock.sendall(b"\x02\x00\x00\x00\x07\x10")
    assert worker.finish() == 2


def test_unexpected_handler_failure_answers_every_item(clf_dir):
    class Broken:
        name, batching, n_features = "custom", "per_item", None

        def handle(self, items):
            raise MemoryError("out of memory")

    results = server.handle_batch(Broken(), [item([1]), item([2])])
    assert results == [(P.MODEL_ERROR, "", b"internal worker error: MemoryError: out of memory")] * 2


def test_oversized_results_are_replaced(monkeypatch):
    monkeypatch.setattr(P, "MAX_FRAME", 900)
    results = server._fit_frame([(P.OK, "a", b"x" * 600), (P.OK, "b", b"y" * 300), (P.OK, "c", b"z" * 10)])
    assert results[0][0] == P.MODEL_ERROR and b"600 bytes" in results[0][2]
    assert results[1:] == [(P.OK, "b", b"y" * 300), (P.OK, "c", b"z" * 10)]


# ---------------------------------------------------------------- INFER (protocol version 2)

def infer_result(sock):
    ftype, payload = read_frame(sock)
    assert ftype == P.INFER_RESULT
    return decode_infer_result(payload)


def test_in_process_infer_and_invoke(clf_dir, classifier, data):
    worker = InProcessWorker(clf_dir)
    ftype, payload = read_frame(worker.sock)
    ready = json.loads(payload)
    assert ftype == P.READY and ready["platform"] == "sklearn"
    assert ready["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in ready["outputs"]] == ["predict", "predict_proba"]
    X = data[0][:6].astype(np.float32)
    worker.sock.sendall(encode_infer(11, [2, 4], [array_tensor("input-0", X)]))
    batch_id, mode, out = infer_result(worker.sock)
    assert (batch_id, mode) == (11, P.BATCH_MODE)
    assert out["predict"][1].tolist() == classifier.predict(X).tolist()
    np.testing.assert_array_equal(out["predict_proba"][1], classifier.predict_proba(X))
    worker.sock.sendall(encode_invoke(12, [item(X[:2].tolist())]))  # INVOKE is unchanged
    ftype, payload = read_frame(worker.sock)
    assert ftype == P.RESULT and decode_result(payload)[1][0][0] == P.OK
    worker.sock.sendall(encode_infer(13, [1], [array_tensor("input-0", X[:1, :3])], ["predict"]))
    assert infer_result(worker.sock) == (13, P.ITEMS_MODE, [(P.BAD_INPUT, "input-0 has 3 features per row; "
                                                                          "the model expects 4")])
    worker.sock.sendall(P.encode_frame(P.SHUTDOWN))
    assert worker.finish() == 0


def test_arrays_the_model_keeps_are_not_overwritten(clf_dir):
    write_code(clf_dir, '''
KEPT = []

def infer_fn(inputs, model):
    KEPT.append(inputs["x"][1:])  # a view of the frame buffer, kept past the batch
    return {"y": inputs["x"] + 1}
''')
    worker = InProcessWorker(clf_dir)
    assert read_frame(worker.sock)[0] == P.READY
    for i in range(4):
        worker.sock.sendall(encode_infer(i, [3], [array_tensor("x", np.full(3, float(i)))]))
        assert infer_result(worker.sock)[2]["y"][1].tolist() == [i + 1.0] * 3
    worker.sock.shutdown(socket.SHUT_WR)
    assert worker.finish() == 0
    import inference
    assert [k.tolist() for k in inference.KEPT] == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]


def test_malformed_infer_exits_2(clf_dir):
    worker = InProcessWorker(clf_dir)
    assert read_frame(worker.sock)[0] == P.READY
    payload = infer_payload(1, [2], [array_tensor("input-0", np.zeros((2, 4), np.float32))])
    assert payload.endswith(b"\x00\x00")  # no outputs requested; ask for one whose name runs past the payload
    worker.sock.sendall(P.encode_frame(P.INFER, payload[:-2] + b"\x01\x00\x05\x00ab"))
    assert worker.finish() == 2


def test_infer_end_to_end_subprocess(reg_dir, regressor, data):
    sock, proc = start_worker(reg_dir)
    try:
        ftype, payload = read_frame(sock)
        assert ftype == P.READY and json.loads(payload)["outputs"] == [
            {"name": "predict", "datatype": "FP64", "shape": [-1]}]
        X = data[0][:3]
        sock.sendall(encode_infer(5, [1, 2], [array_tensor("input-0", X)]))
        batch_id, mode, out = infer_result(sock)
        assert (batch_id, mode) == (5, P.BATCH_MODE)
        assert out["predict"][1].tolist() == pytest.approx(regressor.predict(X).tolist())
        sock.sendall(P.encode_frame(P.SHUTDOWN))
        assert proc.wait(timeout=30) == 0
    finally:
        stop(sock, proc)


def test_broken_model_settings_is_load_failed(clf_dir):
    with open(os.path.join(clf_dir, "model-settings.json"), "w") as f:
        f.write('{"outputs": [{"name": "predict", "datatype": "float", "shape": [-1]}]}')
    worker = InProcessWorker(clf_dir)
    ftype, payload = read_frame(worker.sock)
    assert ftype == P.LOAD_FAILED
    assert json.loads(payload)["message"].startswith(
        'ValueError: model-settings.json: outputs[0].datatype "float" is not an Open Inference Protocol datatype')
    assert worker.finish() == 1


def test_oversized_infer_results_are_split_then_replaced(monkeypatch, clf_dir):
    write_code(clf_dir, "def infer_fn(inputs, model):\n    return {'y': inputs['x'] * 1.0}\n")
    runtime = load(clf_dir)
    monkeypatch.setattr(P, "MAX_FRAME", 700)
    x = np.zeros((100, 1))
    x[:10] = 1
    mode, out = answer(runtime, [10, 30, 60], [array_tensor("x", x)])
    assert mode == P.ITEMS_MODE
    assert out[0][0] == P.OK and out[0][1]["y"][1].ravel().tolist() == [1.0] * 10
    assert out[1][0] == P.OK and out[1][1]["y"][1].shape == (30, 1)
    size = 2 + len("y") + 2 + len("FP64") + 1 + 2 * 8 + 8 + 60 * 8
    assert out[2] == (P.MODEL_ERROR, "the response of %d bytes does not fit in a worker frame" % size)
