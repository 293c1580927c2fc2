"""What every runtime shares: answering an INVOKE batch (each item decoded, the batch predicted at once, each answer
encoded, so that a bad item fails alone), answering an INFER batch (one call on the whole batch, else item by
item), and the tensor signature READY reports, with ``model-settings.json``'s declarations applied."""
import abc
import sys
import traceback

import numpy as np

from ..codecs import DEFAULT_ACCEPT, decode_input, encode_output, output_media
from ..errors import BadInput, error_message
from ..protocol import BAD_INPUT, BATCH_MODE, ITEMS_MODE, MODEL_ERROR, OK, Tensor, wire_tensor
from ..signature import MODEL_SETTINGS


class Runtime(abc.ABC):
    """One loaded model that answers INVOKE batches (``handle``) and INFER batches (``infer_batch``).

    A subclass serves one framework, or custom code. It sets ``name`` and ``platform``, and implements ``predict``
    (what INVOKE runs on the stacked rows), ``features`` and the tensor path INFER runs: ``signature`` (the tensors
    the model tells it takes and produces), ``declare`` (take model-settings.json's declarations), ``prepare`` (check
    and convert a request's inputs; whatever it raises is the request's fault) and ``run`` (call the model). A
    framework's runtime also sets ``files`` and has the static methods ``load_file(path)`` (the model object from
    one of its files) and, but for scikit-learn's, which takes any object, ``claims(model)`` (whether a model object
    is its framework's). A runtime is made from a loaded model object, then ``configure``d once before it serves.
    """

    name = ""
    """What READY reports as ``handler``."""
    platform = ""
    """The Open Inference Protocol platform READY reports when model-settings.json names none."""
    batching = "stacked"
    """How INVOKE batches are predicted (READY's ``batching``): ``stacked`` (the rows of all items in one
    ``predict``), ``predict_batch_fn`` or ``per_item``."""
    guessed = frozenset()
    """Outputs whose datatype in the signature is a guess, so that their values are not cast to it."""
    files = ()
    """The package files a framework's runtime loads, in the order they are looked for."""

    def __init__(self, model):
        self.model = model
        try:
            n = self.features()
        except Exception:
            n = None
        ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
        self.n_features = int(n) if ok else None
        self.inputs, self.outputs, self._out_types = [], [], {}

    # ------------------------------------------------------------ what a subclass provides

    def features(self):
        """The number of input features the model declares, or None."""
        return None

    @abc.abstractmethod
    def predict(self, data):
        """Predict the rows of a 2-D array (or what custom code's input_fn returned): INVOKE's predict_fn."""

    def signature(self):
        """The ``(inputs, outputs)`` TensorSpec lists the model tells of itself."""
        return [], []

    def declare(self, inputs, outputs):
        """Take the TensorSpecs model-settings.json declares (None when it declares none); raise ValueError when they
        do not fit the model."""

    @abc.abstractmethod
    def prepare(self, inputs, requested):
        """Check and convert an INFER request's input Tensors; returns what ``run`` takes. Raises for a bad request."""

    @abc.abstractmethod
    def run(self, state):
        """Run the model on what ``prepare`` returned; returns ``[(output name, value), ...]``."""

    # ------------------------------------------------------------ configuration

    def configure(self, settings=None):
        """Set the signature READY reports: what ``settings`` (``read_model_settings``'s dict) declares, else what the
        model tells. Raises ValueError when a declaration does not fit the model."""
        settings = settings or {}
        self.platform = settings.get("platform") or self.platform
        try:
            self.inputs, self.outputs = self.signature()
        except Exception as exc:  # metadata is a courtesy: a model that cannot tell still serves
            print("serval_worker: cannot infer the model's tensor metadata (%s); declare it in %s"
                  % (error_message(exc), MODEL_SETTINGS), file=sys.stderr)
            self.inputs, self.outputs = [], []
        self.declare(settings.get("inputs"), settings.get("outputs"))
        self.inputs = settings.get("inputs", self.inputs)
        if "outputs" in settings:
            self.outputs = settings["outputs"]
            self._out_types = {spec.name: spec.datatype for spec in self.outputs}
        else:  # outputs are cast to the datatypes READY reports, unless those are guesses
            self._out_types = {spec.name: spec.datatype for spec in self.outputs if spec.name not in self.guessed}

    # ------------------------------------------------------------ INVOKE

    def handle(self, items):
        """Answer every item of an INVOKE batch: a list of ``(status, content_type, body)`` in item order."""
        results = [None] * len(items)
        pending = []  # (index, decoded input, accept)
        for i, item in enumerate(items):
            accept = request_accept(item.accept)
            try:
                data = self.decode(item.body, item.content_type or "application/json", accept)
            except Exception as exc:
                results[i] = error_result(BAD_INPUT, exc)
                continue
            pending.append((i, data, accept))
        if pending:
            predictions = self._predict_all([data for _, data, _ in pending])
            for (i, _, accept), prediction in zip(pending, predictions):
                if isinstance(prediction, _Failed):
                    results[i] = error_result(MODEL_ERROR, prediction.exc)
                else:
                    results[i] = self.encode(prediction, accept)
        return results

    def decode(self, body, content_type, accept):
        """An item's input for ``predict`` (the default input_fn: ``codecs.decode_input``), after checking that the
        accept can be answered; raises when the request is at fault."""
        data = decode_input(body, content_type, self.n_features)
        output_media(accept)  # reject an unsupported accept before predicting
        return data

    def encode(self, prediction, accept):
        """An item's ``(status, content_type, body)`` for its prediction (the default output_fn)."""
        try:
            return (OK,) + encode_output(prediction, accept)
        except Exception as exc:
            return error_result(MODEL_ERROR, exc)

    def predict_batch(self, inputs):
        """Predict several items' inputs in one call; returns one prediction per input. The default stacks the rows
        of all items, predicts them at once and splits the predictions back per item."""
        predictions = self.predict(np.vstack(inputs))
        if len(predictions) != sum(len(a) for a in inputs):
            raise ValueError("the model returned %d predictions for %d rows"
                             % (len(predictions), sum(len(a) for a in inputs)))
        out, start = [], 0
        for a in inputs:
            out.append(predictions[start:start + len(a)])
            start += len(a)
        return out

    def _predict_all(self, inputs):
        """Predict a batch at once when possible; fall back to one item at a time so bad items fail alone."""
        if self.batching != "per_item" and (len(inputs) > 1 or self.batching == "predict_batch_fn"):
            try:
                out = list(self.predict_batch(inputs))
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
                results.append(self.predict(data))
            except Exception as exc:
                traceback.print_exc()
                results.append(_Failed(exc))
        return results

    # ------------------------------------------------------------ INFER

    def infer(self, inputs, requested=()):
        """Run the model once on ``inputs`` (decoded ``Tensor``s) and return the ``requested`` outputs (all of
        them when none) as wire ``Tensor``s, each of its declared datatype.

        Raises BadInput when the request is at fault (reported as BAD_INPUT), anything else when the model is
        (MODEL_ERROR).
        """
        try:
            state = self.prepare(inputs, requested)
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(error_message(exc)) from exc
        types = self._out_types
        out = []
        for name, value in self.run(state):
            try:
                out.append(wire_tensor(name, value, types.get(name)))
            except (TypeError, ValueError) as exc:
                raise (TypeError if isinstance(exc, TypeError) else ValueError)("output %r: %s" % (name, exc)) from exc
        return out

    def infer_batch(self, batch):
        """Answer an INFER batch: ``(BATCH_MODE, tensors)`` when one call on the whole batch gave outputs of
        its rows, else ``(ITEMS_MODE, [(status, tensors or message), ...])`` from running the items one by
        one, so that a bad item fails alone."""
        rows = batch.rows
        try:
            out = self.infer(batch.inputs, batch.outputs)
        except Exception as exc:
            if len(rows) == 1:
                return ITEMS_MODE, [_infer_error(exc)]
            if not isinstance(exc, BadInput):
                print("serval_worker: the batched call failed (%s); running its %d items one by one"
                      % (error_message(exc)[:200], len(rows)), file=sys.stderr)
        else:
            if len(rows) == 1:
                return BATCH_MODE, out
            total = sum(rows)
            wrong = [t for t in out if t.array.ndim == 0 or t.array.shape[0] != total]
            if not wrong:
                return BATCH_MODE, out
            print("serval_worker: output %r has shape %s for a batch of %d rows; running its %d items one by one"
                  % (wrong[0].name, list(wrong[0].array.shape), total, len(rows)), file=sys.stderr)
        results, start = [], 0
        for n in rows:
            inputs = [Tensor(t.name, t.datatype, t.array[start:start + n]) for t in batch.inputs]
            start += n
            try:
                results.append((OK, self.infer(inputs, batch.outputs)))
            except Exception as exc:
                results.append(_infer_error(exc))
        return ITEMS_MODE, results


class _Failed:
    """A prediction that raised, kept in place of its result."""
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def request_accept(accept):
    """The accept handlers answer: the request's, or DEFAULT_ACCEPT when it is empty or ``*/*``."""
    accept = accept.strip()
    return DEFAULT_ACCEPT if not accept or accept == "*/*" else accept


def error_result(status, exc):
    """An INVOKE item's ``(status, "", message)`` for an exception: a BadInput's message as is, else
    ``"ExceptionType: message"``."""
    msg = str(exc) if isinstance(exc, BadInput) else error_message(exc)
    return status, "", msg.encode("utf-8")


def _infer_error(exc):
    """An INFER item's ``(status, message)`` for an exception (the model's errors are logged)."""
    if isinstance(exc, BadInput):
        return BAD_INPUT, str(exc)[:4000]
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return MODEL_ERROR, error_message(exc)


def name_list(values):
    """Names for a message: ``a, b`` (``none`` when there are none)."""
    return ", ".join(values) if values else "none"


def declared_order(inputs, declared):
    """Inputs in declared order (``declared`` maps a name to its position) when every name is declared, else as
    given."""
    if declared and len(inputs) > 1 and all(t.name in declared for t in inputs):
        return sorted(inputs, key=lambda t: declared[t.name])
    return inputs


def select_outputs(named, requested):
    """Pick the requested outputs (all when none) from ``[(name, value), ...]``; raises BadInput."""
    if not requested:
        return named
    produced = dict(named)
    missing = [name for name in requested if name not in produced]
    if missing:
        raise BadInput("the model has no output %r; its outputs are %s" % (missing[0], name_list(list(produced))))
    return [(name, produced[name]) for name in requested]
