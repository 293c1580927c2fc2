"""Shared fixtures: small real scikit-learn models saved into tmp_path, and request helpers."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from serval_worker import protocol as P  # noqa: E402
from serval_worker import server  # noqa: E402
from serval_worker.protocol import Item  # noqa: E402
from serval_worker.signature import TensorSpec  # noqa: E402
from wire import decode_infer_result, infer_payload  # noqa: E402

N_FEATURES = 4


def item(body, content_type="application/json", accept="", attrs=""):
    """Build an INVOKE item; a non-bytes body is sent as JSON."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return Item(content_type, accept, attrs, body)


@pytest.fixture(scope="session")
def data():
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=200, n_features=N_FEATURES, n_informative=3, n_redundant=0,
                               random_state=0)
    return X, y


@pytest.fixture(scope="session")
def classifier(data):
    from sklearn.linear_model import LogisticRegression
    X, y = data
    return LogisticRegression(max_iter=200).fit(X, y)


@pytest.fixture(scope="session")
def regressor(data):
    from sklearn.linear_model import Ridge
    X, y = data
    return Ridge().fit(X, X @ np.arange(1.0, N_FEATURES + 1) + y)


@pytest.fixture
def clf_dir(tmp_path, classifier):
    import joblib
    joblib.dump(classifier, tmp_path / "model.joblib")
    return str(tmp_path)


@pytest.fixture
def reg_dir(tmp_path, regressor):
    import joblib
    joblib.dump(regressor, tmp_path / "model.joblib")
    return str(tmp_path)


def configured(runtime, settings=None):
    """A runtime made from a model object, configured (with ``settings``, read_model_settings' dict) as load does."""
    runtime.configure(settings)
    return runtime


def write_code(model_dir, source):
    """Write code/inference.py into a model directory."""
    code = os.path.join(str(model_dir), "code")
    os.makedirs(code, exist_ok=True)
    with open(os.path.join(code, "inference.py"), "w") as f:
        f.write(source)


class Picky:
    """A model whose predict raises for rows with a negative first value."""
    n_features_in_ = 2

    def predict(self, X):
        if (X[:, 0] < 0).any():
            raise ValueError("negative input")
        return X.sum(axis=1)


def answer(runtime, rows, tensors, outputs=()):
    """Run an INFER batch through the runtime and the worker's encoder; returns Serval's view of the answer:
    ``(0, {name: (datatype, array)})`` or ``(1, [(status, outputs or message), ...])``."""
    frame = server.answer_infer(runtime, P.decode_infer(infer_payload(7, rows, tensors, outputs)))
    batch_id, mode, result = decode_infer_result(frame[6:])
    assert batch_id == 7
    return mode, result


def specs(*triples):
    """TensorSpecs from (name, datatype, shape) triples."""
    return [TensorSpec(name, datatype, tuple(shape)) for name, datatype, shape in triples]


def save(tmp_path, model, settings=None):
    """Save ``model`` as the package in tmp_path (model.joblib), with a model-settings.json when given."""
    import joblib
    joblib.dump(model, tmp_path / "model.joblib")
    if settings is not None:
        (tmp_path / "model-settings.json").write_text(json.dumps(settings))
    return str(tmp_path)
