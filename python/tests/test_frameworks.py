"""XGBoost, ONNX and TorchScript models built at test time (skipped when the framework is missing)."""
import json

import numpy as np
import pytest

from conftest import item
from serval_worker.runtimes import load
from serval_worker.protocol import BAD_INPUT, OK


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
    handler = load(str(tmp_path))
    assert (handler.name, handler.batching, handler.n_features) == ("xgboost", "stacked", 4)
    results = handler.handle([item(X[:3].tolist()), item([1.0, 2.0]), item(X[3].tolist(), accept="text/csv")])
    expected = booster.predict(xgboost.DMatrix(X[:4]))
    assert json.loads(results[0][2])["predictions"] == pytest.approx(expected[:3].tolist())
    assert results[1] == (BAD_INPUT, "", b"expected 4 features per row, got 2")
    assert results[2][:2] == (OK, "text/csv") and float(results[2][2]) == pytest.approx(float(expected[3]))


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
    handler = load(str(tmp_path))
    assert (handler.name, handler.batching, handler.n_features) == ("onnx", "stacked", 3)
    rows = [[1, 2, 3], [0, 0, 1]]
    results = handler.handle([item(rows), item([1, 1, 1], accept="text/csv"), item([[1, 2]])])
    assert json.loads(results[0][2])["predictions"] == (np.array(rows, dtype=np.float32) @ W + b).tolist()
    assert results[1] == (OK, "text/csv", b"6.5,8.0\n")
    assert results[2][0] == BAD_INPUT


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates torch.jit
def test_torchscript(tmp_path):
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        linear.bias.fill_(0.5)
    torch.jit.script(linear).save(str(tmp_path / "model.pt"))
    handler = load(str(tmp_path))
    assert (handler.name, handler.batching) == ("torchscript", "stacked")
    results = handler.handle([item([[1, 1, 1]]), item([0, 0, 1])])
    assert [json.loads(r[2])["predictions"] for r in results] == [[[6.5]], [[3.5]]]
