"""XGBoost Boosters, from ``model.json``, ``model.ubj`` or ``xgboost-model`` (SageMaker's name)."""
import os
import pickle

import numpy as np

from .tabular import TabularRuntime


class XGBoostRuntime(TabularRuntime):
    """An ``xgboost.Booster``: rows in as a DMatrix, ``predict`` out."""

    name = "xgboost"
    platform = "xgboost"
    files = ("model.json", "model.ubj", "xgboost-model")
    cast = np.float32

    @staticmethod
    def claims(model):
        """Whether ``model`` is an XGBoost Booster."""
        return (type(model).__module__ or "").startswith("xgboost") and type(model).__name__ == "Booster"

    @staticmethod
    def load_file(path):
        """Load a Booster; ``xgboost-model`` may be JSON, UBJSON, the legacy binary format or a pickled Booster."""
        import xgboost
        booster = xgboost.Booster()
        if os.path.basename(path) == "xgboost-model":
            with open(path, "rb") as f:
                raw = f.read()
            if raw[:1] == b"\x80":
                return pickle.loads(raw)
            path = bytearray(raw)  # the buffer form detects the format itself
        booster.load_model(path)
        return booster

    def __init__(self, model):
        import xgboost
        self._dmatrix = xgboost.DMatrix
        super().__init__(model)

    def features(self):
        return self.model.num_features()

    def predict(self, data):
        return self.model.predict(data if isinstance(data, self._dmatrix) else self._dmatrix(data))

    def output_methods(self):
        return {"predict": self.predict}
