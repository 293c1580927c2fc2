"""SageMaker-style code/inference.py packages."""
import json
import os

import pytest

from conftest import item, write_code
from serval_worker.runtimes import load
from serval_worker.protocol import BAD_INPUT, MODEL_ERROR, OK

FULL = '''
import json, os
import joblib
import numpy as np

SEEN = []

def model_fn(model_dir):
    return {"clf": joblib.load(os.path.join(model_dir, "model.joblib"))}

def input_fn(input_data, content_type):
    SEEN.append((type(input_data).__name__, content_type))
    if content_type == "application/octet-stream":
        return np.frombuffer(input_data, dtype=np.float64).reshape(1, -1)
    doc = json.loads(input_data)
    if "features" not in doc:
        raise KeyError("features")
    return np.asarray(doc["features"], dtype=float)

def predict_fn(data, model):
    if data.shape[1] != 4:
        raise ValueError("need 4 features")
    return model["clf"].predict_proba(data)

def output_fn(prediction, accept):
    if accept == "application/x-custom":
        return b"custom", "application/x-custom"
    return json.dumps({"proba": prediction.tolist(), "accept": accept})
'''


def test_full_custom_package(clf_dir, classifier, data):
    X = data[0]
    write_code(clf_dir, FULL)
    handler = load(clf_dir)
    assert (handler.name, handler.batching, handler.n_features) == ("custom", "per_item", None)
    results = handler.handle([
        item({"features": X[:2].tolist()}),
        item(X[2].tobytes(), "application/octet-stream", "application/x-custom"),
        item({"nope": 1}, accept="text/plain"),
        item({"features": [[1, 2]]}),
    ])
    assert results[0][:2] == (OK, "application/json")
    body = json.loads(results[0][2])
    assert body["accept"] == "application/json"
    assert body["proba"] == classifier.predict_proba(X[:2]).tolist()
    assert results[1] == (OK, "application/x-custom", b"custom")
    assert results[2] == (BAD_INPUT, "", b"KeyError: 'features'")
    assert results[3] == (MODEL_ERROR, "", b"ValueError: need 4 features")
    assert handler.model is not None
    import inference
    assert inference.SEEN[:2] == [("str", "application/json"), ("bytes", "application/octet-stream")]


def test_transform_fn(clf_dir, classifier, data):
    write_code(clf_dir, '''
def transform_fn(model, input_data, content_type, accept):
    if input_data == "boom":
        raise RuntimeError("exploded")
    rows = [[float(v) for v in line.split(",")] for line in input_data.split()]
    return ",".join(str(p) for p in model.predict(rows)), "text/csv"
''')
    handler = load(clf_dir)
    assert (handler.name, handler.batching, handler.n_features) == ("custom", "per_item", 4)
    X = data[0][:3]
    csv = "\n".join(",".join(map(str, r)) for r in X).encode()
    results = handler.handle([item(csv, "text/csv"), item(b"boom", "text/plain"), item(b"\xff", "text/csv")])
    assert results[0] == (OK, "text/csv", ",".join(map(str, classifier.predict(X))).encode())
    assert results[1] == (MODEL_ERROR, "", b"RuntimeError: exploded")
    assert results[2][0] == BAD_INPUT and results[2][2].startswith(b"UnicodeDecodeError")


def test_predict_batch_fn_called_once_per_batch(clf_dir, classifier, data):
    write_code(clf_dir, '''
import numpy as np
CALLS = []

def input_fn(input_data, content_type):
    return np.asarray(__import__("json").loads(input_data), dtype=float)

def predict_batch_fn(inputs, model):
    CALLS.append(len(inputs))
    sizes = [len(x) for x in inputs]
    preds = model.predict(np.vstack(inputs))
    return np.split(preds, np.cumsum(sizes)[:-1])
''')
    handler = load(clf_dir)
    assert handler.batching == "predict_batch_fn"
    X = data[0]
    results = handler.handle([item(X[:2].tolist()), item(X[2:5].tolist(), accept="text/csv"), item({"bad": 1})])
    import inference
    assert inference.CALLS == [2]  # the bad item was rejected by input_fn before the batch call
    assert results[0] == (OK, "application/json", json.dumps({"predictions": classifier.predict(X[:2]).tolist()}).encode())
    assert results[1] == (OK, "text/csv", "".join("%d\n" % p for p in classifier.predict(X[2:5])).encode())
    assert results[2][0] == BAD_INPUT
    handler.handle([item(X[:1].tolist())])
    assert inference.CALLS == [2, 1]


def test_predict_batch_fn_failure_falls_back_to_predict_fn(clf_dir):
    write_code(clf_dir, '''
def input_fn(input_data, content_type):
    return int(input_data)

def predict_batch_fn(inputs, model):
    raise RuntimeError("batch failed")

def predict_fn(data, model):
    if data < 0:
        raise ValueError("negative")
    return [data * 2]
''')
    results = load(clf_dir).handle([item(b"1", "text/plain"), item(b"-1", "text/plain"), item(b"x", "text/plain")])
    assert results == [(OK, "application/json", b'{"predictions": [2]}'), (MODEL_ERROR, "", b"ValueError: negative"),
                       (BAD_INPUT, "", b"ValueError: invalid literal for int() with base 10: 'x'")]


def test_predict_batch_fn_wrong_length_falls_back(clf_dir, classifier, data):
    write_code(clf_dir, '''
def predict_batch_fn(inputs, model):
    return []
''')
    X = data[0][:2]
    results = load(clf_dir).handle([item(X[:1].tolist()), item(X[1:].tolist())])
    assert [json.loads(r[2])["predictions"][0] for r in results] == classifier.predict(X).tolist()


def test_custom_input_fn_raising_is_bad_input(clf_dir):
    write_code(clf_dir, '''
def input_fn(input_data, content_type):
    raise ValueError("cannot parse " + content_type)
''')
    handler = load(clf_dir)
    assert handler.batching == "per_item" and handler.n_features == 4
    assert handler.handle([item(b"{}", "")]) == [(BAD_INPUT, "", b"ValueError: cannot parse application/json")]


def test_model_fn_only_keeps_stacked_batching(tmp_path, classifier, data):
    import joblib
    joblib.dump(classifier, tmp_path / "weights.bin")
    write_code(tmp_path, '''
import os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "weights.bin"))
''')
    handler = load(str(tmp_path))
    assert (handler.name, handler.batching, handler.n_features) == ("custom", "stacked", 4)
    X = data[0][:3]
    assert json.loads(handler.handle([item(X.tolist())])[0][2])["predictions"] == classifier.predict(X).tolist()


SERVE = '''
import serve_helpers_a

def predict_fn(data, model):
    return {"proba": model.predict_proba(data).tolist(), "by": serve_helpers_a.MARK}
'''


def test_sagemaker_program_selects_the_entry_script(clf_dir, classifier, data, monkeypatch):
    """SAGEMAKER_PROGRAM names the script in code/; it wins over inference.py and imports its sibling modules."""
    X = data[0]
    write_code(clf_dir, "def predict_fn(data, model):\n    raise RuntimeError('inference.py must not run')\n")
    code = os.path.join(clf_dir, "code")
    with open(os.path.join(code, "serve.py"), "w") as f:
        f.write(SERVE)
    with open(os.path.join(code, "serve_helpers_a.py"), "w") as f:
        f.write("MARK = 'serve.py'\n")
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "serve.py")
    handler = load(clf_dir)
    assert handler.name == "custom"
    status, content_type, body = handler.handle([item({"instances": X[:3].tolist()})])[0]
    assert (status, content_type) == (OK, "application/json")
    assert json.loads(body)["predictions"] == {"proba": classifier.predict_proba(X[:3]).tolist(), "by": "serve.py"}


def test_without_sagemaker_program_inference_py_is_used(clf_dir, classifier, data, monkeypatch):
    monkeypatch.delenv("SAGEMAKER_PROGRAM", raising=False)
    write_code(clf_dir, "def predict_fn(data, model):\n    return model.predict(data) + 100\n")
    with open(os.path.join(clf_dir, "code", "serve.py"), "w") as f:
        f.write("raise RuntimeError('serve.py must not run')\n")
    status, _, body = load(clf_dir).handle([item({"instances": data[0][:2].tolist()})])[0]
    assert status == OK
    assert json.loads(body)["predictions"] == (classifier.predict(data[0][:2]) + 100).tolist()


@pytest.mark.parametrize("program", ["serve.py", "../model.joblib", "/etc/hostname"])
def test_a_missing_program_fails_the_load_naming_the_variable_and_listing_code(clf_dir, monkeypatch, program):
    write_code(clf_dir, "")
    with open(os.path.join(clf_dir, "code", "helpers.py"), "w") as f:
        f.write("")
    monkeypatch.setenv("SAGEMAKER_PROGRAM", program)
    with pytest.raises(FileNotFoundError) as info:
        load(clf_dir)
    message = str(info.value)
    assert "SAGEMAKER_PROGRAM is %r" % program in message
    assert "holds helpers.py, inference.py" in message


def test_a_missing_program_without_code_folder_says_so(clf_dir, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "serve.py")
    with pytest.raises(FileNotFoundError, match="SAGEMAKER_PROGRAM is 'serve.py', but code/ in the model package is "
                                                "empty or missing"):
        load(clf_dir)
