"""The worker's start-up for a scikit-learn model (not a test): ``python -m serval_worker`` started the way Serval
starts it (the socket on an inherited descriptor), timed from the spawn to its READY frame, which covers Python's
start, the imports, loading ``model.joblib`` and reading the model's signature.

Run: ``bench/.venv/bin/python bench/worker_startup.py [--worker-path DIR] [--baseline-path DIR] [--repeat N]`` (any
Python with numpy, scikit-learn and joblib). ``--worker-path`` names the folder holding ``serval_worker`` (default
``python/``); ``--baseline-path`` another one, e.g. an older checkout's (``git archive HEAD~1 python | tar -x -C
/tmp/old`` then ``--baseline-path /tmp/old/python``): the two are started in alternation and the ratio of their best
times is printed. The best of ``--repeat`` starts of each is kept.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
READY, SHUTDOWN, VERSION = 0x01, 0x20, 2


def read_frame_type(sock):
    """Read one frame (Serval's side) and return its type."""
    head = b""
    while len(head) < 6:
        chunk = sock.recv(6 - len(head))
        if not chunk:
            raise RuntimeError("the worker closed the socket before READY")
        head += chunk
    length, _, ftype = struct.unpack("<IBB", head)
    remaining = length - 2
    while remaining:
        remaining -= len(sock.recv(min(remaining, 65536)))
    return ftype


def start_to_ready(worker_path, model_dir):
    """Seconds from spawning the worker to reading its READY frame; the worker is then shut down."""
    ours, theirs = socket.socketpair()
    ours.settimeout(60)
    env = dict(os.environ, PYTHONPATH=worker_path, SM_MODEL_DIR=model_dir)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "serval_worker", "--model-dir", model_dir,
                             "--fd", str(theirs.fileno())], pass_fds=[theirs.fileno()], env=env,
                            stderr=subprocess.DEVNULL)
    theirs.close()
    try:
        ftype = read_frame_type(ours)
        seconds = time.perf_counter() - start
        if ftype != READY:
            raise RuntimeError("the worker answered frame type 0x%02x instead of READY" % ftype)
        ours.sendall(struct.pack("<IBB", 2, VERSION, SHUTDOWN))
        proc.wait(timeout=60)
        return seconds
    finally:
        ours.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-path", default=os.path.join(os.path.dirname(BENCH_DIR), "python"),
                        help="the folder holding serval_worker (default python/)")
    parser.add_argument("--baseline-path", help="another folder holding serval_worker, to compare against")
    parser.add_argument("--repeat", type=int, default=10, help="starts of each; the best is kept (default 10)")
    args = parser.parse_args()
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    X, y = make_classification(n_samples=1000, n_features=20, random_state=0)
    paths = {"worker": os.path.abspath(args.worker_path)}
    if args.baseline_path:
        paths["baseline"] = os.path.abspath(args.baseline_path)
    best = dict.fromkeys(paths, float("inf"))
    with tempfile.TemporaryDirectory() as model_dir:
        joblib.dump(LogisticRegression(max_iter=500).fit(X, y), os.path.join(model_dir, "model.joblib"))
        for name, path in paths.items():  # a first start of each warms the file cache and writes bytecode
            start_to_ready(path, model_dir)
        for _ in range(args.repeat):
            for name, path in paths.items():
                best[name] = min(best[name], start_to_ready(path, model_dir))
    for name, path in paths.items():
        print("%-8s %s: start to READY %.1f ms (best of %d)" % (name, path, best[name] * 1e3, args.repeat))
    if "baseline" in best:
        print("ratio worker/baseline: %.3f" % (best["worker"] / best["baseline"]))


if __name__ == "__main__":
    main()
