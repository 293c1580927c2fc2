"""Per-batch overhead of the INFER path (not a test): decode INFER → runtime → encode INFER_RESULT for a batch
of 32 rows × 20 FP32 features through a LogisticRegression, against bare predict + predict_proba.

Run: ``bench/.venv/bin/python bench/worker_infer.py [iterations]`` (any Python with numpy, scikit-learn and
joblib). The two are timed in alternating blocks and
the best block of each is kept, which holds up on a busy machine; "without the model" replaces predict and
predict_proba by precomputed answers, so it shows the worker's own work alone.
"""
import os
import sys
import tempfile
import time

import numpy as np

_PYTHON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
sys.path.insert(0, _PYTHON)  # serval_worker
sys.path.insert(0, os.path.join(_PYTHON, "tests"))  # wire: the Serval side of the protocol, for the frames

from serval_worker import protocol as P  # noqa: E402
from serval_worker import server  # noqa: E402
from serval_worker.runtimes import load  # noqa: E402
from wire import array_tensor, encode_infer  # noqa: E402


def compare(fns, n, blocks=20):
    """The best mean time per call of each function, in microseconds, over ``blocks`` alternating blocks."""
    best = {name: float("inf") for name in fns}
    for _ in range(blocks):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(n // blocks):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / (n // blocks) * 1e6)
    return best


def main(n=10000):
    import joblib
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    X, y = make_classification(n_samples=1000, n_features=20, random_state=0)
    model = LogisticRegression(max_iter=500).fit(X, y)
    folder = tempfile.mkdtemp()
    joblib.dump(model, os.path.join(folder, "model.joblib"))
    runtime = load(folder)
    batch_X = X[:32].astype(np.float32)
    for rows, label in (([32], "1 request of 32 rows"), ([1] * 32, "32 requests of 1 row")):
        frame = bytearray(encode_infer(1, rows, [array_tensor("input-0", batch_X)]))

        def full():
            _, payload, _ = P.parse_frame(frame)
            return server.answer_infer(runtime, P.decode_infer(payload))

        def bare():
            return model.predict(batch_X), model.predict_proba(batch_X)

        t = compare({"full": full, "bare": bare}, n)
        print("%-21s decode→runtime→encode %.1f µs, bare predict+predict_proba %.1f µs: overhead %.1f µs"
              % (label, t["full"], t["bare"], t["full"] - t["bare"]))
        methods = runtime.methods
        saved = dict(methods)
        answers = {name: fn(batch_X) for name, fn in saved.items()}
        for name in methods:
            methods[name] = lambda X, answer=answers[name]: answer
        print("%-21s without the model: %.1f µs" % ("", compare({"full": full}, n)["full"]))
        methods.update(saved)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000)
