"""The worker's default text/csv path on one 6 MB payload (not a test): ``Runtime.handle`` on one item of about
16,000 rows × 20 features through a LogisticRegression, CSV in and CSV out, in rows/s; and apart, decoding alone
and the model's predict alone.

Run: ``bench/.venv/bin/python bench/worker_csv.py [--worker-path DIR] [--repeat N]`` (any Python with numpy,
scikit-learn and joblib). ``--worker-path`` names the folder holding ``serval_worker`` (default ``python/``), e.g. an
older checkout's (``git archive HEAD~1 python | tar -x -C /tmp/old`` then ``--worker-path /tmp/old/python``) to
compare two versions on the same machine. Two number formats: Python's shortest round-trip ``repr`` (up to 17
significant digits, what pandas writes) and ``%.6g``. The best of ``--repeat`` runs is kept.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def best_seconds(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-path", default=os.path.join(os.path.dirname(BENCH_DIR), "python"),
                        help="the folder holding serval_worker (default python/)")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each measurement; the best is kept (default 7)")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.worker_path))
    sys.path.insert(0, BENCH_DIR)
    from bench import train_models
    from serval_worker.codecs import decode_input
    from serval_worker.runtimes import load
    from serval_worker.protocol import OK, Item
    from transform import BYTES_PER_MB, csv_bytes, feature_rows, line_chunks

    with tempfile.TemporaryDirectory() as folder:
        lr = train_models(Path(folder), ["lr"])["lr"]
        model, runtime = lr["model"], load(str(lr["package"]))
    X = feature_rows(40_000, seed=100)
    print(f"serval_worker from {os.path.dirname(sys.modules['serval_worker'].__file__)}")
    for fmt in ("repr", "%.6g"):
        body = next(line_chunks(csv_bytes(X, fmt), 6 * BYTES_PER_MB))
        rows = body.count(b"\n")
        item = Item("text/csv", "text/csv", "", body)
        status, _, out = runtime.handle([item])[0]
        assert status == OK and out.count(b"\n") == rows, (status, out[:200])
        decoded = decode_input(body, "text/csv", 20)
        full = best_seconds(lambda: runtime.handle([item]), args.repeat)
        decode = best_seconds(lambda: decode_input(body, "text/csv", 20), args.repeat)
        predict = best_seconds(lambda: model.predict(decoded), args.repeat)
        print(f"{fmt:>5}: {rows:,} rows, {len(body) / 1e6:.1f} MB: handle (decode+predict+encode) {full * 1e3:.1f} ms = "
              f"{rows / full:,.0f} rows/s; decode {decode * 1e3:.1f} ms; predict {predict * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
