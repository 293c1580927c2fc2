"""TorchScriptRuntime: a real TorchScript module (skipped without torch), and a stand-in torch for the tensor path."""
import contextlib
import json
import sys
import types

import numpy as np
import pytest

from conftest import answer, configured, item, specs
from serval_worker import protocol as P
from serval_worker.runtimes import load
from serval_worker.runtimes.torchscript import TorchScriptRuntime
from wire import array_tensor


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 deprecates torch.jit
def test_torchscript(tmp_path):
    torch = pytest.importorskip("torch")
    linear = torch.nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        linear.bias.fill_(0.5)
    torch.jit.script(linear).save(str(tmp_path / "model.pt"))
    runtime = load(str(tmp_path))
    assert (runtime.name, runtime.batching) == ("torchscript", "stacked")
    results = runtime.handle([item([[1, 1, 1]]), item([0, 0, 1])])
    assert [json.loads(r[2])["predictions"] for r in results] == [[[6.5]], [[3.5]]]


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

    runtime = configured(TorchScriptRuntime(Module()))
    assert runtime.platform == "pytorch_torchscript"
    assert runtime.inputs == [] and runtime.outputs == []
    X = np.arange(6).reshape(3, 2)
    mode, out = answer(runtime, [1, 2], [array_tensor("input__0", X)])
    assert seen == [[(np.float32, True)]]
    assert mode == P.BATCH_MODE and list(out) == ["output__0", "output__1"]
    assert out["output__0"][0] == "FP32" and out["output__0"][1].tolist() == (X * 2.0).tolist()
    assert out["output__1"][0] == "INT64" and out["output__1"][1].tolist() == [1, 1, 1]
    mode, out = answer(runtime, [3], [array_tensor("input__0", X)], ["output__1"])
    assert mode == P.BATCH_MODE and list(out) == ["output__1"]
    # output__0's FP32 is a guess: what the module returns is sent as it is
    to_int = type("Int", (fake_torch.nn.Module,), {"__call__": lambda self, x: FakeTensor(x.array.astype(np.int32))})
    runtime = configured(TorchScriptRuntime(to_int()))
    assert answer(runtime, [3], [array_tensor("input__0", X)])[1]["output__0"][0] == "INT32"
    # declared inputs and outputs: datatypes to cast the inputs to, and names for the outputs
    runtime = configured(TorchScriptRuntime(Module()), {
        "inputs": specs(("ids", "INT64", [-1, 2])), "outputs": specs(("doubled", "FP64", [-1, 2]))})
    mode, out = answer(runtime, [3], [array_tensor("ids", X.astype(np.float32))])
    assert seen[-1] == [(np.int64, True)]
    assert list(out) == ["doubled", "output__1"] and out["doubled"][0] == "FP64"


def test_invoke_with_a_stand_in_torch(fake_torch, monkeypatch):
    seen = []

    class Doubler(fake_torch.nn.Module):
        def __call__(self, x):
            seen.append((x.array.dtype, x.array.flags.c_contiguous))
            return FakeTensor(x.array * 2)

    runtime = TorchScriptRuntime(Doubler())
    assert (runtime.name, runtime.batching, runtime.n_features) == ("torchscript", "stacked", None)
    results = runtime.handle([item([[1, 2]]), item([[3, 4], [5, 6]], accept="text/csv")])
    assert seen == [(np.float32, True)]  # both items' rows in one call
    assert results == [(P.OK, "application/json", b'{"predictions": [[2.0, 4.0]]}'),
                       (P.OK, "text/csv", b"6.0,8.0\n10.0,12.0\n")]
    assert TorchScriptRuntime.claims(Doubler()) and not TorchScriptRuntime.claims(object())
    monkeypatch.delitem(sys.modules, "torch")
    assert not TorchScriptRuntime.claims(Doubler())  # without torch imported, nothing is a torch module
