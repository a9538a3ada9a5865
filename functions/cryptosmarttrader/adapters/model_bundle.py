"""A fitted scan model on disk: ``ensemble.json`` (stacker weights, calibration, target, what it
was fitted on) and ``ml.xgb.json`` (the XGBoost booster the ML agent serves, evaluated with numpy at serving time).

Written by ``cst evaluate --save-model DIR``, read by ``cst scan --model DIR`` (or
``CST_MODEL_DIR``). A missing or damaged file is a clear error naming it, never a silent
fallback: the fallback (technical agent only) is the caller's explicit choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptosmarttrader.adapters.files import write_atomic
from cryptosmarttrader.adapters.sagemaker_predictor import TreeEnsemblePredictor
from cryptosmarttrader.domain.ensemble import EnsembleModel
from cryptosmarttrader.services.scoring import TrainedModel

ENSEMBLE_FILE = "ensemble.json"
BOOSTER_FILE = "ml.xgb.json"
FORMAT_VERSION = 1


class ModelBundleError(ValueError):
    """The model directory is missing, incomplete or damaged."""


def save_bundle(
    directory: Path,
    ensemble: EnsembleModel,
    booster_json: bytes,
    feature_names: tuple[str, ...],
    meta: Mapping[str, Any],
) -> None:
    """``booster_json``: the XGBoost booster in its JSON format (``XgbPredictor.to_bytes``)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / BOOSTER_FILE, booster_json)
    doc = {
        "format": FORMAT_VERSION,
        "ensemble": ensemble.to_dict(),
        "feature_names": list(feature_names),
        "meta": dict(meta),
    }
    write_atomic(directory / ENSEMBLE_FILE, json.dumps(doc, indent=1, sort_keys=True).encode())


def load_bundle(directory: Path) -> TrainedModel:
    doc_path, booster_path = directory / ENSEMBLE_FILE, directory / BOOSTER_FILE
    for path in (doc_path, booster_path):
        if not path.is_file():
            raise ModelBundleError(
                f"model file missing: {path} (write it with cst evaluate --save-model)"
            )
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT_VERSION:
            raise ModelBundleError(f"{doc_path}: unknown format {doc.get('format')!r}")
        ensemble = EnsembleModel.from_dict(doc["ensemble"])
        names = tuple(str(n) for n in doc["feature_names"])
        # numpy tree evaluator (equal to xgboost within 1e-6): no xgboost needed where it serves
        predictor = TreeEnsemblePredictor.from_bytes(booster_path.read_bytes(), names)
    except ModelBundleError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelBundleError(f"{directory}: damaged model bundle: {exc}") from exc
    return TrainedModel(ensemble=ensemble, predictor=predictor, meta=dict(doc.get("meta", {})))
