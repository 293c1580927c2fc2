"""The INFER tensor path of every handler, with real models trained at test time."""
import contextlib
import json
import os
import sys
import types

import numpy as np
import pytest

from conftest import N_FEATURES, Picky, configured, write_code
from serval_worker import protocol as P
from serval_worker import server
from serval_worker.runtimes import load
from serval_worker.runtimes.sklearn import SKLearnRuntime
from serval_worker.runtimes.torchscript import TorchScriptRuntime
from serval_worker.signature import TensorSpec
from wire import array_tensor, decode_infer_result, encode_tensor, infer_payload


def answer(handler, rows, tensors, outputs=()):
    """Run an INFER batch through the handler and the worker's encoder; returns Serval's view of the answer:
    ``(0, {name: (datatype, array)})`` or ``(1, [(status, outputs or message), ...])``."""
    frame = server.answer_infer(handler, P.decode_infer(infer_payload(7, rows, tensors, outputs)))
    batch_id, mode, result = decode_infer_result(frame[6:])
    assert batch_id == 7
    return mode, result


def specs(*triples):
    return [TensorSpec(name, datatype, tuple(shape)) for name, datatype, shape in triples]


def save(tmp_path, model, settings=None):
    import joblib
    joblib.dump(model, tmp_path / "model.joblib")
    if settings is not None:
        (tmp_path / "model-settings.json").write_text(json.dumps(settings))
    return str(tmp_path)


# ---------------------------------------------------------------- scikit-learn

def test_classifier_metadata_and_ready(clf_dir):
    handler = load(clf_dir)
    assert handler.platform == "sklearn"
    assert handler.inputs == specs(("input-0", "FP32", [-1, N_FEATURES]))
    assert handler.outputs == specs(("predict", "INT64", [-1]), ("predict_proba", "FP64", [-1, 2]))
    ready = server.ready_info(handler)
    assert (ready["protocol"], ready["handler"], ready["batching"], ready["n_features"]) == (2, "sklearn", "stacked", 4)
    assert ready["platform"] == "sklearn"
    assert ready["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
    assert ready["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    json.dumps(ready)


def test_regressor_metadata(tmp_path, data, reg_dir):
    from sklearn.linear_model import Ridge
    handler = load(reg_dir)
    assert handler.outputs == specs(("predict", "FP64", [-1]))
    X = data[0]
    two = load(save(tmp_path, Ridge().fit(X, np.c_[X[:, 0], X[:, 1]])))
    assert two.outputs == specs(("predict", "FP64", [-1, 2]))


def test_batch_is_one_call_and_matches_the_model(clf_dir, classifier, data):
    handler = load(clf_dir)
    calls = []
    for name, fn in list(handler.methods.items()):
        handler.methods[name] = lambda X, fn=fn, name=name: calls.append((name, X.shape)) or fn(X)
    X = data[0][:6].astype(np.float32)
    mode, out = answer(handler, [1, 2, 3], [array_tensor("input-0", X)])
    assert mode == P.BATCH_MODE
    assert calls == [("predict", (6, 4)), ("predict_proba", (6, 4))]
    assert out["predict"][0] == "INT64" and out["predict"][1].tolist() == classifier.predict(X).tolist()
    assert out["predict_proba"][0] == "FP64"
    np.testing.assert_array_equal(out["predict_proba"][1], classifier.predict_proba(X))


def test_requested_outputs(clf_dir, classifier, data):
    handler = load(clf_dir)
    X = data[0][:3].astype(np.float32)
    mode, out = answer(handler, [3], [array_tensor("input-0", X)], ["predict_proba"])
    assert mode == P.BATCH_MODE and list(out) == ["predict_proba"]
    np.testing.assert_array_equal(out["predict_proba"][1], classifier.predict_proba(X))
    mode, out = answer(handler, [1, 2], [array_tensor("input-0", X)], ["predict_proba", "predict"])
    assert mode == P.BATCH_MODE and list(out) == ["predict_proba", "predict"]
    mode, out = answer(handler, [1, 2], [array_tensor("input-0", X)], ["label"])
    assert mode == P.ITEMS_MODE
    assert out == [(P.BAD_INPUT, "the model has no output 'label'; its outputs are predict, predict_proba")] * 2


def test_string_labels_are_bytes(tmp_path, data):
    from sklearn.tree import DecisionTreeClassifier
    X, y = data
    labels = np.array(["no", "s\u00ed"])[y]
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, labels)
    handler = load(save(tmp_path, model))
    assert handler.outputs == specs(("predict", "BYTES", [-1]), ("predict_proba", "FP64", [-1, 2]))
    mode, out = answer(handler, [2, 3], [array_tensor("input-0", X[:5])], ["predict"])
    assert mode == P.BATCH_MODE and out["predict"][0] == "BYTES"
    assert out["predict"][1].tolist() == [s.encode() for s in model.predict(X[:5])]


def test_inputs_as_columns(tmp_path, classifier, data):
    X = data[0][:5]
    handler = load(save(tmp_path, classifier))
    expected = classifier.predict(X).tolist()
    columns = [array_tensor("f%d" % i, X[:, i].astype(np.float32)) for i in range(4)]
    mode, out = answer(handler, [2, 3], columns, ["predict"])
    assert mode == P.BATCH_MODE and out["predict"][1].tolist() == expected
    mixed = [array_tensor("a", X[:, :2]), array_tensor("b", X[:, 2]), array_tensor("c", X[:, 3:])]
    assert answer(handler, [5], mixed, ["predict"])[1]["predict"][1].tolist() == expected
    mode, out = answer(handler, [5], columns[:3], ["predict"])
    assert out == [(P.BAD_INPUT, "the 3 inputs have 3 features per row in all (f0: 1, f1: 1, f2: 1); "
                                 "the model expects 4")]
    # with inputs declared in model-settings.json, columns follow the declared order whatever the request's
    (tmp_path / "model-settings.json").write_text(json.dumps(
        {"inputs": [{"name": "f%d" % i, "datatype": "FP32", "shape": [-1]} for i in range(4)]}))
    handler = load(str(tmp_path))
    assert [spec.name for spec in handler.inputs] == ["f0", "f1", "f2", "f3"]
    assert answer(handler, [5], columns[::-1], ["predict"])[1]["predict"][1].tolist() == expected


@pytest.mark.parametrize("datatype", ["FP64", "FP16", "INT64", "UINT8", "BOOL", "INT8"])
def test_numeric_inputs_are_cast(clf_dir, classifier, data, datatype):
    X = np.abs(data[0][:4]).round()
    wire = {"FP64": X, "FP16": X.astype(np.float16), "INT64": X.astype(np.int64), "UINT8": X.astype(np.uint8),
            "BOOL": X > 0, "INT8": X.astype(np.int8)}[datatype]
    mode, out = answer(load(clf_dir), [4], [array_tensor("input-0", wire, datatype)], ["predict"])
    assert mode == P.BATCH_MODE
    assert out["predict"][1].tolist() == classifier.predict(wire.astype(np.float64)).tolist()


def test_bad_inputs(clf_dir, tmp_path):
    handler = load(clf_dir)
    X = np.zeros((3, 19), np.float32)
    assert answer(handler, [3], [array_tensor("input-0", X)]) == (
        P.ITEMS_MODE, [(P.BAD_INPUT, "input-0 has 19 features per row; the model expects 4")])
    assert answer(handler, [1, 2], [encode_tensor("input-0", "BYTES", [3], [b"a", b"b", b"c"])])[1] == [
        (P.BAD_INPUT, "input 'input-0' is BYTES; the model takes numbers (FP32 or another numeric datatype)")] * 2
    assert answer(handler, [2], [array_tensor("x", np.zeros((2, 2, 2)))])[1] == [
        (P.BAD_INPUT, "input 'x' has shape [2, 2, 2]; send [N, k] (N rows of k features) or [N] (one feature)")]
    assert answer(handler, [0], [array_tensor("x", np.zeros(()))])[1][0][0] == P.BAD_INPUT
    assert answer(handler, [2], [array_tensor("a", np.zeros((2, 2))), array_tensor("b", np.zeros((3, 2)))])[1] == [
        (P.BAD_INPUT, "inputs 'a' and 'b' have different numbers of rows (2 and 3)")]
    assert answer(handler, [0], [array_tensor("input-0", np.zeros((0, 4)))])[1] == [
        (P.BAD_INPUT, "the input has no values")]
    assert answer(handler, [0], [])[1][0][1].startswith("the request has no inputs")


def test_one_feature_model_takes_a_vector(tmp_path):
    from sklearn.linear_model import LinearRegression
    model = LinearRegression().fit(np.arange(10.0).reshape(-1, 1), 2 * np.arange(10.0) + 1)
    handler = load(save(tmp_path, model))
    assert handler.inputs == specs(("input-0", "FP32", [-1, 1]))
    mode, out = answer(handler, [2, 1], [array_tensor("input-0", np.array([1.0, 2.0, 3.0], np.float32))])
    assert mode == P.BATCH_MODE and out["predict"][1] == pytest.approx([3.0, 5.0, 7.0])



def test_failing_batch_falls_back_to_items():
    handler = configured(SKLearnRuntime(Picky()))
    X = np.array([[1, 2], [-1, 2], [3, 4], [5, 6]], np.float32)
    mode, out = answer(handler, [1, 1, 2], [array_tensor("input-0", X)])
    assert mode == P.ITEMS_MODE
    assert out[0][0] == P.OK and out[0][1]["predict"][1].tolist() == [3.0]
    assert out[1] == (P.MODEL_ERROR, "ValueError: negative input")
    assert out[2][0] == P.OK and out[2][1]["predict"][1].tolist() == [7.0, 11.0]
    assert answer(handler, [1], [array_tensor("input-0", X[1:2])]) == (
        P.ITEMS_MODE, [(P.MODEL_ERROR, "ValueError: negative input")])


# ---------------------------------------------------------------- model-settings.json

def test_model_settings_declarations_win(tmp_path, classifier, data):
    settings = {"name": "clf", "implementation": "mlserver_sklearn.SKLearnModel", "platform": "sklearn-1.5",
                "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 4], "parameters": {}}],
                "outputs": [{"name": "predict", "datatype": "FP32", "shape": [-1]}]}
    handler = load(save(tmp_path, classifier, settings))
    assert handler.platform == "sklearn-1.5"
    assert handler.inputs == specs(("features", "FP64", [-1, 4]))
    assert handler.outputs == specs(("predict", "FP32", [-1]))
    X = data[0][:3]
    mode, out = answer(handler, [3], [array_tensor("features", X)])
    assert mode == P.BATCH_MODE and list(out) == ["predict"]  # the declared outputs are the default
    assert out["predict"][0] == "FP32" and out["predict"][1].tolist() == classifier.predict(X).tolist()
    mode, out = answer(handler, [3], [array_tensor("features", X)], ["predict_proba"])  # still on request
    assert mode == P.BATCH_MODE and out["predict_proba"][0] == "FP64"
    (tmp_path / "model-settings.json").write_text(json.dumps({"outputs": [
        {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 2]}]}))
    handler = load(str(tmp_path))
    assert handler.inputs == specs(("input-0", "FP32", [-1, 4]))  # not declared: inferred
    assert [spec.name for spec in handler.outputs] == ["predict_proba"]


@pytest.mark.parametrize("text, match", [
    ("{", "model-settings.json is not valid UTF-8 JSON"),
    ("[]", "must hold a JSON object"),
    ('{"inputs": {}}', "'inputs' must be a list"),
    ('{"inputs": [3]}', r"inputs\[0\] must be an object"),
    ('{"outputs": [{"datatype": "FP32", "shape": [-1]}]}', r"outputs\[0\].name must be a non-empty string"),
    ('{"inputs": [{"name": "x", "datatype": "FLOAT32", "shape": [-1]}]}',
     r'inputs\[0\].datatype "FLOAT32" is not an Open Inference Protocol datatype \(BOOL, UINT8'),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-2]}]}', r"shape must be a list of at most 32 integers"),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1.5]}]}', "shape must be"),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [true]}]}', "shape must be"),
    ('{"inputs": [{"name": "x", "datatype": "FP32"}]}', "shape must be"),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": []}, {"name": "x", "datatype": "FP32", "shape": []}]}',
     "two inputs are named 'x'"),
    ('{"platform": 3}', "platform must be a string"),
    ('{"outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}]}',
     "declares output 'label', but this model only produces predict, predict_proba"),
])
def test_broken_model_settings_fail_the_load(tmp_path, classifier, text, match):
    save(tmp_path, classifier)
    (tmp_path / "model-settings.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        load(str(tmp_path))


# ---------------------------------------------------------------- XGBoost

@pytest.mark.parametrize("objective, classes", [("binary:logistic", None), ("multi:softprob", 3)])
def test_xgboost(tmp_path, objective, classes):
    xgboost = pytest.importorskip("xgboost")
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=150, n_features=5, n_informative=4, n_redundant=0,
                               n_classes=classes or 2, random_state=1)
    params = {"objective": objective, "max_depth": 2, "nthread": 1}
    if classes:
        params["num_class"] = classes
    booster = xgboost.train(params, xgboost.DMatrix(X, label=y), num_boost_round=4)
    booster.save_model(str(tmp_path / "model.json"))
    handler = load(str(tmp_path))
    assert handler.platform == "xgboost"
    assert handler.inputs == specs(("input-0", "FP32", [-1, 5]))
    assert handler.outputs == specs(("predict", "FP32", [-1, classes] if classes else [-1]))
    X = X[:7].astype(np.float32)
    mode, out = answer(handler, [3, 4], [array_tensor("input-0", X)])
    assert mode == P.BATCH_MODE and out["predict"][0] == "FP32"
    np.testing.assert_array_equal(out["predict"][1], booster.predict(xgboost.DMatrix(X)))
    assert answer(handler, [7], [array_tensor("input-0", X[:, :4])])[1] == [
        (P.BAD_INPUT, "input-0 has 4 features per row; the model expects 5")]


# ---------------------------------------------------------------- ONNX

def onnx_linear(path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    W = np.arange(6, dtype=np.float32).reshape(3, 2)
    b = np.array([0.5, -1.0], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"]),
         helper.make_node("ReduceSum", ["Y"], ["S"], keepdims=0, axes=[1])],
        "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("S", TensorProto.FLOAT, ["N"])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path / "model.onnx"))
    return W, b


def test_onnx_tensor_path(tmp_path):
    W, b = onnx_linear(tmp_path)
    handler = load(str(tmp_path))
    assert handler.platform == "onnxruntime"
    assert handler.inputs == specs(("X", "FP32", [-1, 3]))
    assert handler.outputs == specs(("Y", "FP32", [-1, 2]), ("S", "FP32", [-1]))
    X = np.array([[1, 2, 3], [0, 0, 1], [1, 1, 1]])
    mode, out = answer(handler, [1, 2], [array_tensor("X", X.astype(np.float64))])  # FP64 is cast to FP32
    assert mode == P.BATCH_MODE and list(out) == ["Y", "S"]
    np.testing.assert_allclose(out["Y"][1], X.astype(np.float32) @ W + b)
    mode, out = answer(handler, [3], [array_tensor("X", X.astype(np.int32))], ["S"])
    assert list(out) == ["S"] and out["S"][1].tolist() == pytest.approx((X @ W + b).sum(axis=1).tolist())
    assert answer(handler, [3], [array_tensor("X", X[:, :2])])[1] == [
        (P.BAD_INPUT, "input 'X' has shape [3, 2]; the model takes [-1, 3]")]
    assert answer(handler, [3], [array_tensor("input-0", X)])[1] == [
        (P.BAD_INPUT, "the model has no input 'input-0'; its inputs are X")]
    assert answer(handler, [3], [])[1] == [(P.BAD_INPUT, "the request lacks input 'X'; the model takes X")]
    assert answer(handler, [3], [array_tensor("X", X)], ["Z"])[1] == [
        (P.BAD_INPUT, "the model has no output 'Z'; its outputs are Y, S")]
    (tmp_path / "model-settings.json").write_text(json.dumps(
        {"outputs": [{"name": "T", "datatype": "FP32", "shape": []}]}))
    with pytest.raises(ValueError, match="declares output 'T', but the ONNX model's tensor outputs are Y, S"):
        load(str(tmp_path))


def test_onnx_classifier_with_zipmap(tmp_path):
    """What skl2onnx writes for a classifier: a label tensor and a sequence of maps, which OIP cannot carry."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    probabilities = helper.make_sequence_type_proto(helper.make_map_type_proto(
        TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))
    graph = helper.make_graph(
        [helper.make_node("LinearClassifier", ["float_input"], ["output_label", "probabilities"], domain="ai.onnx.ml",
                          coefficients=[1.0, -1.0, -1.0, 1.0], intercepts=[0.0, 0.0],
                          classlabels_strings=["cat", "dog"], post_transform="SOFTMAX"),
         helper.make_node("ZipMap", ["probabilities"], ["output_probability"], domain="ai.onnx.ml",
                          classlabels_strings=["cat", "dog"])],
        "clf", [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("output_label", TensorProto.STRING, [None]),
         helper.make_value_info("output_probability", probabilities)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "model.onnx"))
    handler = load(str(tmp_path))
    assert handler.outputs == specs(("output_label", "BYTES", [-1]))
    mode, out = answer(handler, [1, 1], [array_tensor("float_input", np.array([[2.0, 0.0], [0.0, 2.0]], np.float32))])
    assert mode == P.BATCH_MODE and list(out) == ["output_label"]
    assert out["output_label"][0] == "BYTES" and out["output_label"][1].tolist() == [b"cat", b"dog"]
    assert answer(handler, [1], [array_tensor("float_input", np.zeros((1, 2), np.float32))],
                  ["output_probability"])[1][0][0] == P.BAD_INPUT


# ---------------------------------------------------------------- TorchScript (a stand-in torch module)

class FakeTensor:
    def __init__(self, array):
        self.array, self.dtype = array, array.dtype

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.array


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    torch.Tensor, torch.from_numpy, torch.no_grad = FakeTensor, FakeTensor, contextlib.nullcontext
    torch.bfloat16 = object()
    torch.nn = types.SimpleNamespace(Module=type("Module", (), {}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


def test_torchscript_tensor_path(fake_torch):
    seen = []

    class Module(fake_torch.nn.Module):
        def __call__(self, *tensors):
            seen.append([(t.array.dtype, t.array.flags.writeable) for t in tensors])
            return FakeTensor(tensors[0].array * 2), FakeTensor(tensors[0].array.argmax(axis=1))

    handler = configured(TorchScriptRuntime(Module()))
    assert handler.platform == "pytorch_torchscript"
    assert handler.inputs == [] and handler.outputs == []
    X = np.arange(6).reshape(3, 2)
    mode, out = answer(handler, [1, 2], [array_tensor("input__0", X)])
    assert seen == [[(np.float32, True)]]
    assert mode == P.BATCH_MODE and list(out) == ["output__0", "output__1"]
    assert out["output__0"][0] == "FP32" and out["output__0"][1].tolist() == (X * 2.0).tolist()
    assert out["output__1"][0] == "INT64" and out["output__1"][1].tolist() == [1, 1, 1]
    mode, out = answer(handler, [3], [array_tensor("input__0", X)], ["output__1"])
    assert mode == P.BATCH_MODE and list(out) == ["output__1"]
    # output__0's FP32 is a guess: what the module returns is sent as it is
    int_module = type("Int", (fake_torch.nn.Module,), {"__call__": lambda self, x: FakeTensor(x.array.astype(np.int32))})
    handler = configured(TorchScriptRuntime(int_module()))
    assert answer(handler, [3], [array_tensor("input__0", X)])[1]["output__0"][0] == "INT32"
    # declared inputs and outputs: datatypes to cast the inputs to, and names for the outputs
    handler = configured(TorchScriptRuntime(Module()), {
        "inputs": specs(("ids", "INT64", [-1, 2])), "outputs": specs(("doubled", "FP64", [-1, 2]))})
    mode, out = answer(handler, [3], [array_tensor("ids", X.astype(np.float32))])
    assert seen[-1] == [(np.int64, True)]
    assert list(out) == ["doubled", "output__1"] and out["doubled"][0] == "FP64"


# ---------------------------------------------------------------- custom code

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
    handler = load(clf_dir)
    assert (handler.name, handler.platform, handler.inputs, handler.outputs) == ("custom", "python", [], [])
    assert handler.batching == "stacked"  # infer_fn does not change how INVOKE batches
    import inference
    x = np.array([[1, 2], [4, 5], [6, 7]], np.int32)
    mode, out = answer(handler, [1, 2], [array_tensor("x", x)])
    assert inference.CALLS == [{"x": (3, 2)}]  # the whole batch, once
    assert mode == P.BATCH_MODE
    assert out["double"][0] == "INT32" and out["double"][1].tolist() == (x * 2).tolist()
    assert out["label"][0] == "BYTES" and out["label"][1].tolist() == [b"odd", b"even", b"even"]
    bad = np.array([[1, 2], [-1, 5], [6, 7]], np.int32)
    mode, out = answer(handler, [1, 1, 1], [array_tensor("x", bad)], ["label"])
    assert mode == P.ITEMS_MODE
    assert inference.CALLS[1:] == [{"x": (3, 2)}, {"x": (1, 2)}, {"x": (1, 2)}, {"x": (1, 2)}]
    assert out[0][0] == P.OK and list(out[0][1]) == ["label"] and out[0][1]["label"][1].tolist() == [b"odd"]
    assert out[1] == (P.MODEL_ERROR, "ValueError: marker value -1")
    assert out[2][0] == P.OK and out[2][1]["label"][1].tolist() == [b"even"]
    assert answer(handler, [3], [array_tensor("x", x)], ["nope"])[1] == [
        (P.BAD_INPUT, "the model has no output 'nope'; its outputs are double, label")]


def test_custom_outputs_with_the_wrong_rows_fall_back(clf_dir):
    write_code(clf_dir, '''
def infer_fn(inputs, model):
    return {"total": inputs["x"].sum()}
''')
    handler = load(clf_dir)
    mode, out = answer(handler, [1, 2], [array_tensor("x", np.array([1.0, 2.0, 3.0]))])
    assert mode == P.ITEMS_MODE  # a scalar cannot be split by rows: each item on its own
    assert [(s, o["total"][1].tolist()) for s, o in out] == [(P.OK, 1.0), (P.OK, 5.0)]
    mode, out = answer(handler, [3], [array_tensor("x", np.array([1.0, 2.0, 3.0]))])
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
    handler = load(clf_dir)
    X = data[0][:3]
    mode, out = answer(handler, [2, 1], [array_tensor("rows", X)])
    assert mode == P.BATCH_MODE and list(out) == ["output-0"]
    assert out["output-0"][0] == "INT64" and out["output-0"][1].tolist() == classifier.predict(X).tolist()
    big = X.copy()
    big[1, 0] = 1000
    mode, out = answer(handler, [1, 1, 1], [array_tensor("rows", big)])
    assert mode == P.ITEMS_MODE and [s for s, _ in out] == [P.OK, P.MODEL_ERROR, P.OK]
    a, b = np.array([1, 2]), np.array([10, 20])
    mode, out = answer(handler, [2], [array_tensor("a", a), array_tensor("b", b)], ["sum"])
    assert mode == P.BATCH_MODE and out["sum"][1].tolist() == [11, 22]
    # the first declared output names a bare array result; declared datatypes are applied
    with open(os.path.join(clf_dir, "model-settings.json"), "w") as f:
        json.dump({"inputs": [{"name": "rows", "datatype": "FP64", "shape": [-1, 4]}],
                   "outputs": [{"name": "label", "datatype": "FP32", "shape": [-1]}]}, f)
    handler = load(clf_dir)
    assert (handler.platform, handler.inputs, handler.outputs) == (
        "python", specs(("rows", "FP64", [-1, 4])), specs(("label", "FP32", [-1])))
    mode, out = answer(handler, [3], [array_tensor("rows", X.astype(np.float32))])  # cast to the declared FP64
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
    handler = load(str(tmp_path))
    assert handler.platform == "python"
    assert [spec.name for spec in handler.outputs] == ["predict", "predict_proba"]
    X = data[0][:2]
    out = answer(handler, [2], [array_tensor("input-0", X)])[1]
    assert out["predict"][1].tolist() == classifier.predict(X).tolist()


def test_custom_model_without_predict_has_no_metadata(clf_dir):
    write_code(clf_dir, "def model_fn(model_dir):\n    return {'weights': 1}\n")
    handler = load(clf_dir)
    assert (handler.inputs, handler.outputs) == ([], [])
    assert answer(handler, [1], [array_tensor("x", np.zeros((1, 2)))])[1] == [
        (P.MODEL_ERROR, "AttributeError: the model (dict) has no predict method; give code/inference.py an infer_fn "
                        "or predict_fn")]


def test_unencodable_output_is_a_model_error(clf_dir):
    write_code(clf_dir, "import numpy as np\ndef infer_fn(inputs, model):\n    return {'c': np.array([1j])}\n")
    assert answer(load(clf_dir), [1], [array_tensor("x", np.zeros(1))])[1] == [
        (P.MODEL_ERROR, "TypeError: output 'c': numpy dtype complex128 has no Open Inference Protocol datatype")]


def test_oversized_infer_results_are_split_then_replaced(monkeypatch, clf_dir):
    write_code(clf_dir, "def infer_fn(inputs, model):\n    return {'y': inputs['x'] * 1.0}\n")
    handler = load(clf_dir)
    monkeypatch.setattr(P, "MAX_FRAME", 700)
    x = np.zeros((100, 1))
    x[:10] = 1
    mode, out = answer(handler, [10, 30, 60], [array_tensor("x", x)])
    assert mode == P.ITEMS_MODE
    assert out[0][0] == P.OK and out[0][1]["y"][1].ravel().tolist() == [1.0] * 10
    assert out[1][0] == P.OK and out[1][1]["y"][1].shape == (30, 1)
    size = 2 + len("y") + 2 + len("FP64") + 1 + 2 * 8 + 8 + 60 * 8
    assert out[2] == (P.MODEL_ERROR, "the response of %d bytes does not fit in a worker frame" % size)


class Labeller:
    """A model without n_features_in_: its predict cannot be probed, so READY's FP64 is a guess."""

    def predict(self, X):
        return np.array(["row of %d" % len(row) for row in X])


def test_guessed_output_datatype_is_not_forced():
    handler = configured(SKLearnRuntime(Labeller()))
    assert handler.inputs == specs(("input-0", "FP32", [-1, -1]))
    assert handler.outputs == specs(("predict", "FP64", [-1]))
    mode, out = answer(handler, [1, 1], [array_tensor("input-0", np.zeros((2, 3)))])
    assert mode == P.BATCH_MODE and out["predict"][0] == "BYTES"
    assert out["predict"][1].tolist() == [b"row of 3", b"row of 3"]
