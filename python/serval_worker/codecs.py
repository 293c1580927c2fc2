"""Request and response bodies by content type, for the default handling of INVOKE items (pure functions).

``decode_input`` turns a body (JSON, CSV, JSON Lines or ``.npy``) into a 2-D float64 array of rows;
``encode_output`` turns a prediction into a JSON, CSV or JSON Lines body for an Accept value. Both raise
``BadInput`` with a message for the client when the request is at fault.
"""
import functools
import io
import json
import os

import numpy as np

from .errors import BadInput, error_message

DEFAULT_ACCEPT = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json"
_JSON_SHAPES = ('send {"instances": [[...], ...]}, {"inputs": [[...], ...]}, a list of rows '
                'or one flat row of numbers')


@functools.lru_cache(maxsize=512)
def media_type(value):
    """Return the lower-cased media type without parameters (``""`` when empty)."""
    return value.split(";", 1)[0].strip().lower()


def _text(body, media):
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput("%s body is not UTF-8: %s" % (media, exc))


# numpy >= 1.23 parses with C code (1.7x the loop below for 17-digit numbers, 3.3x for 6-digit ones); older
# numpy's loadtxt is Python code that also takes hexadecimal floats, so it is left alone.
_LOADTXT_IN_C = np.lib.NumpyVersion(np.__version__) >= "1.23.0"


def _csv_matrix(body):
    """Decode a text/csv body into a 2-D float64 array (an empty one when it has no rows); raises BadInput.

    ``np.loadtxt`` reads the lines ``str.splitlines`` cut; whatever it refuses (a blank line holding spaces, an
    underscore in a number, a ragged or broken row) goes through ``_rows_from_csv``, which accepts what ``float``
    accepts and names the line and column of the first bad cell. The two agree on every input the first accepts.
    """
    text = _text(body, "text/csv")
    lines = text.splitlines()
    if _LOADTXT_IN_C and text.strip():
        try:
            return np.loadtxt(lines, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
        except ValueError:
            pass
    return np.asarray(_rows_from_csv(lines), dtype=np.float64)


def _rows_from_csv(lines):
    """Parse CSV lines with ``float`` cell by cell into a list of rows; raises BadInput at the first bad cell."""
    rows, width = [], None
    for lineno, line in enumerate(lines, 1):
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


_JSONLINES = ("application/jsonlines", "application/x-jsonlines")
_JSONLINES_ROW = 'expected a list of numbers or {"features": [...]}'


def _jsonlines_matrix(body, media):
    """Decode a JSON Lines body: each non-blank line one row, a list of numbers or ``{"features": [...]}``."""
    rows, numbers = [], []
    for lineno, line in enumerate(_text(body, media).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise BadInput("%s line %d: malformed JSON: %s" % (media, lineno, exc))
        if isinstance(row, dict):
            row = row.get("features")
        if not isinstance(row, list):
            raise BadInput("%s line %d: %s" % (media, lineno, _JSONLINES_ROW))
        rows.append(row)
        numbers.append(lineno)
    try:
        X = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        _first_bad_row(media, numbers, rows)
        raise BadInput("%s: rows must be lists of numbers of equal length (%s)" % (media, exc))
    if X.ndim > 2:
        _first_bad_row(media, numbers, rows)
    return X


def _first_bad_row(media, numbers, rows):
    """Raise BadInput naming the first JSON Lines row that is not a flat list of numbers as wide as the first."""
    width = None
    for lineno, row in zip(numbers, rows):
        try:
            values = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise BadInput("%s line %d: values must be numbers (%s)" % (media, lineno, exc))
        if values.ndim != 1:
            raise BadInput("%s line %d: %s" % (media, lineno, _JSONLINES_ROW))
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise BadInput("%s line %d has %d values, earlier lines have %d" % (media, lineno, len(values), width))


def decode_input(body, content_type, n_features=None):
    """Decode one request body into a 2-D float64 array (the default input_fn); raises BadInput.

    Content types: ``application/json`` (``{"instances": rows}``, ``{"inputs": rows}``, rows, or one flat row),
    ``text/csv`` (one row per line, numbers only), ``application/jsonlines`` or ``application/x-jsonlines`` (one
    row per line: a JSON list of numbers or ``{"features": [...]}``), ``application/x-npy``. Blank lines are
    skipped and a UTF-8 byte order mark is allowed in the two line formats.
    """
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
        X = _csv_matrix(body)
    elif media in _JSONLINES:
        X = _jsonlines_matrix(body, media)
    elif media == "application/x-npy":
        try:
            X = np.load(io.BytesIO(body), allow_pickle=False)
            if not isinstance(X, np.ndarray):
                raise ValueError("not a single .npy array")
            X = X.astype(np.float64, copy=False)
        except Exception as exc:
            raise BadInput("application/x-npy: %s" % error_message(exc))
    else:
        raise BadInput("unsupported content type %r; send application/json, text/csv, application/jsonlines or "
                       "application/x-npy" % content_type)
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
    """Return the response media type for an Accept value (JSON, CSV or JSON Lines); raises BadInput."""
    if not accept.strip():
        return DEFAULT_ACCEPT
    for part in accept.split(","):
        media = media_type(part)
        if media == "*/*":
            return DEFAULT_ACCEPT
        if media in ("application/json", "text/csv") or media in _JSONLINES:
            return media
    raise BadInput("unsupported accept %r; accept application/json, text/csv or application/jsonlines" % accept)


def _plain(obj):
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    raise TypeError("%s is not JSON serializable" % type(obj).__name__)


_JSON_ENCODER = json.JSONEncoder(default=_plain)


def _prediction_rows(prediction):
    """A prediction as a list with one entry per row."""
    rows = _plain(prediction) if not isinstance(prediction, (list, tuple)) else prediction
    return rows if isinstance(rows, (list, tuple)) else [rows]


def _csv(prediction):
    """One line per prediction row, its values joined by commas."""
    rows = _prediction_rows(prediction)
    if isinstance(prediction, np.ndarray) and prediction.ndim == 1 and prediction.dtype.kind != "O":
        lines = map(str, rows)
    else:
        lines = (",".join(map(str, r)) if isinstance(r, (list, tuple)) else str(r) for r in rows)
    return "\n".join(lines) + "\n" if len(rows) else ""


def _jsonlines(prediction):
    """One JSON value per prediction row, each on its own line."""
    if isinstance(prediction, np.ndarray) and prediction.dtype.kind in "biuf" and prediction.ndim in (1, 2):
        if len(prediction) == 0:
            return ""
        # The whole array in one call of the C encoder, cut between rows: numbers hold no "," or "]".
        text = _JSON_ENCODER.encode(prediction.tolist())[1:-1]
        return (text.replace(", ", "\n") if prediction.ndim == 1 else text.replace("], [", "]\n[")) + "\n"
    return "".join(_JSON_ENCODER.encode(row) + "\n" for row in _prediction_rows(prediction))


def encode_output(prediction, accept):
    """Encode a prediction (the default output_fn); returns ``(content_type, body)``.

    ``application/json``: ``{"predictions": [...]}``; ``text/csv``: one line per row, values joined by commas;
    ``application/jsonlines`` (or ``application/x-jsonlines``): one line per row, each a JSON value (a number, or
    a list for a row of several values).
    """
    media = output_media(accept)
    if media == "text/csv":
        return "text/csv", _csv(prediction).encode("utf-8")
    if media in _JSONLINES:
        return media, _jsonlines(prediction).encode("utf-8")
    if isinstance(prediction, np.ndarray):
        prediction = prediction.tolist()
    return "application/json", _JSON_ENCODER.encode({"predictions": prediction}).encode("utf-8")
