"""A model's Open Inference Protocol signature: ``TensorSpec``, and ``model-settings.json`` (MLServer's format), in
which a package declares its inputs, outputs and platform."""
import json
import os
from collections import namedtuple

from .protocol import DATATYPES, MAX_RANK

MODEL_SETTINGS = "model-settings.json"

TensorSpec = namedtuple("TensorSpec", "name datatype shape")
TensorSpec.__doc__ = "A tensor a model takes or produces, as metadata describes it; -1 in ``shape`` varies."


def spec_json(spec):
    """A TensorSpec as READY carries it."""
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


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

