"""The default handler's stacked batching with real scikit-learn models."""
import json

import pytest

from conftest import N_FEATURES, Picky, item
from serval_worker.runtimes import load
from serval_worker.runtimes.sklearn import SKLearnRuntime
from serval_worker.protocol import BAD_INPUT, MODEL_ERROR, OK


def test_ready_fields(clf_dir):
    handler = load(clf_dir)
    assert isinstance(handler, SKLearnRuntime)
    assert (handler.name, handler.batching, handler.n_features) == ("sklearn", "stacked", N_FEATURES)


def test_stacked_batch_isolates_bad_items(clf_dir, classifier, data):
    X = data[0]
    handler = load(clf_dir)
    calls = []
    predict = handler.predict
    handler.predict = lambda rows: calls.append(len(rows)) or predict(rows)
    items = [item({"instances": X[:3].tolist()}), item(X[3].tolist()), item([[1, 2, 3]]),
             item(b'{"instances": [[1, 2'), item("\n".join(",".join(map(str, r)) for r in X[4:6]).encode(), "text/csv"),
             item(X[6].tolist(), accept="text/csv"), item(X[7].tolist(), accept="image/png")]
    results = handler.handle(items)
    assert calls == [7]  # one stacked predict for the 7 good rows
    expected = classifier.predict(X[:7]).tolist()
    assert results[0] == (OK, "application/json", json.dumps({"predictions": expected[:3]}).encode())
    assert json.loads(results[1][2]) == {"predictions": expected[3:4]}
    assert results[2] == (BAD_INPUT, "", b"expected 4 features per row, got 3")
    assert results[3][0] == BAD_INPUT and results[3][2].startswith(b"malformed JSON")
    assert json.loads(results[4][2]) == {"predictions": expected[4:6]}
    assert results[5] == (OK, "text/csv", ("%d\n" % expected[6]).encode())
    assert results[6][0] == BAD_INPUT and b"unsupported accept" in results[6][2]


def test_regressor_predictions_match(reg_dir, regressor, data):
    X = data[0][:5]
    results = load(reg_dir).handle([item(X[:2].tolist()), item(X[2:].tolist(), accept="text/csv")])
    assert json.loads(results[0][2])["predictions"] == regressor.predict(X[:2]).tolist()
    csv = [float(v) for v in results[1][2].decode().split()]
    assert csv == pytest.approx(regressor.predict(X[2:]).tolist())



def test_stacked_predict_failure_falls_back_per_item():
    handler = SKLearnRuntime(Picky())
    results = handler.handle([item([[1, 2]]), item([[-1, 2]]), item([[3, 4], [5, 6]])])
    assert results[0] == (OK, "application/json", b'{"predictions": [3.0]}')
    assert results[1] == (MODEL_ERROR, "", b"ValueError: negative input")
    assert results[2] == (OK, "application/json", b'{"predictions": [7.0, 11.0]}')


def test_pickle_file_and_missing_model(tmp_path, classifier):
    import pickle
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(classifier, f)
    assert load(str(tmp_path)).n_features == N_FEATURES
    with pytest.raises(FileNotFoundError, match="model.joblib, model.pkl, model.json"):
        load(str(tmp_path / "empty"))


def test_handler_line_formats_end_to_end(clf_dir, classifier, data):
    X = data[0][:40]
    expected = classifier.predict(X).tolist()
    jsonl = "".join(json.dumps({"features": row}) + "\n" for row in X[:20].tolist()).encode()
    csv = "".join(",".join(map(repr, r)) + "\n" for r in X[20:].tolist()).encode()
    results = load(clf_dir).handle([
        item(jsonl, "application/jsonlines", accept="application/jsonlines"),
        item(csv, "text/csv", accept="text/csv"),
        item(csv, "text/csv", accept="application/x-jsonlines"),
        item(b"[1, 2]\n", "application/jsonlines"),
    ])
    assert results[0] == (OK, "application/jsonlines", "".join("%d\n" % p for p in expected[:20]).encode())
    assert results[1] == (OK, "text/csv", "".join("%d\n" % p for p in expected[20:]).encode())
    assert results[2] == (OK, "application/x-jsonlines", results[1][2])
    assert results[3] == (BAD_INPUT, "", b"expected %d features per row, got 2" % N_FEATURES)
