"""Trains the quickstart model: a scikit-learn pipeline on the iris data set, saved as a model package folder."""
import os
import sys

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

out = sys.argv[1] if len(sys.argv) > 1 else "model"
os.makedirs(out, exist_ok=True)
X, y = load_iris(return_X_y=True)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
joblib.dump(model, os.path.join(out, "model.joblib"))
print(f"Saved {out}/model.joblib (accuracy on the training data: {model.score(X, y):.3f})")
