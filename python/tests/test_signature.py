"""model-settings.json: declarations win over what the model tells, and a broken file fails the load."""
import json

import pytest

from conftest import answer, save, specs
from serval_worker import protocol as P
from serval_worker.runtimes import load
from wire import array_tensor


def test_model_settings_declarations_win(tmp_path, classifier, data):
    settings = {"name": "clf", "implementation": "mlserver_sklearn.SKLearnModel", "platform": "sklearn-1.5",
                "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 4], "parameters": {}}],
                "outputs": [{"name": "predict", "datatype": "FP32", "shape": [-1]}]}
    runtime = load(save(tmp_path, classifier, settings))
    assert runtime.platform == "sklearn-1.5"
    assert runtime.inputs == specs(("features", "FP64", [-1, 4]))
    assert runtime.outputs == specs(("predict", "FP32", [-1]))
    X = data[0][:3]
    mode, out = answer(runtime, [3], [array_tensor("features", X)])
    assert mode == P.BATCH_MODE and list(out) == ["predict"]  # the declared outputs are the default
    assert out["predict"][0] == "FP32" and out["predict"][1].tolist() == classifier.predict(X).tolist()
    mode, out = answer(runtime, [3], [array_tensor("features", X)], ["predict_proba"])  # still on request
    assert mode == P.BATCH_MODE and out["predict_proba"][0] == "FP64"
    (tmp_path / "model-settings.json").write_text(json.dumps({"outputs": [
        {"name": "predict_proba", "datatype": "FP32", "shape": [-1, 2]}]}))
    runtime = load(str(tmp_path))
    assert runtime.inputs == specs(("input-0", "FP32", [-1, 4]))  # not declared: inferred
    assert [spec.name for spec in runtime.outputs] == ["predict_proba"]


@pytest.mark.parametrize("text, match", [
    ("{", "model-settings.json is not valid UTF-8 JSON"),
    ("[]", "must hold a JSON object"),
    ('{"inputs": {}}', "'inputs' must be a list"),
    ('{"inputs": [3]}', r"inputs\[0\] must be an object"),
    ('{"outputs": [{"datatype": "FP32", "shape": [-1]}]}', r"outputs\[0\].name must be a non-empty string"),
    ('{"inputs": [{"name": "x", "datatype": "FLOAT32", "shape": [-1]}]}',
     r'inputs\[0\].datatype "FLOAT32" is not an Open Inference Protocol datatype \(BOOL, UINT8'),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [-2]}]}', r"shape must be a list of at most 32 integers"),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1.5]}]}', "shape must be"),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": [true]}]}', "shape must be"),
    ('{"inputs": [{"name": "x", "datatype": "FP32"}]}', "shape must be"),
    ('{"inputs": [{"name": "x", "datatype": "FP32", "shape": []}, {"name": "x", "datatype": "FP32", "shape": []}]}',
     "two inputs are named 'x'"),
    ('{"platform": 3}', "platform must be a string"),
    ('{"outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}]}',
     "declares output 'label', but this model only produces predict, predict_proba"),
])
def test_broken_model_settings_fail_the_load(tmp_path, classifier, text, match):
    save(tmp_path, classifier)
    (tmp_path / "model-settings.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        load(str(tmp_path))


def test_read_model_settings(tmp_path):
    from serval_worker.signature import read_model_settings, spec_json
    assert read_model_settings(str(tmp_path)) is None
    (tmp_path / "model-settings.json").write_bytes(b'\xef\xbb\xbf{"name": "m", "platform": "", "outputs": null}')
    assert read_model_settings(str(tmp_path)) == {}  # nothing declared
    (tmp_path / "model-settings.json").write_text(json.dumps(
        {"platform": "p", "inputs": [{"name": "x", "datatype": "BF16", "shape": [-1, 3]}]}))
    settings = read_model_settings(str(tmp_path))
    assert settings == {"platform": "p", "inputs": specs(("x", "BF16", [-1, 3]))}
    assert spec_json(settings["inputs"][0]) == {"name": "x", "datatype": "BF16", "shape": [-1, 3]}
