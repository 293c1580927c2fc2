"""The worker loop: load the model into the model table, send READY or LOAD_FAILED, then answer INVOKE frames with
RESULT frames, INFER frames with INFER_RESULT frames and INVOKE_FILE frames with FILE_RESULT frames until SHUTDOWN or
EOF on the socket."""
import argparse
import os
import platform
import signal
import socket
import sys
import traceback

from . import protocol as P
from . import runtimes
from .errors import error_message
from .signature import spec_json

_RESULT_OVERHEAD = 64  # frame and batch headers, with room to spare

DEFAULT_MODEL = "model"
"""The id of the one model a worker serves: the frames of protocol version 2 name no model."""


class ModelTable:
    """The worker's loaded models (runtimes) by model id.

    Protocol version 2 addresses one model per worker, so the table holds DEFAULT_MODEL alone and every frame is
    answered by it; frames that named a model would be answered by the runtime they name.
    """

    def __init__(self):
        self._runtimes = {}

    def load(self, model_id, model_dir):
        """Load the package in ``model_dir`` as ``model_id`` and return its runtime; raises what loading raises, and
        ValueError when the id is taken."""
        if model_id in self._runtimes:
            raise ValueError("model %r is loaded already" % model_id)
        runtime = runtimes.load(model_dir)
        self._runtimes[model_id] = runtime
        return runtime

    def __getitem__(self, model_id):
        """The runtime loaded as ``model_id``; raises KeyError when there is none."""
        return self._runtimes[model_id]


def ready_info(runtime):
    """Return the READY payload for a loaded runtime."""
    info = {"protocol": P.VERSION, "pid": os.getpid(), "python": platform.python_version(),
            "handler": runtime.name, "batching": runtime.batching}
    if runtime.n_features is not None:
        info["n_features"] = runtime.n_features
    info["platform"] = runtime.platform
    info["inputs"] = [spec_json(spec) for spec in runtime.inputs]
    info["outputs"] = [spec_json(spec) for spec in runtime.outputs]
    return info


def _fit_frame(results):
    """Replace the largest answers by MODEL_ERROR until the RESULT frame fits in MAX_FRAME."""
    size = _RESULT_OVERHEAD + sum(7 + len(ct) + len(body) for _, ct, body in results)
    if size <= P.MAX_FRAME:
        return results
    for i in sorted(range(len(results)), key=lambda i: -len(results[i][2])):
        _, ct, body = results[i]
        msg = b"the response of %d bytes does not fit in a worker frame" % len(body)
        results[i] = (P.MODEL_ERROR, "", msg)
        size -= len(ct) + len(body) - len(msg)
        if size <= P.MAX_FRAME:
            break
    return results


def _answer_items(runtime, items):
    """Answer every item; an unexpected failure answers them all with MODEL_ERROR."""
    try:
        results = runtime.handle(items)
        if len(results) != len(items):
            raise RuntimeError("handler answered %d of %d items" % (len(results), len(items)))
    except (Exception, SystemExit) as exc:
        traceback.print_exc()
        msg = ("internal worker error: " + error_message(exc)).encode("utf-8")
        results = [(P.MODEL_ERROR, "", msg)] * len(items)
    return results


def handle_batch(runtime, items):
    """Answer every item of an INVOKE batch, within the frame limit."""
    return _fit_frame(_answer_items(runtime, items))


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        print("serval_worker: cannot remove %s: %s" % (path, exc), file=sys.stderr)


def _os_reason(exc):
    """An OSError's reason without the path (paths are Serval's business, not the client's)."""
    return exc.strerror or type(exc).__name__


def answer_file(runtime, item):
    """Answer an INVOKE_FILE (a ``FileItem``) with a FILE_RESULT frame.

    The input file is read whole and handled exactly as an INVOKE item with that body; the response body goes
    to the output path (created or truncated). Unless the answer is OK, nothing is left at the output path.
    """
    try:
        with open(item.input_path, "rb") as f:
            body = f.read()
    except OSError as exc:
        print("serval_worker: cannot read the input file %s: %s" % (item.input_path, exc), file=sys.stderr)
        _remove(item.output_path)
        return P.encode_file_result(item.batch_id, P.BAD_INPUT, "", 0,
                                    "the input file cannot be read: %s" % _os_reason(exc))
    request = P.Item(item.content_type, item.accept, item.custom_attrs, body)
    body = None
    status, content_type, out = _answer_items(runtime, [request])[0]
    request = None
    if status == P.OK:
        try:
            with open(item.output_path, "wb") as f:
                f.write(out)
            return P.encode_file_result(item.batch_id, P.OK, content_type, len(out))
        except OSError as exc:
            print("serval_worker: cannot write the output file %s: %s" % (item.output_path, exc), file=sys.stderr)
            status, out = P.MODEL_ERROR, "the worker could not write the response: %s" % _os_reason(exc)
    _remove(item.output_path)
    return P.encode_file_result(item.batch_id, status, "", 0, out)


def _fit_infer(rows, mode, answer):
    """Make an INFER_RESULT fit in MAX_FRAME: split batch outputs per item, then replace the largest items'
    outputs by MODEL_ERROR."""
    if mode == P.BATCH_MODE:
        items, start = [], 0
        for n in rows:
            items.append((P.OK, [P.Tensor(t.name, t.datatype, t.array[start:start + n]) if len(rows) > 1 else t
                                 for t in answer]))
            start += n
        answer = items
    sizes = [sum(P.tensor_size(t) for t in a) if s == P.OK else 0 for s, a in answer]
    size = _RESULT_OVERHEAD + sum(5 + (sizes[i] if s == P.OK else len(a.encode("utf-8")))
                                  for i, (s, a) in enumerate(answer))
    for i in sorted(range(len(answer)), key=lambda i: -sizes[i]):
        if size <= P.MAX_FRAME or not sizes[i]:
            break
        msg = "the response of %d bytes does not fit in a worker frame" % sizes[i]
        answer[i] = (P.MODEL_ERROR, msg)
        size -= sizes[i] - len(msg)
    return answer


def _encode_infer(batch_id, mode, answer):
    if mode == P.BATCH_MODE:
        return P.encode_infer_batch(batch_id, answer)
    return P.encode_infer_items(batch_id, answer)


def answer_infer(runtime, batch):
    """Answer an INFER batch with an INFER_RESULT frame; an unexpected failure fails every item."""
    try:
        mode, answer = runtime.infer_batch(batch)
        if mode == P.ITEMS_MODE and len(answer) != len(batch.rows):
            raise RuntimeError("handler answered %d of %d items" % (len(answer), len(batch.rows)))
        frame = _encode_infer(batch.batch_id, mode, answer)
        if len(frame) - 4 > P.MAX_FRAME:
            frame = P.encode_infer_items(batch.batch_id, _fit_infer(batch.rows, mode, answer))
        return frame
    except (Exception, SystemExit) as exc:
        traceback.print_exc()
        msg = "internal worker error: " + error_message(exc)
        return P.encode_infer_items(batch.batch_id, [(P.MODEL_ERROR, msg)] * len(batch.rows))


def _serve_infer(sock, runtime, payload):
    """Decode, answer and send one INFER; returns the weak reference to what still views the frame buffer."""
    batch = P.decode_infer(payload)
    sock.sendall(answer_infer(runtime, batch))
    return batch.frame_ref


def serve(sock, models):
    """Answer INVOKE, INFER and INVOKE_FILE frames on ``sock`` with the runtimes of ``models`` (a ModelTable) until
    SHUTDOWN or EOF (returns 0) or a bad frame (returns 2).

    INFER inputs are views of the reader's buffer, which the next read overwrites: each batch is answered
    before the next frame is read, and if the model kept any of its arrays, the reader moves on to a new
    buffer and leaves the old one to them.
    """
    reader = P.FrameReader(sock.recv_into)
    kept = False
    while True:
        try:
            frame = reader.read()
            if frame is None:
                return 0
            ftype, payload = frame
            frame = None
            runtime = models[DEFAULT_MODEL]
            if ftype == P.INFER:
                frame_ref = _serve_infer(sock, runtime, payload)
                payload = None
                if frame_ref() is not None:
                    reader.detach()
                    if not kept:
                        kept = True
                        print("serval_worker: the model kept references to a batch's input arrays; copy them "
                              "(numpy.array(x)) to keep them without holding on to the whole frame",
                              file=sys.stderr)
                continue
            if ftype == P.INVOKE_FILE:
                sock.sendall(answer_file(runtime, P.decode_invoke_file(payload)))
                continue
            if ftype == P.SHUTDOWN:
                return 0
            if ftype != P.INVOKE:
                raise P.ProtocolError("unexpected frame type 0x%02x from Serval" % ftype)
            batch_id, items = P.decode_invoke(payload)
        except P.ProtocolError as exc:
            print("serval_worker: protocol error: %s" % exc, file=sys.stderr)
            return 2
        except (ConnectionResetError, BrokenPipeError):
            return 0
        try:
            sock.sendall(P.encode_result(batch_id, handle_batch(runtime, items)))
        except (ConnectionResetError, BrokenPipeError):
            return 0


def run(sock, model_dir):
    """Load the model and serve it on ``sock``; returns the process exit status."""
    models = ModelTable()
    try:
        runtime = models.load(DEFAULT_MODEL, model_dir)
    except BaseException as exc:  # user code may even call sys.exit
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exc()
        print(tb, file=sys.stderr, end="")
        payload = {"message": error_message(exc), "traceback": tb}
        try:
            sock.sendall(P.encode_json_frame(P.LOAD_FAILED, payload))
        except OSError:
            pass
        return 1
    print("serval_worker: loaded %s model from %s (batching: %s)" % (runtime.name, model_dir, runtime.batching),
          file=sys.stderr)
    try:
        sock.sendall(P.encode_json_frame(P.READY, ready_info(runtime)))
    except (ConnectionResetError, BrokenPipeError):
        return 0
    return serve(sock, models)


def main(argv=None):
    """Parse arguments, protect the socket from stray prints, and run the worker."""
    parser = argparse.ArgumentParser(prog="serval_worker", description="Serval model worker")
    parser.add_argument("--model-dir", required=True, help="the extracted model package")
    parser.add_argument("--fd", type=int, default=3, help="the inherited socket's file descriptor")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    sys.stdout.flush()
    os.dup2(2, 1)  # user code printing must never reach anything but the log pipe
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Serval decides when we stop (SHUTDOWN or EOF)
    try:
        return run(sock, os.path.abspath(args.model_dir))
    finally:
        sock.close()
