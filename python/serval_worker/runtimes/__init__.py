"""The model runtimes: one class per framework (scikit-learn, XGBoost, ONNX, TorchScript) and one for SageMaker
custom code over them, all on ``base.Runtime``; and ``load``, which picks and makes the runtime for a package.

Frameworks are imported when a model of theirs is loaded, never before: a scikit-learn model imports neither
XGBoost, ONNX Runtime nor PyTorch.
"""
import os

from ..signature import read_model_settings
from .custom import CustomCodeRuntime, entry_script, import_script, script_hooks
from .onnx import OnnxRuntime
from .sklearn import SKLearnRuntime
from .torchscript import TorchScriptRuntime
from .xgboost import XGBoostRuntime

ARTIFACTS = tuple((name, cls) for cls in (SKLearnRuntime, XGBoostRuntime, OnnxRuntime, TorchScriptRuntime)
                  for name in cls.files)
"""``(file name, runtime class)`` of the model files a package may hold, in the order they are looked for."""


def runtime_class(model):
    """The framework runtime class for a loaded model object; scikit-learn's for any object no other claims."""
    for cls in (XGBoostRuntime, OnnxRuntime, TorchScriptRuntime):
        if cls.claims(model):
            return cls
    return SKLearnRuntime


def load_artifact(model_dir):
    """Load the first model file in ``model_dir`` that ARTIFACTS names and return the model object."""
    for name, cls in ARTIFACTS:
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            return cls.load_file(path)
    raise FileNotFoundError("no model file in %s: Serval looks for %s, or code/inference.py (or "
                            "code/$SAGEMAKER_PROGRAM) defining model_fn"
                            % (model_dir, ", ".join(name for name, _ in ARTIFACTS)))


def load(model_dir):
    """Load the model package in ``model_dir`` and return its configured runtime.

    The custom code is ``code/$SAGEMAKER_PROGRAM`` when that variable is set, else ``code/inference.py`` if there is
    one; its ``model_fn`` loads the model, else the first model file (ARTIFACTS) does. The runtime's framework is
    the one the loaded model object belongs to (a Booster pickled as ``model.pkl`` is XGBoost's). A broken
    ``model-settings.json`` raises ValueError before the model is loaded.
    """
    script = entry_script(model_dir, os.environ.get("SAGEMAKER_PROGRAM"))
    module = import_script(script) if script is not None else None
    hooks = script_hooks(module) if module is not None else None
    settings = read_model_settings(model_dir)
    model_fn = getattr(module, "model_fn", None)
    model = model_fn(model_dir) if callable(model_fn) else load_artifact(model_dir)
    framework = runtime_class(model)(model)
    runtime = framework if hooks is None else CustomCodeRuntime(hooks, framework)
    runtime.configure(settings)
    return runtime
