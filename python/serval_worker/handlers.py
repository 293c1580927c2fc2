"""Model loading and request handling: the default framework handlers and SageMaker custom code.

``load_handler(model_dir)`` returns a ``Handler`` whose ``handle(items)`` answers a whole batch with one
``(status, content_type, body)`` per item. See the package docstring for the rules users rely on.
"""
import functools
import importlib.util
import io
import json
import os
import pickle
import sys
import traceback

import numpy as np

from .protocol import BAD_INPUT, MODEL_ERROR, OK

ARTIFACTS = ("model.joblib", "model.pkl", "model.json", "model.ubj", "xgboost-model", "model.onnx", "model.pt")
HOOKS = ("input_fn", "predict_fn", "output_fn", "transform_fn", "predict_batch_fn")
DEFAULT_ACCEPT = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json"
_JSON_SHAPES = ('send {"instances": [[...], ...]}, {"inputs": [[...], ...]}, a list of rows '
                'or one flat row of numbers')
_ONNX_DTYPES = {"tensor(double)": np.float64, "tensor(float16)": np.float16,
                "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class BadInput(Exception):
    """The request's input (or accept) was rejected; reported as BAD_INPUT with the message as is."""


class _Failed:
    """A prediction that raised, kept in place of its result."""
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def error_message(exc):
    """Return ``"ExceptionType: message"`` on one line (at most 4000 characters)."""
    text = " ".join(str(exc).split())
    msg = type(exc).__name__ + (": " + text if text else "")
    return msg[:4000]


@functools.lru_cache(maxsize=512)
def media_type(value):
    """Return the lower-cased media type without parameters (``""`` when empty)."""
    return value.split(";", 1)[0].strip().lower()


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
    raise FileNotFoundError("no model file in %s: Serval looks for %s, or code/inference.py defining model_fn"
                            % (model_dir, ", ".join(ARTIFACTS)))


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


# ---------------------------------------------------------------- default decoding and encoding

def _rows_from_csv(body):
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput("text/csv body is not UTF-8: %s" % exc)
    rows, width = [], None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            for col, cell in enumerate(cells, 1):
                try:
                    float(cell)
                except ValueError:
                    raise BadInput("text/csv line %d, column %d: %r is not a number" % (lineno, col, cell.strip()))
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise BadInput("text/csv line %d has %d columns, earlier lines have %d" % (lineno, len(cells), width))
    return rows


def decode_input(body, content_type, n_features=None):
    """Decode one request body into a 2-D float64 array (the default input_fn); raises BadInput."""
    media = media_type(content_type) or "application/json"
    if media == "application/json":
        try:
            obj = json.loads(body)
        except ValueError as exc:
            raise BadInput("malformed JSON: %s" % exc)
        if isinstance(obj, dict):
            obj = obj.get("instances", obj.get("inputs"))
        if not isinstance(obj, list):
            raise BadInput("unexpected JSON shape; " + _JSON_SHAPES)
        try:
            X = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BadInput("JSON rows must be numbers of equal length (%s); %s" % (exc, _JSON_SHAPES))
    elif media == "text/csv":
        try:
            X = np.asarray(_rows_from_csv(body), dtype=np.float64)
        except ValueError as exc:
            raise BadInput("text/csv: %s" % exc)
    elif media == "application/x-npy":
        try:
            X = np.load(io.BytesIO(body), allow_pickle=False)
            if not isinstance(X, np.ndarray):
                raise ValueError("not a single .npy array")
            X = X.astype(np.float64, copy=False)
        except Exception as exc:
            raise BadInput("application/x-npy: %s" % error_message(exc))
    else:
        raise BadInput("unsupported content type %r; send application/json, text/csv or application/x-npy"
                       % content_type)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        raise BadInput("expected rows of numbers (2 dimensions), got %d dimensions" % X.ndim)
    if X.size == 0:
        raise BadInput("the input has no values")
    if n_features is not None and X.shape[1] != n_features:
        raise BadInput("expected %d features per row, got %d" % (n_features, X.shape[1]))
    return X


@functools.lru_cache(maxsize=512)
def output_media(accept):
    """Return the response media type for an Accept value (json or csv); raises BadInput."""
    if not accept.strip():
        return DEFAULT_ACCEPT
    for part in accept.split(","):
        media = media_type(part)
        if media == "*/*":
            return DEFAULT_ACCEPT
        if media in ("application/json", "text/csv"):
            return media
    raise BadInput("unsupported accept %r; accept application/json or text/csv" % accept)


def _plain(obj):
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    raise TypeError("%s is not JSON serializable" % type(obj).__name__)


_JSON_ENCODER = json.JSONEncoder(default=_plain)


def encode_output(prediction, accept):
    """Encode a prediction (the default output_fn); returns ``(content_type, body)``."""
    media = output_media(accept)
    if media == "text/csv":
        rows = _plain(prediction) if not isinstance(prediction, (list, tuple)) else prediction
        if not isinstance(rows, (list, tuple)):
            rows = [rows]
        lines = [",".join(map(str, r)) if isinstance(r, (list, tuple)) else str(r) for r in rows]
        return "text/csv", "".join(line + "\n" for line in lines).encode("utf-8")
    if isinstance(prediction, np.ndarray):
        prediction = prediction.tolist()
    return "application/json", _JSON_ENCODER.encode({"predictions": prediction}).encode("utf-8")


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


# ---------------------------------------------------------------- the handler

class Handler:
    """Answers batches for one loaded model, with the default handlers and/or SageMaker hooks."""

    def __init__(self, model, name, kind, hooks=None):
        hooks = hooks or {}
        self.model, self.name, self.kind = model, name, kind
        self.n_features = n_features_of(kind, model)
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


def _import_inference(path):
    code_dir = os.path.dirname(path)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location("inference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["inference"] = module
    spec.loader.exec_module(module)
    return module


def load_handler(model_dir):
    """Load the model in ``model_dir`` (custom code first, then known files) and return its Handler."""
    path = os.path.join(model_dir, "code", "inference.py")
    module = _import_inference(path) if os.path.isfile(path) else None
    hooks = {}
    for name in HOOKS:
        fn = getattr(module, name, None)
        if callable(fn):
            hooks[name] = fn
    model_fn = getattr(module, "model_fn", None)
    model = model_fn(model_dir) if callable(model_fn) else load_artifact(model_dir)
    kind = model_kind(model)
    return Handler(model, "custom" if module is not None else kind, kind, hooks)
