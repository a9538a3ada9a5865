"""SageMaker serving functions for the XGBoost container (script mode), self-contained.

The endpoint's ``model.tar.gz`` holds ``model.json`` (xgboost JSON) and ``card.json`` (the
model card, whose ``features`` list fixes the column order). Only xgboost and numpy are needed,
both in the SageMaker XGBoost image, so this file runs there without the project package.

Wire format (``adapters/sagemaker_predictor.py`` is the client): ``text/csv`` rows, no header,
the card's feature columns in order, an empty field for a missing value; the response is one
probability per line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import xgboost as xgb

CONTENT_TYPE = "text/csv"
FloatArray = npt.NDArray[np.float64]


class Model:
    def __init__(self, booster: xgb.Booster, features: list[str]) -> None:
        self.booster = booster
        self.features = features


def model_fn(model_dir: str) -> Model:
    folder = Path(model_dir)
    card: dict[str, Any] = json.loads((folder / "card.json").read_text())
    booster = xgb.Booster()
    booster.load_model(str(folder / "model.json"))
    booster.set_param({"nthread": 1})
    return Model(booster, list(card["features"]))


def input_fn(request_body: bytes | str, request_content_type: str) -> FloatArray:
    if request_content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise ValueError(f"unsupported content type {request_content_type!r}: send {CONTENT_TYPE}")
    text = request_body.decode() if isinstance(request_body, bytes) else request_body
    rows = [
        [float(v) if v.strip() else np.nan for v in line.split(",")]
        for line in text.splitlines()
        if line.strip()
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)


def predict_fn(input_data: FloatArray, model: Model) -> FloatArray:
    if input_data.shape[0] and input_data.shape[1] != len(model.features):
        raise ValueError(
            f"expected {len(model.features)} columns ({','.join(model.features)}), "
            f"got {input_data.shape[1]}"
        )
    if input_data.shape[0] == 0:
        return np.empty(0)
    matrix = xgb.DMatrix(input_data, feature_names=model.features, missing=np.nan)
    return np.asarray(model.booster.predict(matrix), dtype=np.float64)


def output_fn(prediction: FloatArray, accept: str) -> str:
    if accept.split(";")[0].strip() not in (CONTENT_TYPE, "*/*"):
        raise ValueError(f"unsupported accept {accept!r}: {CONTENT_TYPE} only")
    return "".join(f"{p!r}\n" for p in prediction.tolist())
