"""SageMaker custom code: the hooks of ``code/inference.py`` (or ``code/$SAGEMAKER_PROGRAM``) over the runtime of the
framework of the model they load, which answers whatever step the script leaves out."""
import importlib.util
import os
import sys
import traceback

import numpy as np

from ..codecs import decode_input, media_type, output_media
from ..protocol import BAD_INPUT, MODEL_ERROR, OK, WIRE_DTYPES, Tensor
from .base import Runtime, error_result, request_accept, select_outputs

HOOKS = ("input_fn", "predict_fn", "output_fn", "transform_fn", "predict_batch_fn", "infer_fn")
"""The functions a script may define besides ``model_fn``; all but ``infer_fn`` change how INVOKE batches."""


class CustomCodeRuntime(Runtime):
    """A script's hooks over a framework runtime (``framework``, made for the model ``model_fn`` returned or for the
    package's model file): each hook the script defines replaces the framework's step, the others are the
    framework's."""

    name = "custom"
    platform = "python"

    def __init__(self, hooks, framework):
        self.framework = framework
        self.input_fn, self.predict_fn = hooks.get("input_fn"), hooks.get("predict_fn")
        self.output_fn, self.transform_fn = hooks.get("output_fn"), hooks.get("transform_fn")
        self.predict_batch_fn, self.infer_fn = hooks.get("predict_batch_fn"), hooks.get("infer_fn")
        super().__init__(framework.model)
        if self.transform_fn is not None:
            self.batching = "per_item"
        elif self.predict_batch_fn is not None:
            self.batching = "predict_batch_fn"
        elif set(hooks) <= {"infer_fn"}:  # infer_fn does not change how INVOKE batches
            self.batching = "stacked"
        else:
            self.batching = "per_item"
        self._own_tensors = self.infer_fn is not None or self.predict_fn is not None  # else the framework's INFER
        self._first = "output-0"  # the name of a bare array result
        self._casts = None  # input name -> numpy dtype, from model-settings.json

    def features(self):
        return self.framework.n_features

    # ------------------------------------------------------------ INVOKE

    def handle(self, items):
        if self.transform_fn is None:
            return super().handle(items)
        return [self._transform(item) for item in items]

    def _transform(self, item):
        content_type, accept = item.content_type or "application/json", request_accept(item.accept)
        try:
            data = _input_data(item.body, content_type)
        except Exception as exc:
            return error_result(BAD_INPUT, exc)
        return self._call_output(self.transform_fn, self.model, data, content_type, accept)

    def decode(self, body, content_type, accept):
        if self.input_fn is None:
            data = decode_input(body, content_type, self.n_features)
        else:
            data = self.input_fn(_input_data(body, content_type), content_type)
        if self.output_fn is None:
            output_media(accept)  # reject an unsupported accept before predicting
        return data

    def predict(self, data):
        if self.predict_fn is None:
            return self.framework.predict(data)
        return self.predict_fn(data, self.model)

    def predict_batch(self, inputs):
        if self.predict_batch_fn is None:
            return super().predict_batch(inputs)
        return self.predict_batch_fn(inputs, self.model)

    def encode(self, prediction, accept):
        if self.output_fn is None:
            return super().encode(prediction, accept)
        return self._call_output(self.output_fn, prediction, accept)

    def _call_output(self, fn, *args):
        """Call output_fn or transform_fn (whose last argument is the accept) for an item's answer."""
        try:
            return (OK,) + _normalize_output(fn(*args), args[-1])
        except Exception as exc:
            traceback.print_exc()
            return error_result(MODEL_ERROR, exc)

    # ------------------------------------------------------------ INFER: infer_fn, or predict_fn on the arrays

    @property
    def guessed(self):
        return self.framework.guessed if not self._own_tensors else frozenset()

    def signature(self):
        return self.framework.signature() if not self._own_tensors else ([], [])

    def declare(self, inputs, outputs):
        if not self._own_tensors:
            return self.framework.declare(inputs, outputs)
        if inputs:
            self._casts = {spec.name: np.float32 if spec.datatype == "BF16" else WIRE_DTYPES[spec.datatype]
                           for spec in inputs if spec.datatype != "BYTES"}
        if outputs:
            self._first = outputs[0].name

    def prepare(self, inputs, requested):
        if not self._own_tensors:
            return self.framework.prepare(inputs, requested)
        casts = self._casts
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
        if not self._own_tensors:
            return self.framework.run(state)
        inputs, requested = state
        if self.infer_fn is not None:
            out = self.infer_fn({t.name: t.array for t in inputs}, self.model)
        elif len(inputs) == 1:
            out = self.predict_fn(inputs[0].array, self.model)
        else:
            out = self.predict_fn({t.name: t.array for t in inputs}, self.model)
        named = [(str(k), v) for k, v in out.items()] if isinstance(out, dict) else [(self._first, out)]
        return select_outputs(named, requested)


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


def import_script(path):
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


def script_hooks(module):
    """The hooks (see HOOKS) the script's module defines: ``{name: function}``."""
    hooks = {}
    for name in HOOKS:
        fn = getattr(module, name, None)
        if callable(fn):
            hooks[name] = fn
    return hooks


def _input_data(body, content_type):
    """The body as user code gets it: str for JSON, text/* and form data, else bytes."""
    media = media_type(content_type)
    if media in ("application/json", "application/x-www-form-urlencoded") or media.startswith("text/"):
        return body.decode("utf-8")
    return body


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
