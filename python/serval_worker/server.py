"""The worker loop: load the model, send READY or LOAD_FAILED, then answer INVOKE frames with RESULT
frames until SHUTDOWN or EOF on the socket."""
import argparse
import os
import platform
import signal
import socket
import sys
import traceback

from . import protocol as P
from .handlers import error_message, load_handler

_RESULT_OVERHEAD = 64  # frame and batch headers, with room to spare


def ready_info(handler):
    """Return the READY payload for a loaded handler."""
    info = {"protocol": P.VERSION, "pid": os.getpid(), "python": platform.python_version(),
            "handler": handler.name, "batching": handler.batching}
    if handler.n_features is not None:
        info["n_features"] = handler.n_features
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


def handle_batch(handler, items):
    """Answer every item of a batch; an unexpected failure answers them all with MODEL_ERROR."""
    try:
        results = handler.handle(items)
        if len(results) != len(items):
            raise RuntimeError("handler answered %d of %d items" % (len(results), len(items)))
    except (Exception, SystemExit) as exc:
        traceback.print_exc()
        msg = ("internal worker error: " + error_message(exc)).encode("utf-8")
        results = [(P.MODEL_ERROR, "", msg)] * len(items)
    return _fit_frame(results)


def serve(sock, handler):
    """Answer INVOKE frames on ``sock`` until SHUTDOWN or EOF (returns 0) or a bad frame (returns 2)."""
    reader = P.FrameReader(sock.recv_into)
    while True:
        try:
            frame = reader.read()
            if frame is None:
                return 0
            ftype, payload = frame
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
            sock.sendall(P.encode_result(batch_id, handle_batch(handler, items)))
        except (ConnectionResetError, BrokenPipeError):
            return 0


def run(sock, model_dir):
    """Load the model and serve it on ``sock``; returns the process exit status."""
    try:
        handler = load_handler(model_dir)
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
    print("serval_worker: loaded %s model from %s (batching: %s)" % (handler.name, model_dir, handler.batching),
          file=sys.stderr)
    try:
        sock.sendall(P.encode_json_frame(P.READY, ready_info(handler)))
    except (ConnectionResetError, BrokenPipeError):
        return 0
    return serve(sock, handler)


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
