"""Default decoding, encoding and stacked batching with real scikit-learn models."""
import io
import json

import numpy as np
import pytest

from conftest import N_FEATURES, Picky, item
from serval_worker import handlers as H
from serval_worker.handlers import BadInput, decode_input, encode_output, load_handler
from serval_worker.protocol import BAD_INPUT, MODEL_ERROR, OK


def npy(array):
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    return buf.getvalue()


@pytest.mark.parametrize("body, rows", [
    (b'{"instances": [[1, 2], [3, 4]]}', [[1, 2], [3, 4]]),
    (b'{"inputs": [[1, 2]]}', [[1, 2]]),
    (b'[[1, 2], [3, 4.5]]', [[1, 2], [3, 4.5]]),
    (b'[1, 2, 3]', [[1, 2, 3]]),
    (b'{"instances": [5, 6], "parameters": {}}', [[5, 6]]),
])
def test_json_decoding(body, rows):
    X = decode_input(body, "application/json")
    assert X.dtype == np.float64 and X.tolist() == rows
    assert decode_input(body, "").tolist() == rows
    assert decode_input(body, "Application/JSON; charset=utf-8").tolist() == rows


@pytest.mark.parametrize("body, match", [
    (b'{"instances": [[1, 2], [3]]}', "equal length"),
    (b'{"rows": [[1]]}', "instances"),
    (b'"text"', "instances"),
    (b'[[1, "a"]]', "numbers"),
    (b'[[[1]]]', "2 dimensions"),
    (b'[]', "no values"),
    (b'{"instances": [1, 2', "malformed JSON"),
])
def test_json_errors(body, match):
    with pytest.raises(BadInput, match=match):
        decode_input(body, "application/json")


def test_csv_decoding_and_errors():
    body = b"1,2,3\n\n 4.5, 5,6\r\n\n"
    assert decode_input(body, "text/csv").tolist() == [[1, 2, 3], [4.5, 5, 6]]
    assert decode_input(body, "TEXT/CSV; header=absent").shape == (2, 3)
    with pytest.raises(BadInput, match="line 3, column 2: 'x' is not a number"):
        decode_input(b"1,2\n\n3,x\n", "text/csv")
    with pytest.raises(BadInput, match="line 2 has 3 columns"):
        decode_input(b"1,2\n3,4,5\n", "text/csv")
    with pytest.raises(BadInput, match="no values"):
        decode_input(b"\n\n", "text/csv")


def test_npy_decoding_and_errors():
    assert decode_input(npy([[1, 2], [3, 4]]), "application/x-npy").tolist() == [[1, 2], [3, 4]]
    assert decode_input(npy(np.arange(3, dtype=np.float32)), "application/x-npy").tolist() == [[0, 1, 2]]
    with pytest.raises(BadInput, match="application/x-npy"):
        decode_input(b"not npy", "application/x-npy")
    with pytest.raises(BadInput, match="application/x-npy"):
        decode_input(npy(np.array([{"a": 1}], dtype=object)), "application/x-npy")


def test_unsupported_content_type_and_width():
    with pytest.raises(BadInput, match="unsupported content type 'image/png'; send application/json"):
        decode_input(b"", "image/png")
    with pytest.raises(BadInput, match="expected 4 features per row, got 3"):
        decode_input(b"[1, 2, 3]", "application/json", n_features=4)


def test_output_encoding():
    pred = np.array([0, 1, 1])
    assert encode_output(pred, "") == ("application/json", b'{"predictions": [0, 1, 1]}')
    assert encode_output(pred, "*/*")[0] == "application/json"
    assert encode_output([np.float32(0.5)], "application/json; q=1")[1] == b'{"predictions": [0.5]}'
    assert encode_output(pred, "text/csv") == ("text/csv", b"0\n1\n1\n")
    assert encode_output(np.array([[1.5, 2.0], [3.0, 4.0]]), "Text/CSV") == ("text/csv", b"1.5,2.0\n3.0,4.0\n")
    assert encode_output(pred, "image/png, text/csv")[0] == "text/csv"
    with pytest.raises(BadInput, match="unsupported accept 'image/png'"):
        encode_output(pred, "image/png")


def test_ready_fields(clf_dir):
    handler = load_handler(clf_dir)
    assert (handler.name, handler.kind, handler.batching, handler.n_features) == ("sklearn", "sklearn", "stacked",
                                                                                    N_FEATURES)


def test_stacked_batch_isolates_bad_items(clf_dir, classifier, data):
    X = data[0]
    handler = load_handler(clf_dir)
    calls = []
    predict = handler.predict_one
    handler.predict_one = lambda rows: calls.append(len(rows)) or predict(rows)
    items = [item({"instances": X[:3].tolist()}), item(X[3].tolist()), item([[1, 2, 3]]),
             item(b'{"instances": [[1, 2'), item("\n".join(",".join(map(str, r)) for r in X[4:6]).encode(), "text/csv"),
             item(X[6].tolist(), accept="text/csv"), item(X[7].tolist(), accept="image/png")]
    results = handler.handle(items)
    assert calls == [7]  # one stacked predict for the 7 good rows
    expected = classifier.predict(X[:7]).tolist()
    assert results[0] == (OK, "application/json", json.dumps({"predictions": expected[:3]}).encode())
    assert json.loads(results[1][2]) == {"predictions": expected[3:4]}
    assert results[2] == (BAD_INPUT, "", b"expected 4 features per row, got 3")
    assert results[3][0] == BAD_INPUT and results[3][2].startswith(b"malformed JSON")
    assert json.loads(results[4][2]) == {"predictions": expected[4:6]}
    assert results[5] == (OK, "text/csv", ("%d\n" % expected[6]).encode())
    assert results[6][0] == BAD_INPUT and b"unsupported accept" in results[6][2]


def test_regressor_predictions_match(reg_dir, regressor, data):
    X = data[0][:5]
    results = load_handler(reg_dir).handle([item(X[:2].tolist()), item(X[2:].tolist(), accept="text/csv")])
    assert json.loads(results[0][2])["predictions"] == regressor.predict(X[:2]).tolist()
    csv = [float(v) for v in results[1][2].decode().split()]
    assert csv == pytest.approx(regressor.predict(X[2:]).tolist())



def test_stacked_predict_failure_falls_back_per_item():
    handler = H.Handler(Picky(), "sklearn", "sklearn")
    results = handler.handle([item([[1, 2]]), item([[-1, 2]]), item([[3, 4], [5, 6]])])
    assert results[0] == (OK, "application/json", b'{"predictions": [3.0]}')
    assert results[1] == (MODEL_ERROR, "", b"ValueError: negative input")
    assert results[2] == (OK, "application/json", b'{"predictions": [7.0, 11.0]}')


def test_pickle_file_and_missing_model(tmp_path, classifier):
    import pickle
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(classifier, f)
    assert load_handler(str(tmp_path)).n_features == N_FEATURES
    with pytest.raises(FileNotFoundError, match="model.joblib, model.pkl, model.json"):
        load_handler(str(tmp_path / "empty"))
