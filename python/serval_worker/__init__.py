"""Serval's Python model worker: loads one model package and serves batches over the worker protocol.

Run as ``python -m serval_worker --model-dir DIR [--fd 3]``; the protocol is docs/worker-protocol.md.

Modules: ``server`` runs the frame loop and keeps the loaded models in a table by model id (protocol version 2
serves one, ``server.DEFAULT_MODEL``); ``protocol`` encodes and decodes frames; ``codecs`` decodes and encodes
bodies by content type (``errors``: BadInput, error messages); ``signature`` has ``TensorSpec`` and reads
``model-settings.json``; ``runtimes`` has one runtime class per framework (scikit-learn, XGBoost, ONNX,
TorchScript) and one for custom code, all on ``runtimes.base.Runtime``, and ``runtimes.load`` picks the one for a
package, importing only its framework.

Model package rules (what users rely on):

* Without ``code/inference.py`` the first of ``model.joblib``, ``model.pkl``, ``model.json``,
  ``model.ubj``, ``xgboost-model``, ``model.onnx``, ``model.pt`` (TorchScript) is loaded and served by
  the default handler: JSON ``{"instances": [...]}``, ``{"inputs": [...]}`` or a bare list (rows, or one
  flat row), CSV rows, JSON Lines rows (a list of numbers or ``{"features": [...]}`` per line) or ``.npy``
  in; ``{"predictions": [...]}`` JSON, CSV or JSON Lines (one value per row and line) out. The rows of all
  items of a batch are stacked and predicted in one call ("stacked" batching).
* ``code/inference.py`` (imported as module ``inference`` with ``code/`` on ``sys.path``) may define the
  SageMaker hooks ``model_fn(model_dir)``, ``input_fn(input_data, content_type)``,
  ``predict_fn(data, model)``, ``output_fn(prediction, accept)`` or ``transform_fn(model, input_data,
  content_type, accept)``. Each is optional; missing ones fall back to the defaults above.
* With ``$SAGEMAKER_PROGRAM`` set (the SageMaker Python SDK's ``entry_point``), the hooks come from
  ``code/$SAGEMAKER_PROGRAM`` instead (imported as a module named after the file, ``code/`` on ``sys.path``);
  a missing script fails the load with a message naming the variable and listing ``code/``.
* ``input_data`` is a ``str`` (UTF-8 decoded) when the content type is ``application/json``,
  ``text/*`` or ``application/x-www-form-urlencoded``, and ``bytes`` otherwise. An empty content type
  is passed as ``"application/json"``; an empty or ``*/*`` accept as ``"application/json"`` (or
  ``$SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``).
* ``output_fn``/``transform_fn`` return ``bytes``, ``str`` or ``(body, content_type)``; without a content
  type the response's is the accept value.
* Batching with custom code: define ``predict_batch_fn(inputs, model) -> list`` (same length) and the
  worker calls ``input_fn`` per item, ``predict_batch_fn`` once per batch, then ``output_fn`` per item.
  If it raises or returns the wrong length, items are predicted one by one with ``predict_fn``.
  Without it every item is handled on its own ("per_item").
* Errors: an exception in ``input_fn`` (or default decoding) answers that item BAD_INPUT; in
  ``predict_fn``/``output_fn``/``transform_fn`` MODEL_ERROR, with ``"ExceptionType: message"``. Both are
  SageMaker's 424 ModelError (OriginalStatusCode 400 and 500); on the Open Inference Protocol 400 and 500.
* Open Inference Protocol requests (INFER frames) carry tensors, mapped into numpy arrays without a copy
  (read-only). The default handlers take numeric columns (``input-0``, or one input per feature) and
  produce ``predict``/``predict_proba`` (scikit-learn, XGBoost); ONNX goes by the session's names;
  TorchScript by ``input__0``/``output__0``. Custom code may define ``infer_fn(inputs, model) -> dict`` (named
  arrays of the whole batch in, named arrays out); else ``predict_fn`` gets the array (or the dict of arrays).
  The batch runs in one call; if it raises, items run one by one. ``model-settings.json`` (MLServer's format)
  declares ``inputs``/``outputs`` metadata, reported in READY. See docs/model-packages.md.
"""

__version__ = "0.1.0"
