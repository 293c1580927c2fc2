"""scikit-learn models, and any other Python object with scikit-learn's ``predict``, from ``model.joblib`` or
``model.pkl``."""
import os
import pickle

from .tabular import TabularRuntime


class SKLearnRuntime(TabularRuntime):
    """A model with scikit-learn's API: ``predict`` (and ``predict_proba`` on INFER), ``n_features_in_``."""

    name = "sklearn"
    platform = "sklearn"
    files = ("model.joblib", "model.pkl")

    @staticmethod
    def load_file(path):
        """Load ``model.joblib`` with joblib, or ``model.pkl`` with joblib, else as a plain pickle."""
        try:
            import joblib
            return joblib.load(path)
        except Exception:
            if os.path.basename(path) == "model.joblib":
                raise
        with open(path, "rb") as f:  # a plain pickle, or no joblib installed
            return pickle.load(f)

    def features(self):
        return getattr(self.model, "n_features_in_", None)

    def predict(self, data):
        return self.model.predict(data)

    def output_methods(self):
        methods = {}
        for name in ("predict", "predict_proba"):
            try:
                method = getattr(self.model, name, None)
            except Exception:  # e.g. a property that raises
                method = None
            if callable(method):
                methods[name] = method
        return methods
