"""CustomCodeRuntime: SageMaker-style code/inference.py packages, INVOKE and INFER."""
import json
import os

import numpy as np
import pytest

from conftest import answer, item, specs, write_code
from serval_worker import protocol as P
from serval_worker.runtimes import load
from serval_worker.protocol import BAD_INPUT, MODEL_ERROR, OK
from wire import array_tensor

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
    runtime = load(clf_dir)
    assert (runtime.name, runtime.batching, runtime.n_features) == ("custom", "per_item", None)
    results = runtime.handle([
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
    assert runtime.model is not None
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
    runtime = load(clf_dir)
    assert (runtime.name, runtime.batching, runtime.n_features) == ("custom", "per_item", 4)
    X = data[0][:3]
    csv = "\n".join(",".join(map(str, r)) for r in X).encode()
    results = runtime.handle([item(csv, "text/csv"), item(b"boom", "text/plain"), item(b"\xff", "text/csv")])
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
    runtime = load(clf_dir)
    assert runtime.batching == "predict_batch_fn"
    X = data[0]
    results = runtime.handle([item(X[:2].tolist()), item(X[2:5].tolist(), accept="text/csv"), item({"bad": 1})])
    import inference
    assert inference.CALLS == [2]  # the bad item was rejected by input_fn before the batch call
    assert results[0] == (OK, "application/json", json.dumps({"predictions": classifier.predict(X[:2]).tolist()}).encode())
    assert results[1] == (OK, "text/csv", "".join("%d\n" % p for p in classifier.predict(X[2:5])).encode())
    assert results[2][0] == BAD_INPUT
    runtime.handle([item(X[:1].tolist())])
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
    runtime = load(clf_dir)
    assert runtime.batching == "per_item" and runtime.n_features == 4
    assert runtime.handle([item(b"{}", "")]) == [(BAD_INPUT, "", b"ValueError: cannot parse application/json")]


def test_model_fn_only_keeps_stacked_batching(tmp_path, classifier, data):
    import joblib
    joblib.dump(classifier, tmp_path / "weights.bin")
    write_code(tmp_path, '''
import os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "weights.bin"))
''')
    runtime = load(str(tmp_path))
    assert (runtime.name, runtime.batching, runtime.n_features) == ("custom", "stacked", 4)
    X = data[0][:3]
    assert json.loads(runtime.handle([item(X.tolist())])[0][2])["predictions"] == classifier.predict(X).tolist()


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
    runtime = load(clf_dir)
    assert runtime.name == "custom"
    status, content_type, body = runtime.handle([item({"instances": X[:3].tolist()})])[0]
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


INFER_FN = '''
import numpy as np
CALLS = []

def infer_fn(inputs, model):
    CALLS.append({name: array.shape for name, array in inputs.items()})
    x = inputs["x"]
    if (x == -1).any():
        raise ValueError("marker value -1")
    return {"double": x * 2, "label": np.array(["even" if v % 2 == 0 else "odd" for v in x[:, 0]])}
'''


def test_custom_infer_fn(clf_dir):
    write_code(clf_dir, INFER_FN)
    runtime = load(clf_dir)
    assert (runtime.name, runtime.platform, runtime.inputs, runtime.outputs) == ("custom", "python", [], [])
    assert runtime.batching == "stacked"  # infer_fn does not change how INVOKE batches
    import inference
    x = np.array([[1, 2], [4, 5], [6, 7]], np.int32)
    mode, out = answer(runtime, [1, 2], [array_tensor("x", x)])
    assert inference.CALLS == [{"x": (3, 2)}]  # the whole batch, once
    assert mode == P.BATCH_MODE
    assert out["double"][0] == "INT32" and out["double"][1].tolist() == (x * 2).tolist()
    assert out["label"][0] == "BYTES" and out["label"][1].tolist() == [b"odd", b"even", b"even"]
    bad = np.array([[1, 2], [-1, 5], [6, 7]], np.int32)
    mode, out = answer(runtime, [1, 1, 1], [array_tensor("x", bad)], ["label"])
    assert mode == P.ITEMS_MODE
    assert inference.CALLS[1:] == [{"x": (3, 2)}, {"x": (1, 2)}, {"x": (1, 2)}, {"x": (1, 2)}]
    assert out[0][0] == P.OK and list(out[0][1]) == ["label"] and out[0][1]["label"][1].tolist() == [b"odd"]
    assert out[1] == (P.MODEL_ERROR, "ValueError: marker value -1")
    assert out[2][0] == P.OK and out[2][1]["label"][1].tolist() == [b"even"]
    assert answer(runtime, [3], [array_tensor("x", x)], ["nope"])[1] == [
        (P.BAD_INPUT, "the model has no output 'nope'; its outputs are double, label")]


def test_custom_outputs_with_the_wrong_rows_fall_back(clf_dir):
    write_code(clf_dir, '''
def infer_fn(inputs, model):
    return {"total": inputs["x"].sum()}
''')
    runtime = load(clf_dir)
    mode, out = answer(runtime, [1, 2], [array_tensor("x", np.array([1.0, 2.0, 3.0]))])
    assert mode == P.ITEMS_MODE  # a scalar cannot be split by rows: each item on its own
    assert [(s, o["total"][1].tolist()) for s, o in out] == [(P.OK, 1.0), (P.OK, 5.0)]
    mode, out = answer(runtime, [3], [array_tensor("x", np.array([1.0, 2.0, 3.0]))])
    assert mode == P.BATCH_MODE and out["total"][1].tolist() == 6.0  # one item: anything goes


def test_custom_predict_fn(clf_dir, classifier, data):
    write_code(clf_dir, '''
import numpy as np

def predict_fn(data, model):
    if isinstance(data, dict):
        return {"sum": data["a"] + data["b"], "names": np.array(sorted(data))}
    if (data[:, 0] > 100).any():
        raise ValueError("too big")
    assert data.dtype == np.float64, data.dtype
    return model.predict(data)
''')
    runtime = load(clf_dir)
    X = data[0][:3]
    mode, out = answer(runtime, [2, 1], [array_tensor("rows", X)])
    assert mode == P.BATCH_MODE and list(out) == ["output-0"]
    assert out["output-0"][0] == "INT64" and out["output-0"][1].tolist() == classifier.predict(X).tolist()
    big = X.copy()
    big[1, 0] = 1000
    mode, out = answer(runtime, [1, 1, 1], [array_tensor("rows", big)])
    assert mode == P.ITEMS_MODE and [s for s, _ in out] == [P.OK, P.MODEL_ERROR, P.OK]
    a, b = np.array([1, 2]), np.array([10, 20])
    mode, out = answer(runtime, [2], [array_tensor("a", a), array_tensor("b", b)], ["sum"])
    assert mode == P.BATCH_MODE and out["sum"][1].tolist() == [11, 22]
    # the first declared output names a bare array result; declared datatypes are applied
    with open(os.path.join(clf_dir, "model-settings.json"), "w") as f:
        json.dump({"inputs": [{"name": "rows", "datatype": "FP64", "shape": [-1, 4]}],
                   "outputs": [{"name": "label", "datatype": "FP32", "shape": [-1]}]}, f)
    runtime = load(clf_dir)
    assert (runtime.platform, runtime.inputs, runtime.outputs) == (
        "python", specs(("rows", "FP64", [-1, 4])), specs(("label", "FP32", [-1])))
    mode, out = answer(runtime, [3], [array_tensor("rows", X.astype(np.float32))])  # cast to the declared FP64
    assert mode == P.BATCH_MODE and list(out) == ["label"]
    assert out["label"][0] == "FP32" and out["label"][1].tolist() == classifier.predict(X).tolist()


def test_custom_model_fn_only_uses_the_framework_path(tmp_path, classifier, data):
    import joblib
    joblib.dump(classifier, tmp_path / "weights.bin")
    write_code(tmp_path, '''
import os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "weights.bin"))
''')
    runtime = load(str(tmp_path))
    assert runtime.platform == "python"
    assert [spec.name for spec in runtime.outputs] == ["predict", "predict_proba"]
    X = data[0][:2]
    out = answer(runtime, [2], [array_tensor("input-0", X)])[1]
    assert out["predict"][1].tolist() == classifier.predict(X).tolist()


def test_custom_model_without_predict_has_no_metadata(clf_dir):
    write_code(clf_dir, "def model_fn(model_dir):\n    return {'weights': 1}\n")
    runtime = load(clf_dir)
    assert (runtime.inputs, runtime.outputs) == ([], [])
    assert answer(runtime, [1], [array_tensor("x", np.zeros((1, 2)))])[1] == [
        (P.MODEL_ERROR, "AttributeError: the model (dict) has no predict method; give code/inference.py an infer_fn "
                        "or predict_fn")]


def test_unencodable_output_is_a_model_error(clf_dir):
    write_code(clf_dir, "import numpy as np\ndef infer_fn(inputs, model):\n    return {'c': np.array([1j])}\n")
    assert answer(load(clf_dir), [1], [array_tensor("x", np.zeros(1))])[1] == [
        (P.MODEL_ERROR, "TypeError: output 'c': numpy dtype complex128 has no Open Inference Protocol datatype")]


# ---------------------------------------------------------------- the class

@pytest.mark.parametrize("hooks, batching", [
    ((), "stacked"), (("infer_fn",), "stacked"), (("input_fn",), "per_item"), (("predict_fn",), "per_item"),
    (("output_fn",), "per_item"), (("predict_batch_fn",), "predict_batch_fn"),
    (("input_fn", "predict_batch_fn", "output_fn"), "predict_batch_fn"), (("transform_fn",), "per_item"),
    (("transform_fn", "predict_batch_fn"), "per_item"),
])
def test_batching_follows_the_hooks(hooks, batching):
    from conftest import Picky
    from serval_worker.runtimes.custom import CustomCodeRuntime
    from serval_worker.runtimes.sklearn import SKLearnRuntime
    framework = SKLearnRuntime(Picky())
    runtime = CustomCodeRuntime({name: print for name in hooks}, framework)
    assert (runtime.name, runtime.platform, runtime.batching, runtime.n_features) == ("custom", "python", batching, 2)
    assert runtime.model is framework.model
