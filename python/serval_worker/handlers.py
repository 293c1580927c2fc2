"""Model loading and request handling: the default framework handlers and SageMaker custom code.

``load_handler(model_dir)`` returns a ``Handler`` whose ``handle(items)`` answers a whole INVOKE batch with
one ``(status, content_type, body)`` per item, and whose ``infer_batch(batch)`` answers an INFER batch of
Open Inference Protocol tensors. See the package docstring for the rules users rely on.
"""
import importlib.util
import json
import os
import pickle
import sys
import traceback
import warnings
from collections import namedtuple

import numpy as np

from .codecs import DEFAULT_ACCEPT, decode_input, encode_output, media_type, output_media
from .errors import BadInput, error_message
from .protocol import (BAD_INPUT, BATCH_MODE, DATATYPES, ITEMS_MODE, MAX_RANK, MODEL_ERROR, OK, WIRE_DTYPES, Tensor,
                       wire_tensor)

ARTIFACTS = ("model.joblib", "model.pkl", "model.json", "model.ubj", "xgboost-model", "model.onnx", "model.pt")
HOOKS = ("input_fn", "predict_fn", "output_fn", "transform_fn", "predict_batch_fn")
TENSOR_HOOKS = ("infer_fn",)  # only for INFER; it does not change how INVOKE batches
MODEL_SETTINGS = "model-settings.json"
PLATFORMS = {"sklearn": "sklearn", "xgboost": "xgboost", "onnx": "onnxruntime", "torchscript": "pytorch_torchscript",
             "custom": "python"}
_ONNX_DTYPES = {"tensor(double)": np.float64, "tensor(float16)": np.float16,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class _Failed:
    """A prediction that raised, kept in place of its result."""
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _load_file(name, path):
    """Load one model file by its name (see ARTIFACTS)."""
    if name in ("model.joblib", "model.pkl"):
        try:
            import joblib
            return joblib.load(path)
        except Exception:
            if name == "model.joblib":
                raise
        with open(path, "rb") as f:  # a plain pickle, or no joblib installed
            return pickle.load(f)
    if name == "model.onnx":
        import onnxruntime
        return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    if name == "model.pt":
        import torch
        return torch.jit.load(path, map_location="cpu").eval()
    import xgboost
    booster = xgboost.Booster()
    if name == "xgboost-model":  # SageMaker's name: JSON, UBJSON, legacy binary or a pickled Booster
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:1] == b"\x80":
            return pickle.loads(raw)
        path = bytearray(raw)  # the buffer form detects the format itself
    booster.load_model(path)
    return booster


def load_artifact(model_dir):
    """Load the first known model file in ``model_dir`` (see ARTIFACTS)."""
    for name in ARTIFACTS:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            return _load_file(name, path)
    raise FileNotFoundError("no model file in %s: Serval looks for %s, or code/inference.py (or "
                            "code/$SAGEMAKER_PROGRAM) defining model_fn" % (model_dir, ", ".join(ARTIFACTS)))


def model_kind(model):
    """Classify a loaded model as ``xgboost``, ``onnx``, ``torchscript`` or ``sklearn`` (anything else)."""
    module = type(model).__module__ or ""
    if module.startswith("xgboost") and type(model).__name__ == "Booster":
        return "xgboost"
    if module.startswith("onnxruntime"):
        return "onnx"
    torch = sys.modules.get("torch")
    return "torchscript" if torch is not None and isinstance(model, torch.nn.Module) else "sklearn"


def n_features_of(kind, model):
    """Return the number of input features the model declares, or None."""
    try:
        n = {"sklearn": lambda: getattr(model, "n_features_in_", None), "xgboost": lambda: model.num_features(),
             "onnx": lambda: model.get_inputs()[0].shape[-1]}.get(kind, lambda: None)()
    except Exception:
        return None
    ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
    return int(n) if ok else None


def framework_predict(kind, model):
    """Return ``predict(X)`` for the model's framework (the default predict_fn)."""
    if kind == "xgboost":
        import xgboost
        return lambda X: model.predict(X if isinstance(X, xgboost.DMatrix) else xgboost.DMatrix(X))
    if kind == "onnx":
        first = model.get_inputs()[0]
        name, dtype = first.name, _ONNX_DTYPES.get(first.type, np.float32)
        return lambda X: model.run(None, {name: np.asarray(X, dtype=dtype)})[0]
    if kind == "torchscript":
        import torch

        def _torch_predict(X):
            if not isinstance(X, torch.Tensor):
                X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
            with torch.no_grad():
                out = model(X)
            return out.numpy() if isinstance(out, torch.Tensor) else out
        return _torch_predict
    return lambda X: model.predict(X)


def _normalize_output(ret, accept):
    """Turn an output_fn/transform_fn return value (bytes, str or (body, content_type)) into a pair."""
    content_type = accept
    if isinstance(ret, tuple) and len(ret) == 2:
        ret, content_type = ret
    if isinstance(ret, str):
        ret = ret.encode("utf-8")
    elif isinstance(ret, (bytearray, memoryview)):
        ret = bytes(ret)
    elif not isinstance(ret, bytes):
        raise TypeError("output must be bytes, str or (body, content_type), not %s" % type(ret).__name__)
    content_type = str(content_type or "")
    if len(content_type.encode("utf-8")) > 0xFFFF:
        raise ValueError("content type longer than 65535 bytes")
    return content_type, ret


def _input_data(body, content_type):
    """The body as user code gets it: str for JSON, text/* and form data, else bytes."""
    media = media_type(content_type)
    if media in ("application/json", "application/x-www-form-urlencoded") or media.startswith("text/"):
        return body.decode("utf-8")
    return body


# ---------------------------------------------------------------- Open Inference Protocol tensors

TensorSpec = namedtuple("TensorSpec", "name datatype shape")
TensorSpec.__doc__ = "A tensor a model takes or produces, as metadata describes it; -1 in ``shape`` varies."

# ONNX element types: (OIP datatype, numpy dtype to cast inputs to)
_ONNX_TYPES = {"tensor(float)": ("FP32", np.float32), "tensor(double)": ("FP64", np.float64),
               "tensor(float16)": ("FP16", np.float16), "tensor(bfloat16)": ("BF16", np.float32),
               "tensor(bool)": ("BOOL", np.bool_), "tensor(string)": ("BYTES", object),
               "tensor(int8)": ("INT8", np.int8), "tensor(int16)": ("INT16", np.int16),
               "tensor(int32)": ("INT32", np.int32), "tensor(int64)": ("INT64", np.int64),
               "tensor(uint8)": ("UINT8", np.uint8), "tensor(uint16)": ("UINT16", np.uint16),
               "tensor(uint32)": ("UINT32", np.uint32), "tensor(uint64)": ("UINT64", np.uint64)}


def spec_json(spec):
    """A TensorSpec as READY carries it."""
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def _names(names):
    return ", ".join(names) if names else "none"


def _features(n):
    return "%d feature%s" % (n, "" if n == 1 else "s")


def _label_datatype(dtype):
    """The datatype of a ``predict`` output: integer labels INT64, floats FP32/FP64, strings BYTES."""
    kind = dtype.kind
    if kind == "b":
        return "BOOL"
    if kind == "u" and dtype.itemsize == 8:
        return "UINT64"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64" if dtype.itemsize >= 8 else "FP32"
    if kind in "OUST":
        return "BYTES"
    return None


def _probe(fn, n_features):
    """Call ``fn`` on one row of zeros to learn its output's dtype and shape; None when that fails."""
    if n_features is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(np.zeros((1, n_features), dtype=np.float32))
        out = out if isinstance(out, np.ndarray) else np.asarray(out)
    except Exception:
        return None
    return out if out.ndim >= 1 and out.shape[0] == 1 and out.dtype.kind in "biufOUST" else None


def _declared_order(inputs, declared):
    """Inputs in declared order when every name is declared, else as given."""
    if declared and len(inputs) > 1 and all(t.name in declared for t in inputs):
        return sorted(inputs, key=lambda t: declared[t.name])
    return inputs


def _select(named, requested):
    """Pick the requested outputs (all when none) from ``[(name, value), ...]``; raises BadInput."""
    if not requested:
        return named
    produced = dict(named)
    missing = [name for name in requested if name not in produced]
    if missing:
        raise BadInput("the model has no output %r; its outputs are %s" % (missing[0], _names(list(produced))))
    return [(name, produced[name]) for name in requested]


class _TabularPath:
    """scikit-learn and XGBoost: numeric inputs as columns of one matrix; outputs ``predict`` (and
    ``predict_proba``)."""

    def __init__(self, kind, model, n_features):
        self.n_features = n_features
        self.order = None  # declared input name -> position, from model-settings.json
        if kind == "xgboost":
            import xgboost
            dmatrix = xgboost.DMatrix
            self.methods = {"predict": lambda X: model.predict(dmatrix(X))}
            self.cast = np.float32
        else:
            self.methods = {}
            for name in ("predict", "predict_proba"):
                try:
                    method = getattr(model, name, None)
                except Exception:  # e.g. a property that raises
                    method = None
                if callable(method):
                    self.methods[name] = method
            self.cast = np.float64
        self.defaults = list(self.methods)
        self.model = model
        self.guessed = set()  # outputs whose metadata datatype is a guess, so not cast to

    def metadata(self):
        if not self.methods:
            return [], []
        inputs = [TensorSpec("input-0", "FP32", (-1, self.n_features or -1))]
        self.guessed = set()
        outputs = []
        for name, fn in self.methods.items():
            out = _probe(fn, self.n_features)
            if name == "predict_proba":
                classes = getattr(self.model, "classes_", None)
                width = out.shape[1] if out is not None and out.ndim == 2 else (
                    len(classes) if isinstance(classes, np.ndarray) and classes.ndim == 1 else -1)
                outputs.append(TensorSpec(name, "FP64", (-1, width)))
                continue
            classes = getattr(self.model, "classes_", None)
            if out is not None:
                datatype, shape = _label_datatype(out.dtype), (-1,) + out.shape[1:]
            elif isinstance(classes, np.ndarray) and classes.ndim == 1:
                datatype, shape = _label_datatype(classes.dtype), (-1,)
            else:  # the model could not be probed: a regressor's usual output, not enforced
                datatype, shape = "FP64", (-1,)
                self.guessed.add(name)
            if datatype is not None:
                outputs.append(TensorSpec(name, datatype, shape))
        return inputs, outputs

    def declare(self, inputs, outputs):
        if inputs is not None:
            self.order = {spec.name: i for i, spec in enumerate(inputs)}
        if outputs is not None:
            unknown = [spec.name for spec in outputs if spec.name not in self.methods]
            if unknown:
                raise ValueError("%s declares output %r, but this model only produces %s"
                                 % (MODEL_SETTINGS, unknown[0], _names(list(self.methods))))
            self.defaults = [spec.name for spec in outputs]

    def prepare(self, inputs, requested):
        names = requested or self.defaults
        for name in names:
            if name not in self.methods:
                raise BadInput("the model has no output %r; its outputs are %s" % (name, _names(list(self.methods))))
        return names, self.matrix(inputs)

    def run(self, state):
        names, X = state
        methods = self.methods
        if not methods:
            raise AttributeError("the model (%s) has no predict method; give code/inference.py an infer_fn or "
                                 "predict_fn" % type(self.model).__name__)
        return [(name, methods[name](X)) for name in names]

    def matrix(self, inputs):
        """Stack the inputs as columns (in request order, or declared order) into one numeric matrix."""
        if not inputs:
            raise BadInput("the request has no inputs; send the rows as one numeric tensor [N, %s]"
                           % (self.n_features or "k"))
        inputs = _declared_order(inputs, self.order)
        rows = None
        widths = []
        for t in inputs:
            a = t.array
            if t.datatype == "BYTES":
                raise BadInput("input %r is BYTES; the model takes numbers (FP32 or another numeric datatype)" % t.name)
            if a.ndim not in (1, 2):
                raise BadInput("input %r has shape %s; send [N, k] (N rows of k features) or [N] (one feature)"
                               % (t.name, list(a.shape)))
            if rows is None:
                rows = a.shape[0]
            elif a.shape[0] != rows:
                raise BadInput("inputs %r and %r have different numbers of rows (%d and %d)"
                               % (inputs[0].name, t.name, rows, a.shape[0]))
            widths.append(a.shape[1] if a.ndim == 2 else 1)
        width = sum(widths)
        if self.n_features is not None and width != self.n_features:
            if len(inputs) == 1:
                raise BadInput("%s has %s per row; the model expects %d" % (inputs[0].name, _features(width),
                                                                           self.n_features))
            raise BadInput("the %d inputs have %s per row in all (%s); the model expects %d" % (
                len(inputs), _features(width), ", ".join("%s: %d" % (t.name, w) for t, w in zip(inputs, widths)),
                self.n_features))
        if rows == 0 or width == 0:
            raise BadInput("the input has no values")
        if len(inputs) == 1:
            X = inputs[0].array
            if X.ndim == 1:
                X = X.reshape(-1, 1)
        else:
            X = np.concatenate([t.array.reshape(rows, -1) for t in inputs], axis=1)
        if X.dtype.kind != "f" or X.dtype.itemsize < 4:
            X = X.astype(self.cast)
        return X


class _OnnxPath:
    """ONNX Runtime: inputs and tensor outputs by name, inputs cast to the types the session expects."""

    def __init__(self, session):
        self.session = session
        self.inputs = {}  # name -> (datatype, numpy dtype, shape or None)
        for arg in session.get_inputs():
            datatype, dtype = _ONNX_TYPES.get(arg.type, (None, None))
            self.inputs[arg.name] = (datatype, dtype, self._shape(arg.shape))
        self.guessed = set()
        self.outputs = {}
        for arg in session.get_outputs():
            if arg.type in _ONNX_TYPES:  # sequences and maps (e.g. skl2onnx's output_probability) are left out
                self.outputs[arg.name] = (_ONNX_TYPES[arg.type][0], self._shape(arg.shape))
        self.defaults = list(self.outputs)

    @staticmethod
    def _shape(shape):
        if shape is None:
            return None
        return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)

    def metadata(self):
        inputs = [TensorSpec(name, datatype, shape or ()) for name, (datatype, _, shape) in self.inputs.items()
                  if datatype is not None]
        outputs = [TensorSpec(name, datatype, shape or ()) for name, (datatype, shape) in self.outputs.items()]
        return inputs, outputs

    def declare(self, inputs, outputs):
        for spec in inputs or ():
            if spec.name not in self.inputs:
                raise ValueError("%s declares input %r, but the ONNX model's inputs are %s"
                                 % (MODEL_SETTINGS, spec.name, _names(list(self.inputs))))
        if outputs is not None:
            for spec in outputs:
                if spec.name not in self.outputs:
                    raise ValueError("%s declares output %r, but the ONNX model's tensor outputs are %s"
                                     % (MODEL_SETTINGS, spec.name, _names(list(self.outputs))))
            self.defaults = [spec.name for spec in outputs]

    def prepare(self, inputs, requested):
        names = requested or self.defaults
        for name in names:
            if name not in self.outputs:
                raise BadInput("the model has no output %r; its outputs are %s" % (name, _names(list(self.outputs))))
        given = {t.name: t for t in inputs}
        for name in given:
            if name not in self.inputs:
                raise BadInput("the model has no input %r; its inputs are %s" % (name, _names(list(self.inputs))))
        feed = {}
        for name, (datatype, dtype, shape) in self.inputs.items():
            t = given.get(name)
            if t is None:
                raise BadInput("the request lacks input %r; the model takes %s" % (name, _names(list(self.inputs))))
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
        return names, feed

    def run(self, state):
        names, feed = state
        return list(zip(names, self.session.run(names, feed)))


class _TorchPath:
    """TorchScript: the inputs (``input__0``, ... in request order, or declared order) as float32 tensors
    (or their declared datatypes), the module's outputs as ``output__0``, ``output__1``, ..."""

    def __init__(self, module):
        self.module = module
        self.in_specs = self.out_names = None
        self.guessed = {"output__0"}  # the module's output type is unknown until it runs

    def metadata(self):
        # A TorchScript module does not say what it takes (rank, dtype) or returns: declare nothing, so that
        # Serval checks nothing it cannot know; model-settings.json can declare both.
        return [], []

    def declare(self, inputs, outputs):
        if inputs is not None:
            self.in_specs = inputs
        if outputs is not None:
            self.out_names = [spec.name for spec in outputs]

    def prepare(self, inputs, requested):
        import torch
        specs = self.in_specs
        if specs:
            inputs = _declared_order(inputs, {spec.name: i for i, spec in enumerate(specs)})
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
            out = self.module(*tensors)
        if isinstance(out, dict):
            named = list(out.items())
        else:
            values = list(out) if isinstance(out, (tuple, list)) else [out]
            names = self.out_names or []
            named = [(names[i] if i < len(names) else "output__%d" % i, v) for i, v in enumerate(values)]
        converted = []
        for name, value in named:
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
                value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
            converted.append((str(name), value))
        return _select(converted, requested)


class _CustomPath:
    """``code/inference.py``: ``infer_fn(inputs, model)`` with the batch's arrays by name, or
    ``predict_fn`` with the one array (or the dict of arrays when there are several)."""

    def __init__(self, model, infer_fn=None, predict_fn=None):
        self.model, self.infer_fn, self.predict_fn = model, infer_fn, predict_fn
        self.first = "output-0"
        self.guessed = set()
        self.casts = None  # input name -> numpy dtype, from model-settings.json

    def metadata(self):
        return [], []

    def declare(self, inputs, outputs):
        if inputs:
            self.casts = {spec.name: np.float32 if spec.datatype == "BF16" else WIRE_DTYPES[spec.datatype]
                          for spec in inputs if spec.datatype != "BYTES"}
        if outputs:
            self.first = outputs[0].name

    def prepare(self, inputs, requested):
        casts = self.casts
        if casts:  # numeric inputs take the datatype model-settings.json declares for them
            cast = []
            for t in inputs:
                dtype = casts.get(t.name)
                if dtype is not None and t.datatype != "BYTES" and t.array.dtype != dtype:
                    t = Tensor(t.name, t.datatype, t.array.astype(dtype))
                cast.append(t)
            inputs = cast
        return inputs, requested

    def run(self, state):
        inputs, requested = state
        if self.infer_fn is not None:
            out = self.infer_fn({t.name: t.array for t in inputs}, self.model)
        elif len(inputs) == 1:
            out = self.predict_fn(inputs[0].array, self.model)
        else:
            out = self.predict_fn({t.name: t.array for t in inputs}, self.model)
        named = [(str(k), v) for k, v in out.items()] if isinstance(out, dict) else [(self.first, out)]
        return _select(named, requested)


def tensor_path(kind, model, n_features, hooks):
    """Build the INFER path for a model: custom hooks first, then the framework's."""
    if hooks.get("infer_fn") is not None or hooks.get("predict_fn") is not None:
        return _CustomPath(model, hooks.get("infer_fn"), hooks.get("predict_fn"))
    if kind == "onnx":
        return _OnnxPath(model)
    if kind == "torchscript":
        return _TorchPath(model)
    return _TabularPath(kind, model, n_features)


def _spec_list(value, key):
    if not isinstance(value, list):
        raise ValueError("%s: %r must be a list of {name, datatype, shape}" % (MODEL_SETTINGS, key))
    specs, seen = [], set()
    for i, entry in enumerate(value):
        where = "%s: %s[%d]" % (MODEL_SETTINGS, key, i)
        if not isinstance(entry, dict):
            raise ValueError("%s must be an object with name, datatype and shape" % where)
        name = entry.get("name")
        if not isinstance(name, str) or not name or len(name.encode("utf-8")) > 0xFFFF:
            raise ValueError("%s.name must be a non-empty string" % where)
        if name in seen:
            raise ValueError("%s: two %s are named %r" % (MODEL_SETTINGS, key, name))
        seen.add(name)
        datatype = entry.get("datatype")
        if datatype not in DATATYPES:
            raise ValueError("%s.datatype %s is not an Open Inference Protocol datatype (%s)"
                             % (where, json.dumps(datatype), ", ".join(DATATYPES)))
        shape = entry.get("shape")
        if (not isinstance(shape, list) or len(shape) > MAX_RANK
                or not all(type(d) is int and d >= -1 for d in shape)):
            raise ValueError("%s.shape must be a list of at most %d integers >= -1 (-1 varies), not %s"
                             % (where, MAX_RANK, json.dumps(shape)))
        specs.append(TensorSpec(name, datatype, tuple(shape)))
    return specs


def read_model_settings(model_dir):
    """Read the package's ``model-settings.json`` (MLServer's format): returns ``{"inputs": [TensorSpec],
    "outputs": [...], "platform": str}`` with the keys it declares, or None without the file. Raises
    ValueError for a broken file."""
    path = os.path.join(model_dir, MODEL_SETTINGS)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise ValueError("%s is not valid UTF-8 JSON: %s" % (MODEL_SETTINGS, exc)) from None
    if not isinstance(doc, dict):
        raise ValueError("%s must hold a JSON object" % MODEL_SETTINGS)
    settings = {}
    for key in ("inputs", "outputs"):
        if doc.get(key) is not None:
            settings[key] = _spec_list(doc[key], key)
    platform = doc.get("platform")
    if platform is not None and platform != "":
        if not isinstance(platform, str):
            raise ValueError("%s: platform must be a string" % MODEL_SETTINGS)
        settings["platform"] = platform
    return settings


# ---------------------------------------------------------------- the handler

class Handler:
    """Answers batches for one loaded model, with the default handlers and/or SageMaker hooks."""

    def __init__(self, model, name, kind, hooks=None, settings=None):
        hooks = dict(hooks or {})
        self.model, self.name, self.kind = model, name, kind
        self.n_features = n_features_of(kind, model)
        self._init_tensor_path(hooks, settings or {})
        for hook in TENSOR_HOOKS:
            hooks.pop(hook, None)
        self.input_fn, self.output_fn = hooks.get("input_fn"), hooks.get("output_fn")
        self.transform_fn = hooks.get("transform_fn")
        predict_fn, batch_fn = hooks.get("predict_fn"), hooks.get("predict_batch_fn")
        self.predict_one = ((lambda data: predict_fn(data, model)) if predict_fn
                            else framework_predict(kind, model))
        if self.transform_fn is not None:
            self.batching, self._predict_batch = "per_item", None
        elif batch_fn is not None:
            self.batching, self._predict_batch = "predict_batch_fn", lambda inputs: batch_fn(inputs, model)
        elif not hooks:
            self.batching, self._predict_batch = "stacked", self._stacked
        else:
            self.batching, self._predict_batch = "per_item", None

    def _init_tensor_path(self, hooks, settings):
        """Set up INFER: the tensor path, and the metadata READY reports (model-settings.json wins)."""
        self._path = tensor_path(self.kind, self.model, self.n_features, hooks)
        self.platform = settings.get("platform") or PLATFORMS.get(self.name, self.name)
        try:
            self.inputs, self.outputs = self._path.metadata()
        except Exception as exc:  # metadata is a courtesy: a model that cannot tell still serves
            print("serval_worker: cannot infer the model's tensor metadata (%s); declare it in %s"
                  % (error_message(exc), MODEL_SETTINGS), file=sys.stderr)
            self.inputs, self.outputs = [], []
        self._path.declare(settings.get("inputs"), settings.get("outputs"))
        self.inputs = settings.get("inputs", self.inputs)
        if "outputs" in settings:
            self.outputs = settings["outputs"]
            self._out_types = {spec.name: spec.datatype for spec in self.outputs}
        else:  # outputs are cast to the datatypes READY reports, unless those are guesses
            self._out_types = {spec.name: spec.datatype for spec in self.outputs if spec.name not in self._path.guessed}

    def infer(self, inputs, requested=()):
        """Run the model once on ``inputs`` (decoded ``Tensor``s) and return the ``requested`` outputs (all of
        them when none) as wire ``Tensor``s, each of its declared datatype.

        Raises BadInput when the request is at fault (reported as BAD_INPUT), anything else when the model is
        (MODEL_ERROR).
        """
        path = self._path
        try:
            state = path.prepare(inputs, requested)
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(error_message(exc)) from exc
        types = self._out_types
        out = []
        for name, value in path.run(state):
            try:
                out.append(wire_tensor(name, value, types.get(name)))
            except (TypeError, ValueError) as exc:
                raise (TypeError if isinstance(exc, TypeError) else ValueError)("output %r: %s" % (name, exc)) from exc
        return out

    def infer_batch(self, batch):
        """Answer an INFER batch: ``(BATCH_MODE, tensors)`` when one call on the whole batch gave outputs of
        its rows, else ``(ITEMS_MODE, [(status, tensors or message), ...])`` from running the items one by
        one, so that a bad item fails alone."""
        rows = batch.rows
        try:
            out = self.infer(batch.inputs, batch.outputs)
        except Exception as exc:
            if len(rows) == 1:
                return ITEMS_MODE, [_infer_error(exc)]
            if not isinstance(exc, BadInput):
                print("serval_worker: the batched call failed (%s); running its %d items one by one"
                      % (error_message(exc)[:200], len(rows)), file=sys.stderr)
        else:
            if len(rows) == 1:
                return BATCH_MODE, out
            total = sum(rows)
            wrong = [t for t in out if t.array.ndim == 0 or t.array.shape[0] != total]
            if not wrong:
                return BATCH_MODE, out
            print("serval_worker: output %r has shape %s for a batch of %d rows; running its %d items one by one"
                  % (wrong[0].name, list(wrong[0].array.shape), total, len(rows)), file=sys.stderr)
        results, start = [], 0
        for n in rows:
            inputs = [Tensor(t.name, t.datatype, t.array[start:start + n]) for t in batch.inputs]
            start += n
            try:
                results.append((OK, self.infer(inputs, batch.outputs)))
            except Exception as exc:
                results.append(_infer_error(exc))
        return ITEMS_MODE, results

    def handle(self, items):
        """Answer every item of a batch: a list of ``(status, content_type, body)`` in item order."""
        results = [None] * len(items)
        pending = []  # (index, decoded input, accept)
        for i, item in enumerate(items):
            content_type = item.content_type or "application/json"
            accept = item.accept.strip()
            if not accept or accept == "*/*":
                accept = DEFAULT_ACCEPT
            try:
                if self.transform_fn is not None or self.input_fn is not None:
                    data = _input_data(item.body, content_type)
                    if self.transform_fn is not None:
                        results[i] = self._call_output(self.transform_fn, self.model, data, content_type, accept)
                        continue
                    data = self.input_fn(data, content_type)
                else:
                    data = decode_input(item.body, content_type, self.n_features)
                if self.output_fn is None:
                    output_media(accept)  # reject an unsupported accept before predicting
            except Exception as exc:
                results[i] = _error(BAD_INPUT, exc)
                continue
            pending.append((i, data, accept))
        if pending:
            predictions = self._predict_all([data for _, data, _ in pending])
            for (i, _, accept), pred in zip(pending, predictions):
                if isinstance(pred, _Failed):
                    results[i] = _error(MODEL_ERROR, pred.exc)
                elif self.output_fn is not None:
                    results[i] = self._call_output(self.output_fn, pred, accept)
                else:
                    try:
                        results[i] = (OK,) + encode_output(pred, accept)
                    except Exception as exc:
                        results[i] = _error(MODEL_ERROR, exc)
        return results

    def _call_output(self, fn, *args):
        try:
            return (OK,) + _normalize_output(fn(*args), args[-1])
        except Exception as exc:
            traceback.print_exc()
            return _error(MODEL_ERROR, exc)

    def _stacked(self, arrays):
        """Predict all items' rows in one call and split the predictions back per item."""
        predictions = self.predict_one(np.vstack(arrays))
        if len(predictions) != sum(len(a) for a in arrays):
            raise ValueError("the model returned %d predictions for %d rows"
                             % (len(predictions), sum(len(a) for a in arrays)))
        out, start = [], 0
        for a in arrays:
            out.append(predictions[start:start + len(a)])
            start += len(a)
        return out

    def _predict_all(self, inputs):
        """Predict a batch at once when possible; fall back to one item at a time so bad items fail alone."""
        if self._predict_batch is not None and (len(inputs) > 1 or self.batching == "predict_batch_fn"):
            try:
                out = list(self._predict_batch(inputs))
                if len(out) == len(inputs):
                    return out
                print("serval_worker: %s returned %d results for %d inputs; predicting item by item"
                      % (self.batching, len(out), len(inputs)), file=sys.stderr)
            except Exception:
                if self.batching == "predict_batch_fn":
                    traceback.print_exc()
        results = []
        for data in inputs:
            try:
                results.append(self.predict_one(data))
            except Exception as exc:
                traceback.print_exc()
                results.append(_Failed(exc))
        return results


def _error(status, exc):
    msg = str(exc) if isinstance(exc, BadInput) else error_message(exc)
    return status, "", msg.encode("utf-8")


def _infer_error(exc):
    """An INFER item's ``(status, message)`` for an exception (the model's errors are logged)."""
    if isinstance(exc, BadInput):
        return BAD_INPUT, str(exc)[:4000]
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return MODEL_ERROR, error_message(exc)


def _import_inference(path):
    """Import the script at ``path`` as a module named after its file, with its folder first on ``sys.path``."""
    code_dir = os.path.dirname(path)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def entry_script(model_dir, program=None):
    """Return the path of the package's handler script, or None when it has none.

    ``program`` (``$SAGEMAKER_PROGRAM``, set by the SageMaker Python SDK's framework models) names the script,
    relative to ``code/``; it must exist there. Without it, ``code/inference.py`` is used when present.
    """
    code_dir = os.path.join(model_dir, "code")
    if not program:
        path = os.path.join(code_dir, "inference.py")
        return path if os.path.isfile(path) else None
    path = os.path.join(code_dir, program)
    real_code = os.path.realpath(code_dir)
    inside = os.path.realpath(path).startswith(real_code + os.sep)
    if not inside or not os.path.isfile(path):
        try:
            files = sorted(os.listdir(code_dir))
        except OSError:
            files = []
        raise FileNotFoundError(
            "SAGEMAKER_PROGRAM is %r, but code/ in the model package %s; set SAGEMAKER_PROGRAM to the entry "
            "script's file name (your entry_point), and put the script in source_dir or in model.tar.gz's code/"
            % (program, "holds " + ", ".join(files) if files else "is empty or missing"))
    return path


def load_handler(model_dir):
    """Load the model in ``model_dir`` (custom code first, then known files) and return its Handler.

    The custom code is ``code/$SAGEMAKER_PROGRAM`` when that variable is set, else ``code/inference.py``. A broken
    ``model-settings.json`` raises ValueError before the model is loaded."""
    path = entry_script(model_dir, os.environ.get("SAGEMAKER_PROGRAM"))
    module = _import_inference(path) if path is not None else None
    hooks = {}
    for name in HOOKS + TENSOR_HOOKS:
        fn = getattr(module, name, None)
        if callable(fn):
            hooks[name] = fn
    settings = read_model_settings(model_dir)
    model_fn = getattr(module, "model_fn", None)
    model = model_fn(model_dir) if callable(model_fn) else load_artifact(model_dir)
    kind = model_kind(model)
    return Handler(model, "custom" if module is not None else kind, kind, hooks, settings)
