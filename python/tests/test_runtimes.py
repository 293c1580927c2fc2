"""The runtime registry: which runtime a package gets, and what loading it imports."""
import json
import os
import pickle
import subprocess
import sys

import pytest

from conftest import Picky
from serval_worker import runtimes
from serval_worker.runtimes.custom import CustomCodeRuntime
from serval_worker.runtimes.sklearn import SKLearnRuntime
from serval_worker.runtimes.xgboost import XGBoostRuntime

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_files_are_looked_for_in_one_order():
    assert [name for name, _ in runtimes.ARTIFACTS] == [
        "model.joblib", "model.pkl", "model.json", "model.ubj", "xgboost-model", "model.onnx", "model.pt"]


def test_the_first_file_wins(tmp_path, classifier):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Picky()))
    assert isinstance(runtimes.load(str(tmp_path)).model, Picky)
    import joblib
    joblib.dump(classifier, tmp_path / "model.joblib")
    assert runtimes.load(str(tmp_path)).n_features == classifier.n_features_in_


def test_the_model_object_picks_the_framework(tmp_path):
    """A Booster pickled as model.pkl is XGBoost's, whatever the file's name."""
    xgboost = pytest.importorskip("xgboost")
    import numpy as np
    X = np.arange(20.0).reshape(10, 2)
    booster = xgboost.train({"max_depth": 1, "nthread": 1}, xgboost.DMatrix(X, label=X[:, 0]), num_boost_round=2)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(booster))
    runtime = runtimes.load(str(tmp_path))
    assert type(runtime) is XGBoostRuntime and (runtime.name, runtime.n_features) == ("xgboost", 2)
    assert runtimes.runtime_class(Picky()) is SKLearnRuntime
    assert runtimes.runtime_class({"anything": 1}) is SKLearnRuntime


def test_custom_code_wraps_the_framework_of_its_model(clf_dir):
    os.makedirs(os.path.join(clf_dir, "code"))
    with open(os.path.join(clf_dir, "code", "inference.py"), "w") as f:
        f.write("def output_fn(prediction, accept):\n    return 'n=%d' % len(prediction)\n")
    runtime = runtimes.load(clf_dir)
    assert type(runtime) is CustomCodeRuntime and type(runtime.framework) is SKLearnRuntime
    assert runtime.model is runtime.framework.model


def test_a_scikit_learn_model_imports_no_other_framework(clf_dir):
    """Frameworks are imported only for their models (each costs start-up time and memory)."""
    script = ("import json, sys\nfrom serval_worker import runtimes\nruntime = runtimes.load(sys.argv[1])\n"
              "print(json.dumps([runtime.name, sorted(m for m in ('xgboost', 'onnxruntime', 'onnx', 'torch') "
              "if m in sys.modules)]))\n")
    out = subprocess.run([sys.executable, "-c", script, clf_dir], env=dict(os.environ, PYTHONPATH=PYTHON_DIR),
                         capture_output=True, check=True, timeout=120).stdout
    assert json.loads(out) == ["sklearn", []]
