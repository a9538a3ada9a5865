"""XGBoost in-process implementation of the ``Predictor`` / ``PredictorTrainer`` ports.

The only module that imports xgboost. Deterministic: fixed seed, ``hist`` trees, fixed thread
count, so the same rows give the same model. Models serialize to xgboost's JSON (UBJ-free) bytes,
the format the SageMaker XGBoost container also reads.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt


def _import_xgboost_core() -> ModuleType:
    """``import xgboost`` without its scikit-learn wrappers (``XGBClassifier`` and friends).

    xgboost imports scikit-learn (and with it scipy.stats and pandas) when it is installed, only
    to base its estimator classes on it: about 1.5 s of CPU in every process that trains or
    scores (`cst evaluate`, `cst scan --model`, `cst model train` and its ml/train.py), none of
    which uses those classes. The import is made with scikit-learn hidden; xgboost then defines
    its placeholders, and the booster, ``DMatrix`` and ``train`` are the same code either way.
    A process that had already imported scikit-learn keeps it; nothing stops a later import.
    """
    hide = "sklearn" not in sys.modules and "xgboost" not in sys.modules
    if hide:
        sys.modules["sklearn"] = None  # type: ignore[assignment]  # import → ImportError
    try:
        import xgboost
    finally:
        if hide:
            del sys.modules["sklearn"]
    return xgboost


if TYPE_CHECKING:
    import xgboost as xgb
else:
    xgb = _import_xgboost_core()

__all__ = ["XgbPredictor", "XgbRankTrainer", "XgbRanker", "XgbTrainer"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Booster:
    """A fitted booster and the feature names it was trained on, stored as xgboost's JSON."""

    booster: xgb.Booster
    feature_names: tuple[str, ...]

    def _predict(self, features: FloatArray, *, margin: bool) -> FloatArray:
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected (n, {len(self.feature_names)}) features, got {features.shape}"
            )
        if features.shape[0] == 0:
            return np.empty(0)
        matrix = xgb.DMatrix(
            features, feature_names=list(self.feature_names), missing=np.nan, nthread=1
        )
        return np.asarray(self.booster.predict(matrix, output_margin=margin), dtype=np.float64)

    def to_bytes(self) -> bytes:
        return bytes(self.booster.save_raw(raw_format="json"))

    @classmethod
    def from_bytes(cls, raw: bytes, feature_names: tuple[str, ...]) -> Self:
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return cls(booster, feature_names)


@dataclass(frozen=True)
class XgbPredictor(_Booster):
    """A fitted classifier: probabilities of the positive outcome."""

    def predict_proba(self, features: FloatArray) -> FloatArray:
        return self._predict(features, margin=False)


def _default_params() -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "tree_method": "hist",
        "max_depth": 4,
        "eta": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 20.0,
        "lambda": 5.0,
        "seed": 7,
    }


@dataclass(frozen=True)
class XgbTrainer:
    """Fits a gradient-boosted tree classifier; ``params`` override the defaults."""

    rounds: int = 200
    # one thread by default, for the trees and for building the DMatrix: OpenMP threads
    # spin-wait, which collapses throughput on a shared 2-core machine (measured: 40 rounds
    # 0.18 s with 1 thread vs 3.2 s with 2 under load; a DMatrix of 60k x 20 costs 3-4x the CPU
    # with every core); scoring builds its DMatrix on one thread too
    nthread: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def fit(
        self, features: FloatArray, labels: FloatArray, feature_names: tuple[str, ...]
    ) -> XgbPredictor:
        if features.shape != (labels.shape[0], len(feature_names)):
            raise ValueError(
                f"features {features.shape} do not match labels {labels.shape} "
                f"and {len(feature_names)} names"
            )
        if labels.size == 0 or labels.min() == labels.max():
            raise ValueError("training needs both outcomes among the labels")
        matrix = xgb.DMatrix(
            features,
            label=labels,
            feature_names=list(feature_names),
            missing=np.nan,
            nthread=self.nthread,
        )
        params = _default_params() | {"nthread": self.nthread} | self.params
        booster = xgb.train(params, matrix, num_boost_round=self.rounds)
        return XgbPredictor(booster, feature_names)


def _rank_params() -> dict[str, Any]:
    return {
        "objective": "rank:ndcg",
        "eval_metric": "ndcg@20",
        "lambdarank_pair_method": "topk",
        "lambdarank_num_pair_per_sample": 8,
        "tree_method": "hist",
        "max_bin": 64,  # inputs are within-day percentiles: 64 bins lose nothing
        "max_depth": 3,
        "eta": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 20.0,
        "lambda": 5.0,
        "seed": 7,
    }


@dataclass(frozen=True)
class XgbRanker(_Booster):
    """A fitted learning-to-rank booster (``rank:ndcg``): scores order coins within a day."""

    def score(self, features: FloatArray) -> FloatArray:
        return self._predict(features, margin=True)


@dataclass(frozen=True)
class XgbRankTrainer:
    """Learning to rank with the decision day as the query group and graded labels."""

    rounds: int = 100
    nthread: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def fit(
        self,
        features: FloatArray,
        grades: FloatArray,
        groups: npt.NDArray[np.int64],
        feature_names: tuple[str, ...],
    ) -> XgbRanker:
        if features.shape != (grades.shape[0], len(feature_names)) or groups.shape != grades.shape:
            raise ValueError("features, grades and groups do not line up")
        if grades.size == 0 or grades.min() == grades.max():
            raise ValueError("ranking needs at least two different grades")
        if np.any(np.diff(groups) < 0):
            raise ValueError("rows must be sorted by group (decision day)")
        matrix = xgb.DMatrix(
            features,
            label=grades,
            qid=groups,
            feature_names=list(feature_names),
            missing=np.nan,
            nthread=self.nthread,
        )
        params = _rank_params() | {"nthread": self.nthread} | self.params
        booster = xgb.train(params, matrix, num_boost_round=self.rounds)
        return XgbRanker(booster, feature_names)
