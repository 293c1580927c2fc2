"""XGBoostRuntime with Boosters trained at test time (skipped without xgboost): every file format, INVOKE and
INFER."""
import json

import numpy as np
import pytest

from conftest import answer, item, specs
from serval_worker import protocol as P
from serval_worker.protocol import BAD_INPUT, OK
from serval_worker.runtimes import load
from wire import array_tensor


@pytest.mark.parametrize("name", ["model.json", "model.ubj", "xgboost-model", "xgboost-model-pickle"])
def test_xgboost(tmp_path, data, name):
    xgboost = pytest.importorskip("xgboost")
    X, y = data
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                            xgboost.DMatrix(X, label=y), num_boost_round=5)
    booster.save_model(str(tmp_path / ("model.ubj" if name == "model.ubj" else "model.json")))
    if name == "xgboost-model":
        (tmp_path / "model.json").rename(tmp_path / "xgboost-model")
    elif name == "xgboost-model-pickle":  # what older SageMaker XGBoost containers wrote
        import pickle
        (tmp_path / "model.json").unlink()
        (tmp_path / "xgboost-model").write_bytes(pickle.dumps(booster))
    runtime = load(str(tmp_path))
    assert (runtime.name, runtime.batching, runtime.n_features) == ("xgboost", "stacked", 4)
    results = runtime.handle([item(X[:3].tolist()), item([1.0, 2.0]), item(X[3].tolist(), accept="text/csv")])
    expected = booster.predict(xgboost.DMatrix(X[:4]))
    assert json.loads(results[0][2])["predictions"] == pytest.approx(expected[:3].tolist())
    assert results[1] == (BAD_INPUT, "", b"expected 4 features per row, got 2")
    assert results[2][:2] == (OK, "text/csv") and float(results[2][2]) == pytest.approx(float(expected[3]))


@pytest.mark.parametrize("objective, classes", [("binary:logistic", None), ("multi:softprob", 3)])
def test_xgboost_tensor_path(tmp_path, objective, classes):
    xgboost = pytest.importorskip("xgboost")
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=150, n_features=5, n_informative=4, n_redundant=0,
                               n_classes=classes or 2, random_state=1)
    params = {"objective": objective, "max_depth": 2, "nthread": 1}
    if classes:
        params["num_class"] = classes
    booster = xgboost.train(params, xgboost.DMatrix(X, label=y), num_boost_round=4)
    booster.save_model(str(tmp_path / "model.json"))
    runtime = load(str(tmp_path))
    assert runtime.platform == "xgboost"
    assert runtime.inputs == specs(("input-0", "FP32", [-1, 5]))
    assert runtime.outputs == specs(("predict", "FP32", [-1, classes] if classes else [-1]))
    X = X[:7].astype(np.float32)
    mode, out = answer(runtime, [3, 4], [array_tensor("input-0", X)])
    assert mode == P.BATCH_MODE and out["predict"][0] == "FP32"
    np.testing.assert_array_equal(out["predict"][1], booster.predict(xgboost.DMatrix(X)))
    assert answer(runtime, [7], [array_tensor("input-0", X[:, :4])])[1] == [
        (P.BAD_INPUT, "input-0 has 4 features per row; the model expects 5")]


def test_predict_takes_a_dmatrix_as_is_and_sklearn_wrappers_are_sklearn(tmp_path, data):
    xgboost = pytest.importorskip("xgboost")
    from serval_worker.runtimes.sklearn import SKLearnRuntime
    from serval_worker.runtimes.xgboost import XGBoostRuntime
    X, y = data
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                            xgboost.DMatrix(X, label=y), num_boost_round=3)
    runtime = XGBoostRuntime(booster)
    expected = booster.predict(xgboost.DMatrix(X[:5]))
    np.testing.assert_array_equal(runtime.predict(xgboost.DMatrix(X[:5])), expected)  # what an input_fn may return
    np.testing.assert_array_equal(runtime.predict(X[:5]), expected)
    assert XGBoostRuntime.claims(booster) and not XGBoostRuntime.claims(object())
    # XGBoost's scikit-learn API is scikit-learn's: predict and predict_proba
    import joblib
    classifier = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(X, y)
    assert not XGBoostRuntime.claims(classifier)
    joblib.dump(classifier, tmp_path / "model.joblib")
    runtime = load(str(tmp_path))
    assert type(runtime) is SKLearnRuntime and [spec.name for spec in runtime.outputs] == ["predict", "predict_proba"]
    assert json.loads(runtime.handle([item(X[:3].tolist())])[0][2])["predictions"] == classifier.predict(X[:3]).tolist()
