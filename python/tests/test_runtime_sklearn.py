"""SKLearnRuntime (and what every runtime shares: stacked batching, per-item fallbacks) with real scikit-learn models:
INVOKE and INFER."""
import json

import numpy as np
import pytest

from conftest import N_FEATURES, Picky, answer, configured, item, save, specs
from serval_worker import protocol as P
from serval_worker import server
from serval_worker.protocol import BAD_INPUT, MODEL_ERROR, OK
from serval_worker.runtimes import load
from serval_worker.runtimes.sklearn import SKLearnRuntime
from wire import array_tensor, encode_tensor


# ---------------------------------------------------------------- INVOKE

def test_ready_fields(clf_dir):
    runtime = load(clf_dir)
    assert isinstance(runtime, SKLearnRuntime)
    assert (runtime.name, runtime.batching, runtime.n_features) == ("sklearn", "stacked", N_FEATURES)


def test_stacked_batch_isolates_bad_items(clf_dir, classifier, data):
    X = data[0]
    runtime = load(clf_dir)
    calls = []
    predict = runtime.predict
    runtime.predict = lambda rows: calls.append(len(rows)) or predict(rows)
    items = [item({"instances": X[:3].tolist()}), item(X[3].tolist()), item([[1, 2, 3]]),
             item(b'{"instances": [[1, 2'), item("\n".join(",".join(map(str, r)) for r in X[4:6]).encode(), "text/csv"),
             item(X[6].tolist(), accept="text/csv"), item(X[7].tolist(), accept="image/png")]
    results = runtime.handle(items)
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
    runtime = SKLearnRuntime(Picky())
    results = runtime.handle([item([[1, 2]]), item([[-1, 2]]), item([[3, 4], [5, 6]])])
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


def test_line_formats_end_to_end(clf_dir, classifier, data):
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


# ---------------------------------------------------------------- INFER

def test_classifier_metadata_and_ready(clf_dir):
    runtime = load(clf_dir)
    assert runtime.platform == "sklearn"
    assert runtime.inputs == specs(("input-0", "FP32", [-1, N_FEATURES]))
    assert runtime.outputs == specs(("predict", "INT64", [-1]), ("predict_proba", "FP64", [-1, 2]))
    ready = server.ready_info(runtime)
    assert (ready["protocol"], ready["handler"], ready["batching"], ready["n_features"]) == (2, "sklearn", "stacked", 4)
    assert ready["platform"] == "sklearn"
    assert ready["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert ready["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    json.dumps(ready)


def test_regressor_metadata(tmp_path, data, reg_dir):
    from sklearn.linear_model import Ridge
    runtime = load(reg_dir)
    assert runtime.outputs == specs(("predict", "FP64", [-1]))
    X = data[0]
    two = load(save(tmp_path, Ridge().fit(X, np.c_[X[:, 0], X[:, 1]])))
    assert two.outputs == specs(("predict", "FP64", [-1, 2]))


def test_batch_is_one_call_and_matches_the_model(clf_dir, classifier, data):
    runtime = load(clf_dir)
    calls = []
    for name, fn in list(runtime.methods.items()):
        runtime.methods[name] = lambda X, fn=fn, name=name: calls.append((name, X.shape)) or fn(X)
    X = data[0][:6].astype(np.float32)
    mode, out = answer(runtime, [1, 2, 3], [array_tensor("input-0", X)])
    assert mode == P.BATCH_MODE
    assert calls == [("predict", (6, 4)), ("predict_proba", (6, 4))]
    assert out["predict"][0] == "INT64" and out["predict"][1].tolist() == classifier.predict(X).tolist()
    assert out["predict_proba"][0] == "FP64"
    np.testing.assert_array_equal(out["predict_proba"][1], classifier.predict_proba(X))


def test_requested_outputs(clf_dir, classifier, data):
    runtime = load(clf_dir)
    X = data[0][:3].astype(np.float32)
    mode, out = answer(runtime, [3], [array_tensor("input-0", X)], ["predict_proba"])
    assert mode == P.BATCH_MODE and list(out) == ["predict_proba"]
    np.testing.assert_array_equal(out["predict_proba"][1], classifier.predict_proba(X))
    mode, out = answer(runtime, [1, 2], [array_tensor("input-0", X)], ["predict_proba", "predict"])
    assert mode == P.BATCH_MODE and list(out) == ["predict_proba", "predict"]
    mode, out = answer(runtime, [1, 2], [array_tensor("input-0", X)], ["label"])
    assert mode == P.ITEMS_MODE
    assert out == [(P.BAD_INPUT, "the model has no output 'label'; its outputs are predict, predict_proba")] * 2


def test_string_labels_are_bytes(tmp_path, data):
    from sklearn.tree import DecisionTreeClassifier
    X, y = data
    labels = np.array(["no", "s\u00ed"])[y]
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels)
    runtime = load(save(tmp_path, model))
    assert runtime.outputs == specs(("predict", "BYTES", [-1]), ("predict_proba", "FP64", [-1, 2]))
    mode, out = answer(runtime, [2, 3], [array_tensor("input-0", X[:5])], ["predict"])
    assert mode == P.BATCH_MODE and out["predict"][0] == "BYTES"
    assert out["predict"][1].tolist() == [s.encode() for s in model.predict(X[:5])]


def test_inputs_as_columns(tmp_path, classifier, data):
    X = data[0][:5]
    runtime = load(save(tmp_path, classifier))
    expected = classifier.predict(X).tolist()
    columns = [array_tensor("f%d" % i, X[:, i].astype(np.float32)) for i in range(4)]
    mode, out = answer(runtime, [2, 3], columns, ["predict"])
    assert mode == P.BATCH_MODE and out["predict"][1].tolist() == expected
    mixed = [array_tensor("a", X[:, :2]), array_tensor("b", X[:, 2]), array_tensor("c", X[:, 3:])]
    assert answer(runtime, [5], mixed, ["predict"])[1]["predict"][1].tolist() == expected
    mode, out = answer(runtime, [5], columns[:3], ["predict"])
    assert out == [(P.BAD_INPUT, "the 3 inputs have 3 features per row in all (f0: 1, f1: 1, f2: 1); "
                                 "the model expects 4")]
    # with inputs declared in model-settings.json, columns follow the declared order whatever the request's
    (tmp_path / "model-settings.json").write_text(json.dumps(
        {"inputs": [{"name": "f%d" % i, "datatype": "FP32", "shape": [-1]} for i in range(4)]}))
    runtime = load(str(tmp_path))
    assert [spec.name for spec in runtime.inputs] == ["f0", "f1", "f2", "f3"]
    assert answer(runtime, [5], columns[::-1], ["predict"])[1]["predict"][1].tolist() == expected


@pytest.mark.parametrize("datatype", ["FP64", "FP16", "INT64", "UINT8", "BOOL", "INT8"])
def test_numeric_inputs_are_cast(clf_dir, classifier, data, datatype):
    X = np.abs(data[0][:4]).round()
    wire = {"FP64": X, "FP16": X.astype(np.float16), "INT64": X.astype(np.int64), "UINT8": X.astype(np.uint8),
            "BOOL": X > 0, "INT8": X.astype(np.int8)}[datatype]
    mode, out = answer(load(clf_dir), [4], [array_tensor("input-0", wire, datatype)], ["predict"])
    assert mode == P.BATCH_MODE
    assert out["predict"][1].tolist() == classifier.predict(wire.astype(np.float64)).tolist()


def test_bad_inputs(clf_dir, tmp_path):
    runtime = load(clf_dir)
    X = np.zeros((3, 19), np.float32)
    assert answer(runtime, [3], [array_tensor("input-0", X)]) == (
        P.ITEMS_MODE, [(P.BAD_INPUT, "input-0 has 19 features per row; the model expects 4")])
    assert answer(runtime, [1, 2], [encode_tensor("input-0", "BYTES", [3], [b"a", b"b", b"c"])])[1] == [
        (P.BAD_INPUT, "input 'input-0' is BYTES; the model takes numbers (FP32 or another numeric datatype)")] * 2
    assert answer(runtime, [2], [array_tensor("x", np.zeros((2, 2, 2)))])[1] == [
        (P.BAD_INPUT, "input 'x' has shape [2, 2, 2]; send [N, k] (N rows of k features) or [N] (one feature)")]
    assert answer(runtime, [0], [array_tensor("x", np.zeros(()))])[1][0][0] == P.BAD_INPUT
    assert answer(runtime, [2], [array_tensor("a", np.zeros((2, 2))), array_tensor("b", np.zeros((3, 2)))])[1] == [
        (P.BAD_INPUT, "inputs 'a' and 'b' have different numbers of rows (2 and 3)")]
    assert answer(runtime, [0], [array_tensor("input-0", np.zeros((0, 4)))])[1] == [
        (P.BAD_INPUT, "the input has no values")]
    assert answer(runtime, [0], [])[1][0][1].startswith("the request has no inputs")


def test_one_feature_model_takes_a_vector(tmp_path):
    from sklearn.linear_model import LinearRegression
    model = LinearRegression().fit(np.arange(10.0).reshape(-1, 1), 2 * np.arange(10.0) + 1)
    runtime = load(save(tmp_path, model))
    assert runtime.inputs == specs(("input-0", "FP32", [-1, 1]))
    mode, out = answer(runtime, [2, 1], [array_tensor("input-0", np.array([1.0, 2.0, 3.0], np.float32))])
    assert mode == P.BATCH_MODE and out["predict"][1] == pytest.approx([3.0, 5.0, 7.0])



def test_failing_batch_falls_back_to_items():
    runtime = configured(SKLearnRuntime(Picky()))
    X = np.array([[1, 2], [-1, 2], [3, 4], [5, 6]], np.float32)
    mode, out = answer(runtime, [1, 1, 2], [array_tensor("input-0", X)])
    assert mode == P.ITEMS_MODE
    assert out[0][0] == P.OK and out[0][1]["predict"][1].tolist() == [3.0]
    assert out[1] == (P.MODEL_ERROR, "ValueError: negative input")
    assert out[2][0] == P.OK and out[2][1]["predict"][1].tolist() == [7.0, 11.0]
    assert answer(runtime, [1], [array_tensor("input-0", X[1:2])]) == (
        P.ITEMS_MODE, [(P.MODEL_ERROR, "ValueError: negative input")])


class Labeller:
    """A model without n_features_in_: its predict cannot be probed, so READY's FP64 is a guess."""

    def predict(self, X):
        return np.array(["row of %d" % len(row) for row in X])


def test_guessed_output_datatype_is_not_forced():
    runtime = configured(SKLearnRuntime(Labeller()))
    assert runtime.inputs == specs(("input-0", "FP32", [-1, -1]))
    assert runtime.outputs == specs(("predict", "FP64", [-1]))
    mode, out = answer(runtime, [1, 1], [array_tensor("input-0", np.zeros((2, 3)))])
    assert mode == P.BATCH_MODE and out["predict"][0] == "BYTES"
    assert out["predict"][1].tolist() == [b"row of 3", b"row of 3"]


# ---------------------------------------------------------------- the class

class Proba:
    """predict, and a predict_proba property that raises (as scikit-learn's does for SVC without probability)."""
    n_features_in_ = 2

    def predict(self, X):
        return X[:, 0]

    @property
    def predict_proba(self):
        raise AttributeError("predict_proba is not available when probability=False")


def test_outputs_are_the_methods_the_model_has():
    runtime = configured(SKLearnRuntime(Proba()))
    assert list(runtime.methods) == ["predict"]
    assert runtime.outputs == specs(("predict", "FP32", [-1]))  # what predict gave for the probe's float32 row
    assert list(configured(SKLearnRuntime({"no": "predict"})).methods) == []


@pytest.mark.parametrize("value, n_features", [(3, 3), (np.int64(5), 5), (True, None), (0, None), (-2, None),
                                                ("4", None), (4.0, None)])
def test_n_features_is_a_positive_integer_or_none(value, n_features):
    model = Picky()
    model.n_features_in_ = value
    assert SKLearnRuntime(model).n_features == n_features


class Shorter:
    """Answers one prediction whatever it is given: a stacked batch gets too few, so its items run one by one."""
    n_features_in_ = 2

    def predict(self, X):
        return X[:1, 0] * 10


def test_a_stacked_batch_with_too_few_predictions_runs_item_by_item():
    results = SKLearnRuntime(Shorter()).handle([item([[1, 2]]), item([[3, 4]])])
    assert results == [(OK, "application/json", b'{"predictions": [10.0]}'),
                       (OK, "application/json", b'{"predictions": [30.0]}')]


def test_accept_and_error_results():
    from serval_worker.errors import BadInput
    from serval_worker.runtimes.base import error_result, request_accept
    assert [request_accept(a) for a in ("", " */* ", " text/csv ")] == ["application/json", "application/json",
                                                                         "text/csv"]
    assert error_result(BAD_INPUT, BadInput("bad row")) == (BAD_INPUT, "", b"bad row")
    assert error_result(MODEL_ERROR, KeyError("x")) == (MODEL_ERROR, "", b"KeyError: 'x'")
