"""A ranking model on disk, with the evaluation that judged it: ``ranker.json`` (the xgboost
``rank:*`` booster), ``ranking_model.json`` (signals, the isotonic calibration of the score's
within-day percentile to P(event), the event, and the walk-forward evaluation's summary).

Written by ``cst evaluate --save-model DIR``; read by ``cst model register-ranking`` (the
registry keeps the evaluation beside the model) and by the scan. Serving evaluates the trees with
numpy (no xgboost where it serves). A missing or damaged file is an error naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cryptosmarttrader.adapters.files import write_atomic
from cryptosmarttrader.adapters.sagemaker_predictor import _Tree, _tree
from cryptosmarttrader.domain.drift import DriftReference
from cryptosmarttrader.domain.ensemble import IsotonicCalibrator
from cryptosmarttrader.domain.rank_features import CANDIDATE_SIGNALS
from cryptosmarttrader.services.scoring import RankingModel
from cryptosmarttrader.services.skill_evaluation import (
    SkillResult,
    drift_reference,
    ranking_feature_hash,
)

__all__ = [
    "RANKER_FILE",
    "RankingBundleError",
    "TreeRanker",
    "artifact_model",
    "bundle_artifact",
    "bundle_evaluation",
    "bundle_reference",
    "is_ranking_bundle",
    "load_ranking_bundle",
    "ranking_model_from_bytes",
    "save_ranking_bundle",
    "write_bundle_from_artifact",
]

RANKER_FILE = "ranker.json"
MODEL_FILE = "ranking_model.json"
REFERENCE_FILE = "reference.json"
FORMAT_VERSION = 1
FloatArray = npt.NDArray[np.float64]


class RankingBundleError(ValueError):
    """The ranking model directory is missing, incomplete or damaged."""


class TreeRanker:
    """The booster's margin (its intercept plus the sum of leaves, in float32: exactly what
    xgboost predicts) with numpy: it orders coins within a day."""

    def __init__(self, raw: bytes, feature_names: tuple[str, ...]) -> None:
        learner = json.loads(raw)["learner"]
        objective = learner["objective"]["name"]
        if not str(objective).startswith("rank:"):
            raise ValueError(f"not a ranking model: objective {objective}")
        if int(learner["learner_model_param"]["num_feature"]) != len(feature_names):
            raise ValueError("feature count does not match the bundle's signals")
        self._trees: list[_Tree] = [_tree(t) for t in learner["gradient_booster"]["model"]["trees"]]
        # a ranking objective's link is the identity: the intercept is the starting margin,
        # in float32 as xgboost adds the leaves to it
        params = learner["learner_model_param"]
        self._base = np.float32(float(str(params.get("base_score", "0")).strip("[]")))
        self._names = feature_names
        self._raw = raw

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def to_bytes(self) -> bytes:
        return self._raw

    def score(self, features: FloatArray) -> FloatArray:
        if features.ndim != 2 or features.shape[1] != len(self._names):
            raise ValueError(f"expected (n, {len(self._names)}) features, got {features.shape}")
        x = features.astype(np.float32)
        rows = np.arange(x.shape[0])
        margin = np.full(x.shape[0], self._base, dtype=np.float32)
        for tree in self._trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            for _ in range(tree.depth):  # one vectorized step per level
                inner = tree.left[node] != -1
                value = x[rows, np.where(inner, tree.feature[node], 0)]
                go_left = np.where(
                    np.isnan(value), tree.default_left[node], value < tree.threshold[node]
                )
                node = np.where(inner, np.where(go_left, tree.left[node], tree.right[node]), node)
            margin += tree.threshold[node]
        return margin.astype(np.float64)


def save_ranking_bundle(directory: Path, result: SkillResult) -> None:
    if result.ranker is None:
        raise RankingBundleError("the evaluation left the model out: nothing to save")
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / RANKER_FILE, result.ranker.to_bytes())
    cal = result.calibrator
    doc = {
        "format": FORMAT_VERSION,
        "feature_hash": ranking_feature_hash(result.signals),
        "signals": list(result.signals),
        "event": result.summary["calibration"]["event"],
        "calibration": None
        if cal is None
        else {"method": "isotonic", "x": list(cal.knots_x), "y": list(cal.knots_y)},
        "evaluation": result.summary,
    }
    write_atomic(directory / MODEL_FILE, json.dumps(doc, indent=1, sort_keys=True).encode())
    write_atomic(directory / REFERENCE_FILE, drift_reference(result).model_dump_json().encode())


def is_ranking_bundle(directory: Path) -> bool:
    return (directory / MODEL_FILE).is_file()


def ranking_model_from_bytes(ranker_json: bytes, doc_json: bytes) -> RankingModel:
    """The served model from the two files' bytes (a directory or a registry artifact)."""
    doc = json.loads(doc_json)
    if doc.get("format") != FORMAT_VERSION:
        raise RankingBundleError(f"unknown ranking model format {doc.get('format')!r}")
    signals = tuple(str(s) for s in doc["signals"])
    unknown = [s for s in signals if s not in CANDIDATE_SIGNALS]
    if unknown or not signals:
        raise RankingBundleError(f"the model reads signals this code does not make: {unknown}")
    if doc.get("feature_hash") != ranking_feature_hash(signals):
        raise RankingBundleError(
            "the model was built on other ranking feature definitions than this code's "
            "(domain/rank_features.py changed): re-run cst evaluate --save-model"
        )
    cal = doc.get("calibration")
    calibrator = (
        None
        if cal is None
        else IsotonicCalibrator(
            tuple(float(v) for v in cal["x"]), tuple(float(v) for v in cal["y"])
        )
    )
    evaluation = dict(doc["evaluation"])
    cfg = evaluation.get("config", {})
    return RankingModel(
        ranker=TreeRanker(ranker_json, tuple(f"{s}_pct" for s in signals)),
        calibrator=calibrator,
        signals=signals,
        event=str(doc["event"]),
        evaluation=evaluation,
        top_n=int(cfg.get("top_n", 200)),
        min_volume_usd=float(cfg.get("min_volume_usd", 100_000.0)),
        gate_days=int(cfg.get("lookback_days", 260)),
    )


def load_ranking_bundle(directory: Path) -> RankingModel:
    doc_path, ranker_path = directory / MODEL_FILE, directory / RANKER_FILE
    for path in (doc_path, ranker_path):
        if not path.is_file():
            raise RankingBundleError(
                f"model file missing: {path} (write it with cst evaluate --save-model)"
            )
    try:
        return ranking_model_from_bytes(ranker_path.read_bytes(), doc_path.read_bytes())
    except RankingBundleError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise RankingBundleError(f"{directory}: damaged ranking bundle: {exc}") from exc


# ------------------------------------------------------------------------------ registry
def bundle_reference(directory: Path) -> DriftReference:
    path = directory / REFERENCE_FILE
    try:
        return DriftReference.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise RankingBundleError(f"{path}: missing or damaged drift reference ({exc})") from exc


def bundle_evaluation(directory: Path) -> dict[str, Any]:
    return dict(json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))["evaluation"])


def bundle_artifact(directory: Path) -> bytes:
    """The two files as one registry artifact (JSON: the booster text and the model document),
    so the registry keeps the evaluation beside the model, byte for byte."""
    load_ranking_bundle(directory)  # refuse a damaged bundle before it is registered
    return json.dumps(
        {
            "ranker": (directory / RANKER_FILE).read_text(encoding="utf-8"),
            "model": (directory / MODEL_FILE).read_text(encoding="utf-8"),
        }
    ).encode()


def _artifact_files(artifact: bytes) -> tuple[str, str]:
    try:
        doc = json.loads(artifact)
        return str(doc["ranker"]), str(doc["model"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RankingBundleError(f"not a ranking model artifact: {exc}") from exc


def artifact_model(artifact: bytes) -> RankingModel:
    """The served model straight from a registry artifact (the deployed scan)."""
    ranker, model = _artifact_files(artifact)
    return ranking_model_from_bytes(ranker.encode(), model.encode())


def write_bundle_from_artifact(directory: Path, artifact: bytes) -> RankingModel:
    """Lay a registry artifact out as a bundle directory (what the scan serves)."""
    ranker, model = _artifact_files(artifact)
    served = ranking_model_from_bytes(ranker.encode(), model.encode())
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / RANKER_FILE, ranker.encode())
    write_atomic(directory / MODEL_FILE, model.encode())
    return served
