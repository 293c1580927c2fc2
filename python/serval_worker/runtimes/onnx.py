"""ONNX models, from ``model.onnx``, run by ONNX Runtime on the CPU."""
import numpy as np

from ..errors import BadInput
from ..signature import MODEL_SETTINGS, TensorSpec
from .base import Runtime, name_list

# ONNX element types: (OIP datatype, numpy dtype to cast inputs to)
_ONNX_TYPES = {"tensor(float)": ("FP32", np.float32), "tensor(double)": ("FP64", np.float64),
               "tensor(float16)": ("FP16", np.float16), "tensor(bfloat16)": ("BF16", np.float32),
               "tensor(bool)": ("BOOL", np.bool_), "tensor(string)": ("BYTES", object),
               "tensor(int8)": ("INT8", np.int8), "tensor(int16)": ("INT16", np.int16),
               "tensor(int32)": ("INT32", np.int32), "tensor(int64)": ("INT64", np.int64),
               "tensor(uint8)": ("UINT8", np.uint8), "tensor(uint16)": ("UINT16", np.uint16),
               "tensor(uint32)": ("UINT32", np.uint32), "tensor(uint64)": ("UINT64", np.uint64)}
# The element types INVOKE's rows are cast to for the first input; any other is fed float32.
_PREDICT_DTYPES = {name: _ONNX_TYPES[name][1]
                   for name in ("tensor(double)", "tensor(float16)", "tensor(int64)", "tensor(int32)")}


class OnnxRuntime(Runtime):
    """An ``onnxruntime.InferenceSession``: INVOKE's rows go to its first input and its first output answers; INFER
    takes inputs and tensor outputs by name, inputs cast to the types the session expects."""

    name = "onnx"
    platform = "onnxruntime"
    files = ("model.onnx",)

    @staticmethod
    def claims(model):
        """Whether ``model`` is an ONNX Runtime session."""
        return (type(model).__module__ or "").startswith("onnxruntime")

    @staticmethod
    def load_file(path):
        """Open an inference session on the CPU."""
        import onnxruntime
        return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def __init__(self, session):
        super().__init__(session)
        args = session.get_inputs()
        self._first = (args[0].name, _PREDICT_DTYPES.get(args[0].type, np.float32)) if args else None
        self._feeds = {}  # input name -> (datatype, numpy dtype, shape or None)
        for arg in args:
            datatype, dtype = _ONNX_TYPES.get(arg.type, (None, None))
            self._feeds[arg.name] = (datatype, dtype, _shape(arg.shape))
        self._fetches = {}  # output name -> (datatype, shape or None)
        for arg in session.get_outputs():
            if arg.type in _ONNX_TYPES:  # sequences and maps (e.g. skl2onnx's output_probability) are left out
                self._fetches[arg.name] = (_ONNX_TYPES[arg.type][0], _shape(arg.shape))
        self.defaults = list(self._fetches)  # the outputs answered when a request names none

    def features(self):
        return self.model.get_inputs()[0].shape[-1]

    def predict(self, data):
        if self._first is None:
            raise ValueError("the ONNX model has no inputs")
        name, dtype = self._first
        return self.model.run(None, {name: np.asarray(data, dtype=dtype)})[0]

    def signature(self):
        inputs = [TensorSpec(name, datatype, shape or ()) for name, (datatype, _, shape) in self._feeds.items()
                  if datatype is not None]
        outputs = [TensorSpec(name, datatype, shape or ()) for name, (datatype, shape) in self._fetches.items()]
        return inputs, outputs

    def declare(self, inputs, outputs):
        for spec in inputs or ():
            if spec.name not in self._feeds:
                raise ValueError("%s declares input %r, but the ONNX model's inputs are %s"
                                 % (MODEL_SETTINGS, spec.name, name_list(list(self._feeds))))
        if outputs is not None:
            for spec in outputs:
                if spec.name not in self._fetches:
                    raise ValueError("%s declares output %r, but the ONNX model's tensor outputs are %s"
                                     % (MODEL_SETTINGS, spec.name, name_list(list(self._fetches))))
            self.defaults = [spec.name for spec in outputs]

    def prepare(self, inputs, requested):
        wanted = requested or self.defaults
        for name in wanted:
            if name not in self._fetches:
                raise BadInput("the model has no output %r; its outputs are %s"
                               % (name, name_list(list(self._fetches))))
        given = {t.name: t for t in inputs}
        for name in given:
            if name not in self._feeds:
                raise BadInput("the model has no input %r; its inputs are %s" % (name, name_list(list(self._feeds))))
        feed = {}
        for name, (datatype, dtype, shape) in self._feeds.items():
            t = given.get(name)
            if t is None:
                raise BadInput("the request lacks input %r; the model takes %s" % (name, name_list(list(self._feeds))))
            a = t.array
            if (t.datatype == "BYTES") != (datatype == "BYTES"):
                raise BadInput("input %r is %s; the model takes %s" % (name, t.datatype, datatype))
            if shape and (a.ndim != len(shape) or any(d not in (-1, n) for d, n in zip(shape, a.shape))):
                raise BadInput("input %r has shape %s; the model takes %s" % (name, list(a.shape), list(shape)))
            if datatype == "BYTES":
                a = np.array([e.decode("utf-8") for e in a.flat], dtype=object).reshape(a.shape)
            elif dtype is not None:
                a = np.require(a, dtype, ("C", "A"))  # no copy unless the type differs or the data is unaligned
            feed[name] = a
        return wanted, feed

    def run(self, state):
        wanted, feed = state
        return list(zip(wanted, self.model.run(wanted, feed)))


def _shape(shape):
    """An ONNX shape as a tuple with -1 for each symbolic or unknown dimension; None when the rank is unknown."""
    if shape is None:
        return None
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)
