"""Models over rows of numeric features (scikit-learn, XGBoost): on INFER, the numeric inputs are the columns of one
matrix, and the outputs are the model's methods (``predict``, and ``predict_proba`` where there is one)."""
import abc
import warnings

import numpy as np

from ..errors import BadInput
from ..signature import MODEL_SETTINGS, TensorSpec
from .base import Runtime, declared_order, name_list


class TabularRuntime(Runtime):
    """A model over rows of features; a subclass gives the ``output_methods`` INFER can call."""

    cast = np.float64
    """The dtype inputs of other numeric types are cast to."""

    def __init__(self, model):
        super().__init__(model)
        self.methods = self.output_methods()
        self.defaults = list(self.methods)  # the outputs answered when a request names none
        self.order = None  # declared input name -> position, from model-settings.json
        self.guessed = set()

    @abc.abstractmethod
    def output_methods(self):
        """``{output name: function of a 2-D array}`` for INFER, in the order the outputs are answered."""

    def signature(self):
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
                                 % (MODEL_SETTINGS, unknown[0], name_list(list(self.methods))))
            self.defaults = [spec.name for spec in outputs]

    def prepare(self, inputs, requested):
        wanted = requested or self.defaults
        for name in wanted:
            if name not in self.methods:
                raise BadInput("the model has no output %r; its outputs are %s"
                               % (name, name_list(list(self.methods))))
        return wanted, self.matrix(inputs)

    def run(self, state):
        wanted, X = state
        methods = self.methods
        if not methods:
            raise AttributeError("the model (%s) has no predict method; give code/inference.py an infer_fn or "
                                 "predict_fn" % type(self.model).__name__)
        return [(name, methods[name](X)) for name in wanted]

    def matrix(self, inputs):
        """Stack the inputs as columns (in request order, or declared order) into one numeric matrix."""
        if not inputs:
            raise BadInput("the request has no inputs; send the rows as one numeric tensor [N, %s]"
                           % (self.n_features or "k"))
        inputs = declared_order(inputs, self.order)
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
