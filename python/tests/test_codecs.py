"""The content-type codecs: JSON, CSV (numpy's C parser with the precise loop behind it), JSON Lines and .npy in;
JSON, CSV and JSON Lines out."""
import io
import random

import numpy as np
import pytest

from serval_worker import codecs as C
from serval_worker.codecs import decode_input, encode_output
from serval_worker.errors import BadInput


def csv_body(X, fmt=repr):
    return "".join(",".join(fmt(v) for v in row) + "\n" for row in X.tolist()).encode()


def precise(body, content_type="text/csv", n_features=None):
    """decode_input as it was before the fast path: the float() loop alone; returns the array or the message."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(C, "_LOADTXT_IN_C", False)
        return outcome(body, content_type, n_features)


def outcome(body, content_type="text/csv", n_features=None):
    try:
        X = decode_input(body, content_type, n_features)
    except BadInput as exc:
        return "BadInput: " + str(exc)
    assert X.dtype == np.float64 and X.ndim == 2
    return X.shape, X.tobytes()


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


def test_media_types():
    assert C.media_type(" Text/CSV ; header=present") == "text/csv"
    assert C.media_type("") == ""
    assert [C.output_media(a) for a in ("", " ", "*/*", "text/html, */*")] == [C.DEFAULT_ACCEPT] * 4
    assert C.output_media("text/html, Application/X-JSONLines; q=0.5, text/csv") == "application/x-jsonlines"
    with pytest.raises(BadInput, match="^unsupported accept 'text/html'; accept application/json, text/csv or "
                                       "application/jsonlines$"):
        C.output_media("text/html")


@pytest.fixture
def no_fallback(monkeypatch):
    """Fail if the precise loop runs: the input must have taken the fast path."""
    def refuse(lines):
        raise AssertionError("the precise loop ran")
    monkeypatch.setattr(C, "_rows_from_csv", refuse)


def test_csv_fast_path_matches_float(no_fallback):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((300, 7)) * 10.0 ** rng.integers(-30, 30, (300, 1)),
                   rng.integers(-5, 5, (20, 7))])
    for fmt in (repr, "{:.6g}".format, "{:.17e}".format, "{:.3f}".format):
        body = csv_body(X, fmt)
        expected = np.array([[float(fmt(v)) for v in row] for row in X.tolist()])
        assert decode_input(body, "text/csv").tobytes() == expected.tobytes()
    assert decode_input(b"\xef\xbb\xbf1,2\r\n\n3,4\r\n", "text/csv").tolist() == [[1, 2], [3, 4]]  # BOM, CRLF, blank
    assert decode_input(b" 1 ,\t2\n", "text/csv").tolist() == [[1, 2]]
    assert decode_input(b"1\n2\n3", "text/csv").tolist() == [[1], [2], [3]]  # one column: rows, not one row
    assert decode_input(b"nan,-inf,1e400,4.9e-324\n", "text/csv").tobytes() == \
        np.array([[float("nan"), -np.inf, np.inf, 5e-324]]).tobytes()


@pytest.mark.parametrize("body, rows", [
    (b"1,2\n   \n3,4\n", [[1, 2], [3, 4]]),  # a blank line holding spaces
    (b"1_000,2\n", [[1000, 2]]),  # float() takes underscores
    ("\u0661\u0662,3\n".encode(), [[12, 3]]),  # and Unicode digits
    (b"1,2\x0c3,4\n", [[1, 2], [3, 4]]),  # and str.splitlines cuts at form feeds
    (b"1,2\r3,4", [[1, 2], [3, 4]]),
])
def test_csv_falls_back_to_what_float_accepts(body, rows):
    assert decode_input(body, "text/csv").tolist() == rows
    assert outcome(body) == precise(body)


@pytest.mark.parametrize("body, message", [
    (b"1,2\n\n3,x\n", "text/csv line 3, column 2: 'x' is not a number"),
    (b"1,2\n3,4,5\n", "text/csv line 2 has 3 columns, earlier lines have 2"),
    (b"1,2,\n", "text/csv line 1, column 3: '' is not a number"),
    (b"1,,2\n", "text/csv line 1, column 2: '' is not a number"),
    (b"0x10,1\n", "text/csv line 1, column 1: '0x10' is not a number"),
    (b"1,2 # note\n", "text/csv line 1, column 2: '2 # note' is not a number"),
    (b'"1",2\n', "text/csv line 1, column 1: '\"1\"' is not a number"),
    (b"1\x002,3\n", "text/csv line 1, column 1: '1\\x002' is not a number"),
    (b"\n \n", "the input has no values"),
    (b"", "the input has no values"),
    (b"1,\xff\n", "text/csv body is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 2: invalid start byte"),
])
def test_csv_error_messages(body, message):
    with pytest.raises(BadInput) as info:
        decode_input(body, "text/csv")
    assert str(info.value) == message
    assert precise(body) == "BadInput: " + message


def test_csv_error_deep_in_a_large_payload():
    X = np.random.default_rng(1).standard_normal((5000, 20))
    lines = csv_body(X).decode().splitlines()
    cells = lines[4321].split(",")
    cells[5] = "1.5.2"
    lines[4321] = ",".join(cells)
    with pytest.raises(BadInput, match=r"^text/csv line 4322, column 6: '1\.5\.2' is not a number$"):
        decode_input("\n".join(lines).encode(), "text/csv")
    lines[4321] = "1,2"
    with pytest.raises(BadInput, match=r"^text/csv line 4322 has 2 columns, earlier lines have 20$"):
        decode_input("\n".join(lines).encode(), "text/csv")
    with pytest.raises(BadInput, match="^expected 19 features per row, got 20$"):
        decode_input(csv_body(X), "text/csv", n_features=19)


def test_csv_agrees_with_the_precise_loop_on_random_inputs():
    """Random bodies from tricky pieces: the fast path never accepts what the loop refuses, nor reads a different
    value; the messages are the loop's."""
    pieces = ["1", "2.5", "-3", "+4", ".5", "6.", "1e5", "2E-3", "nan", "-inf", "Infinity", "1_0", "0x1", "1e",
              "", " ", "\t", ",", ",", ",", "\n", "\n", "\r\n", "\r", "\x0c", "\x85", "\u2028", "\x00", "#", '"',
              "\ufeff", "\xa0", "\u0663", "e", "."]
    rng = random.Random(7)
    for _ in range(3000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14))).encode()
        assert outcome(body) == precise(body), body


# ---------------------------------------------------------------- JSON Lines in

@pytest.mark.parametrize("media", ["application/jsonlines", "application/x-jsonlines", "Application/JSONLines; a=b"])
def test_jsonlines_decoding(media):
    body = b'\xef\xbb\xbf[1, 2.5]\r\n\n  \n{"features": [3, 4], "id": "x"}\n[5e2, -6]'
    assert decode_input(body, media).tolist() == [[1, 2.5], [3, 4], [500, -6]]
    assert decode_input(b"[7, 8, 9]\n", media).shape == (1, 3)


@pytest.mark.parametrize("body, message", [
    (b'[1, 2]\n[3, 4\n', "application/jsonlines line 2: malformed JSON: Expecting ',' delimiter: line 1 column 6 (char 5)"),
    (b'[1, 2]\n\n{"instances": [3, 4]}\n', 'application/jsonlines line 3: expected a list of numbers or {"features": [...]}'),
    (b'[1, 2]\n5\n', 'application/jsonlines line 2: expected a list of numbers or {"features": [...]}'),
    (b'[1, 2]\n[[3, 4]]\n', 'application/jsonlines line 2: expected a list of numbers or {"features": [...]}'),
    (b'[[1, 2]]\n[[3, 4]]\n', 'application/jsonlines line 1: expected a list of numbers or {"features": [...]}'),
    (b'[1, 2]\n[3, 4, 5]\n', "application/jsonlines line 2 has 3 values, earlier lines have 2"),
    (b'[1, 2]\n[3, {}]\n', "application/jsonlines line 2: values must be numbers (float() argument must be a string "
                           "or a real number, not 'dict')"),
    (b'[1, 2]\n[3, "x"]\n', "application/jsonlines line 2: values must be numbers (could not convert string to "
                            "float: 'x')"),
    (b"\n\n", "the input has no values"),
    (b"[]\n[]\n", "the input has no values"),
    (b"[1]\n\xff\n", "application/jsonlines body is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 4: "
                     "invalid start byte"),
])
def test_jsonlines_error_messages(body, message):
    with pytest.raises(BadInput) as info:
        decode_input(body, "application/jsonlines")
    assert str(info.value) == message


def test_jsonlines_width_and_unknown_type():
    with pytest.raises(BadInput, match="^expected 4 features per row, got 3$"):
        decode_input(b"[1, 2, 3]\n", "application/jsonlines", n_features=4)
    with pytest.raises(BadInput, match="send application/json, text/csv, application/jsonlines or application/x-npy"):
        decode_input(b"[1]", "application/ndjson")


# ---------------------------------------------------------------- out

def test_jsonlines_encoding():
    for accept in ("application/jsonlines", "application/x-jsonlines"):
        assert encode_output(np.array([0, 1, 1]), accept) == (accept, b"0\n1\n1\n")
    assert encode_output(np.array([0.5, np.nan]), "application/jsonlines")[1] == b"0.5\nNaN\n"
    assert encode_output(np.array([True, False]), "application/jsonlines")[1] == b"true\nfalse\n"
    assert encode_output(np.array([[0.25, 0.75], [1.0, 0.0]]), "application/jsonlines")[1] == \
        b"[0.25, 0.75]\n[1.0, 0.0]\n"
    assert encode_output(np.array([[1], [2]]), "application/jsonlines")[1] == b"[1]\n[2]\n"
    assert encode_output(np.array(["a, b", "c]"], dtype=object), "application/jsonlines")[1] == b'"a, b"\n"c]"\n'
    assert encode_output([{"label": 1}, [1, 2], 3], "application/jsonlines")[1] == b'{"label": 1}\n[1, 2]\n3\n'
    assert encode_output(np.float64(2.5), "application/jsonlines")[1] == b"2.5\n"
    assert encode_output(np.array([]), "application/jsonlines")[1] == b""
    assert encode_output(np.zeros((0, 2)), "application/jsonlines")[1] == b""
    assert encode_output([1], "text/html, application/jsonlines; q=0.5")[0] == "application/jsonlines"
    with pytest.raises(BadInput, match="^unsupported accept 'text/html'; accept application/json, text/csv or "
                                       "application/jsonlines$"):
        encode_output([1], "text/html")


def test_csv_encoding_of_every_shape():
    assert encode_output(np.array([0.5, 1.0]), "text/csv")[1] == b"0.5\n1.0\n"
    assert encode_output(np.array([[1, 2], [3, 4]]), "text/csv")[1] == b"1,2\n3,4\n"
    assert encode_output([[1, 2], 3], "text/csv")[1] == b"1,2\n3\n"
    assert encode_output(np.int64(4), "text/csv")[1] == b"4\n"
    assert encode_output(np.array([]), "text/csv")[1] == b""
    rows = np.empty(2, dtype=object)
    rows[:] = [[1, 2], [3, 4]]
    assert encode_output(rows, "text/csv")[1] == b"1,2\n3,4\n"
