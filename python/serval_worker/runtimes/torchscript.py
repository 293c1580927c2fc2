"""TorchScript modules, from ``model.pt``, run by PyTorch on the CPU."""
import sys

import numpy as np

from ..errors import BadInput
from ..protocol import WIRE_DTYPES
from .base import Runtime, declared_order, select_outputs


class TorchScriptRuntime(Runtime):
    """A ``torch.nn.Module``: INVOKE's rows in as one float32 tensor; on INFER the inputs (``input__0``, ... in request
    order, or declared order) as float32 tensors (or their declared datatypes), the module's outputs as ``output__0``,
    ``output__1``, ... (or their declared names)."""

    name = "torchscript"
    platform = "pytorch_torchscript"
    files = ("model.pt",)
    guessed = frozenset({"output__0"})  # the module's output type is unknown until it runs

    @staticmethod
    def claims(model):
        """Whether ``model`` is a torch module (never true unless something imported torch already)."""
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(model, torch.nn.Module)

    @staticmethod
    def load_file(path):
        """Load a TorchScript module on the CPU, in evaluation mode."""
        import torch
        return torch.jit.load(path, map_location="cpu").eval()

    def __init__(self, module):
        super().__init__(module)
        self._in_specs = self._out_names = None  # declared in model-settings.json

    def predict(self, data):
        import torch
        if not isinstance(data, torch.Tensor):
            data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        with torch.no_grad():
            out = self.model(data)
        return out.numpy() if isinstance(out, torch.Tensor) else out

    def signature(self):
        # A TorchScript module does not say what it takes (rank, dtype) or returns: declare nothing, so that
        # Serval checks nothing it cannot know; model-settings.json can declare both.
        return [], []

    def declare(self, inputs, outputs):
        if inputs is not None:
            self._in_specs = inputs
        if outputs is not None:
            self._out_names = [spec.name for spec in outputs]

    def prepare(self, inputs, requested):
        import torch
        specs = self._in_specs
        if specs:
            inputs = declared_order(inputs, {spec.name: i for i, spec in enumerate(specs)})
            by_name = {spec.name: spec for spec in specs}
        tensors = []
        for i, t in enumerate(inputs):
            if t.datatype == "BYTES":
                raise BadInput("input %r is BYTES; the model takes numbers" % t.name)
            spec = (by_name.get(t.name) or (specs[i] if i < len(specs) else None)) if specs else None
            datatype = spec.datatype if spec is not None else "FP32"
            wire = WIRE_DTYPES.get(datatype, np.dtype(np.float32))
            dtype = np.float32 if datatype == "BF16" else wire.newbyteorder("=")
            tensor = torch.from_numpy(np.array(t.array, dtype=dtype))  # a writable copy torch may keep
            tensors.append(tensor.bfloat16() if datatype == "BF16" else tensor)
        return requested, tensors

    def run(self, state):
        import torch
        requested, tensors = state
        with torch.no_grad():
            out = self.model(*tensors)
        if isinstance(out, dict):
            named = list(out.items())
        else:
            values = list(out) if isinstance(out, (tuple, list)) else [out]
            names = self._out_names or []
            named = [(names[i] if i < len(names) else "output__%d" % i, v) for i, v in enumerate(values)]
        converted = []
        for name, value in named:
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
                value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
            converted.append((str(name), value))
        return select_outputs(converted, requested)
