"""The default handler's line formats: CSV (numpy's C parser with the precise loop behind it) and JSON Lines, in
and out."""
import json
import random

import numpy as np
import pytest

from conftest import N_FEATURES, item
from serval_worker import handlers as H
from serval_worker.handlers import BadInput, decode_input, encode_output, load_handler
from serval_worker.protocol import BAD_INPUT, OK


def csv_body(X, fmt=repr):
    return "".join(",".join(fmt(v) for v in row) + "\n" for row in X.tolist()).encode()


def precise(body, content_type="text/csv", n_features=None):
    """decode_input as it was before the fast path: the float() loop alone; returns the array or the message."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(H, "_LOADTXT_IN_C", False)
        return outcome(body, content_type, n_features)


def outcome(body, content_type="text/csv", n_features=None):
    try:
        X = decode_input(body, content_type, n_features)
    except BadInput as exc:
        return "BadInput: " + str(exc)
    assert X.dtype == np.float64 and X.ndim == 2
    return X.shape, X.tobytes()


@pytest.fixture
def no_fallback(monkeypatch):
    """Fail if the precise loop runs: the input must have taken the fast path."""
    def refuse(lines):
        raise AssertionError("the precise loop ran")
    monkeypatch.setattr(H, "_rows_from_csv", refuse)


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


def test_handler_line_formats_end_to_end(clf_dir, classifier, data):
    X = data[0][:40]
    expected = classifier.predict(X).tolist()
    jsonl = "".join(json.dumps({"features": row}) + "\n" for row in X[:20].tolist()).encode()
    csv = csv_body(X[20:])
    results = load_handler(clf_dir).handle([
        item(jsonl, "application/jsonlines", accept="application/jsonlines"),
        item(csv, "text/csv", accept="text/csv"),
        item(csv, "text/csv", accept="application/x-jsonlines"),
        item(b"[1, 2]\n", "application/jsonlines"),
    ])
    assert results[0] == (OK, "application/jsonlines", "".join("%d\n" % p for p in expected[:20]).encode())
    assert results[1] == (OK, "text/csv", "".join("%d\n" % p for p in expected[20:]).encode())
    assert results[2] == (OK, "application/x-jsonlines", results[1][2])
    assert results[3] == (BAD_INPUT, "", b"expected %d features per row, got 2" % N_FEATURES)
