"""The plain baseline: one joblib model behind FastAPI, served by uvicorn.

Run as ``BENCH_MODEL_PATH=/path/model.joblib uvicorn fastapi_app:app --workers 2``.
``POST /invocations`` takes ``{"instances": [[...], ...]}`` and answers ``{"predictions": [...]}``,
the same shapes Serval's invocations use. ``GET /ping`` answers 200 once the model is loaded.
"""

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["BENCH_MODEL_PATH"])
app = FastAPI()


class Invocation(BaseModel):
    instances: list[list[float]]


@app.get("/ping")
def ping():
    return {}


@app.post("/invocations")
def invocations(request: Invocation):
    predictions = model.predict(np.asarray(request.instances, dtype=np.float64))
    return {"predictions": predictions.tolist()}
