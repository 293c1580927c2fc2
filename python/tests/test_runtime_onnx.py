"""OnnxRuntime with ONNX graphs built at test time (skipped without onnx and onnxruntime): INVOKE and INFER."""
import json

import numpy as np
import pytest

from conftest import answer, item, specs
from serval_worker import protocol as P
from serval_worker.protocol import BAD_INPUT, OK
from serval_worker.runtimes import load
from wire import array_tensor


def test_onnx_linear_model(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    W = np.arange(6, dtype=np.float32).reshape(3, 2)
    b = np.array([0.5, -1.0], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])],
        "linear", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "model.onnx"))
    runtime = load(str(tmp_path))
    assert (runtime.name, runtime.batching, runtime.n_features) == ("onnx", "stacked", 3)
    rows = [[1, 2, 3], [0, 0, 1]]
    results = runtime.handle([item(rows), item([1, 1, 1], accept="text/csv"), item([[1, 2]])])
    assert json.loads(results[0][2])["predictions"] == (np.array(rows, dtype=np.float32) @ W + b).tolist()
    assert results[1] == (OK, "text/csv", b"6.5,8.0\n")
    assert results[2][0] == BAD_INPUT


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
    runtime = load(str(tmp_path))
    assert runtime.platform == "onnxruntime"
    assert runtime.inputs == specs(("X", "FP32", [-1, 3]))
    assert runtime.outputs == specs(("Y", "FP32", [-1, 2]), ("S", "FP32", [-1]))
    X = np.array([[1, 2, 3], [0, 0, 1], [1, 1, 1]])
    mode, out = answer(runtime, [1, 2], [array_tensor("X", X.astype(np.float64))])  # FP64 is cast to FP32
    assert mode == P.BATCH_MODE and list(out) == ["Y", "S"]
    np.testing.assert_allclose(out["Y"][1], X.astype(np.float32) @ W + b)
    mode, out = answer(runtime, [3], [array_tensor("X", X.astype(np.int32))], ["S"])
    assert list(out) == ["S"] and out["S"][1].tolist() == pytest.approx((X @ W + b).sum(axis=1).tolist())
    assert answer(runtime, [3], [array_tensor("X", X[:, :2])])[1] == [
        (P.BAD_INPUT, "input 'X' has shape [3, 2]; the model takes [-1, 3]")]
    assert answer(runtime, [3], [array_tensor("input-0", X)])[1] == [
        (P.BAD_INPUT, "the model has no input 'input-0'; its inputs are X")]
    assert answer(runtime, [3], [])[1] == [(P.BAD_INPUT, "the request lacks input 'X'; the model takes X")]
    assert answer(runtime, [3], [array_tensor("X", X)], ["Z"])[1] == [
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
    runtime = load(str(tmp_path))
    assert runtime.outputs == specs(("output_label", "BYTES", [-1]))
    mode, out = answer(runtime, [1, 1], [array_tensor("float_input", np.array([[2.0, 0.0], [0.0, 2.0]], np.float32))])
    assert mode == P.BATCH_MODE and list(out) == ["output_label"]
    assert out["output_label"][0] == "BYTES" and out["output_label"][1].tolist() == [b"cat", b"dog"]
    assert answer(runtime, [1], [array_tensor("float_input", np.zeros((1, 2), np.float32))],
                  ["output_probability"])[1][0][0] == P.BAD_INPUT


@pytest.mark.parametrize("elem, dtype", [("DOUBLE", np.float64), ("INT64", np.int64), ("FLOAT", np.float32)])
def test_invoke_rows_take_the_first_inputs_type(tmp_path, elem, dtype):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    from serval_worker.runtimes.onnx import OnnxRuntime
    kind = getattr(TensorProto, elem)
    graph = helper.make_graph([helper.make_node("Add", ["X", "X"], ["Y"])], "double",
                              [helper.make_tensor_value_info("X", kind, ["N", 2])],
                              [helper.make_tensor_value_info("Y", kind, ["N", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "model.onnx"))
    runtime = load(str(tmp_path))
    assert type(runtime) is OnnxRuntime and OnnxRuntime.claims(runtime.model)
    prediction = runtime.predict(np.array([[1.5, 2.0]]))
    assert prediction.dtype == dtype and prediction.tolist() == (np.array([[1.5, 2.0]]).astype(dtype) * 2).tolist()
    assert runtime.handle([item([[1, 2], [3, 4]])])[0] == (OK, "application/json", b'{"predictions": [[2%s, 4%s], '
                                                           b'[6%s, 8%s]]}' % ((b"" if elem == "INT64" else b".0",) * 4))
