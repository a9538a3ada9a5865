"""Drift detection: PSI and KS of features and predictions against the training reference, and
calibration decay on realised outcomes. Pure numpy; no I/O.

A :class:`DistributionProfile` summarises one variable of the training reference (its missing
rate, 101 quantiles and the fractions of the reference in its decile bins), so a model version
stores a few kilobytes instead of its training rows, and the same profile serves both tests:

* PSI (population stability index) over the reference's decile bins plus a "missing" bin:
  ``sum((cur - ref) * ln(cur / ref))``, fractions floored at :data:`PSI_FLOOR`. Rule of thumb:
  < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift that needs action.
* KS: the largest gap between the reference CDF (read from its quantiles, so resolution
  1 / (quantiles - 1) = 0.01) and the current empirical CDF, over finite values only. With
  thousands of rows any gap is "significant", so the statistic itself (an effect size) is the
  threshold, not a p-value.

Cross-sectional market features (the day's median return, breadth) take one value per day, so
over a short window their distribution is a handful of points and drifts by construction. A
single drifting feature therefore never raises the alarm on its own: the alarm needs a share of
the features (``max_drifted_share``), a prediction shift, or calibration decay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.evaluation import brier, ece
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "PSI_FLOOR",
    "CalibrationCheck",
    "DistributionProfile",
    "DriftReference",
    "DriftReport",
    "DriftThresholds",
    "VariableDrift",
    "assess_drift",
    "calibration_check",
    "ks_statistic",
    "profile",
    "psi",
]

FloatArray = npt.NDArray[np.float64]

PSI_FLOOR: Final = 1e-4  # an empty bin counts as this fraction (PSI is infinite otherwise)
DEFAULT_QUANTILES: Final = 101
DEFAULT_BINS: Final = 10


class DistributionProfile(BaseModel):
    """The reference distribution of one variable (JSON-serialisable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(ge=0)  # rows in the reference, missing included
    missing_rate: float = Field(ge=0, le=1)
    quantiles: tuple[float, ...]  # values at probabilities linspace(0, 1, len(quantiles))
    edges: tuple[float, ...]  # interior PSI bin edges (bins: (-inf, e0], (e0, e1], ...)
    fractions: tuple[float, ...]  # fraction of the finite reference values in each bin

    @model_validator(mode="after")
    def _shape(self) -> DistributionProfile:
        if self.quantiles and len(self.fractions) != len(self.edges) + 1:
            raise ValueError("fractions must hold one entry per bin (len(edges) + 1)")
        if any(b < a for a, b in zip(self.quantiles, self.quantiles[1:], strict=False)):
            raise ValueError("quantiles must be non-decreasing")
        return self


def _as_array(values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DomainError(f"expected a 1-d array, got shape {arr.shape}")
    return arr


def _bin_fractions(finite: FloatArray, edges: FloatArray) -> FloatArray:
    if finite.size == 0:
        return np.zeros(edges.size + 1)
    idx = np.searchsorted(edges, finite, side="left")
    counts = np.bincount(idx, minlength=edges.size + 1).astype(np.float64)
    return counts / finite.size


def profile(
    values: npt.ArrayLike, *, quantiles: int = DEFAULT_QUANTILES, bins: int = DEFAULT_BINS
) -> DistributionProfile:
    """Summarise the reference ``values`` (NaN = missing)."""
    if quantiles < 2 or bins < 2:
        raise DomainError("profile needs at least 2 quantiles and 2 bins")
    arr = _as_array(values)
    finite = arr[np.isfinite(arr)]
    missing = 1.0 - finite.size / arr.size if arr.size else 0.0
    if finite.size == 0:
        return DistributionProfile(
            n=int(arr.size), missing_rate=missing, quantiles=(), edges=(), fractions=()
        )
    qs = np.quantile(finite, np.linspace(0.0, 1.0, quantiles))
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    return DistributionProfile(
        n=int(arr.size),
        missing_rate=float(missing),
        quantiles=tuple(float(q) for q in qs),
        edges=tuple(float(e) for e in edges),
        fractions=tuple(float(f) for f in _bin_fractions(finite, edges)),
    )


def psi(reference: DistributionProfile, current: npt.ArrayLike) -> float:
    """PSI of ``current`` against the reference bins plus a missing-value bin (NaN if empty)."""
    arr = _as_array(current)
    if arr.size == 0:
        return math.nan
    finite = arr[np.isfinite(arr)]
    cur_missing = 1.0 - finite.size / arr.size
    edges = np.asarray(reference.edges, dtype=np.float64)
    if reference.quantiles:
        ref_bins = np.asarray(reference.fractions) * (1.0 - reference.missing_rate)
        cur_bins = _bin_fractions(finite, edges) * (1.0 - cur_missing)
    else:  # the reference was all missing: only the missing bin is comparable
        ref_bins = np.zeros(1)
        cur_bins = np.asarray([1.0 - cur_missing])
    ref = np.maximum(np.append(ref_bins, reference.missing_rate), PSI_FLOOR)
    cur = np.maximum(np.append(cur_bins, cur_missing), PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _reference_cdf(reference: DistributionProfile, x: FloatArray) -> FloatArray:
    q = np.asarray(reference.quantiles, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, q.size)
    # P(ref <= x): the highest probability whose quantile is <= x (0 below the minimum)
    idx = np.searchsorted(q, x, side="right") - 1
    out: FloatArray = np.where(idx >= 0, probs[np.clip(idx, 0, q.size - 1)], 0.0)
    return out


def ks_statistic(reference: DistributionProfile, current: npt.ArrayLike) -> float:
    """Two-sample KS distance over finite values (NaN when either side has none)."""
    arr = _as_array(current)
    finite = np.sort(arr[np.isfinite(arr)])
    if finite.size == 0 or not reference.quantiles:
        return math.nan
    q = np.asarray(reference.quantiles, dtype=np.float64)
    points = np.union1d(finite, q)
    cur_cdf = np.searchsorted(finite, points, side="right") / finite.size
    cur_left = np.searchsorted(finite, points, side="left") / finite.size
    ref_cdf = _reference_cdf(reference, points)
    ref_left = _reference_cdf(reference, np.nextafter(points, -np.inf))
    return float(max(np.max(np.abs(cur_cdf - ref_cdf)), np.max(np.abs(cur_left - ref_left))))


# ---------------------------------------------------------------------------- calibration
@dataclass(frozen=True, slots=True)
class CalibrationCheck:
    """Calibration on realised outcomes against the reference (out-of-sample) calibration."""

    n: int
    ece: float
    brier: float
    reference_ece: float
    reference_brier: float

    @property
    def decay(self) -> float:
        """How much the expected calibration error grew (positive = worse than at training)."""
        return self.ece - self.reference_ece


def calibration_check(
    prob: npt.ArrayLike,
    outcome: npt.ArrayLike,
    *,
    reference_ece: float,
    reference_brier: float,
    bins: int = 10,
) -> CalibrationCheck:
    """ECE and Brier of ``prob`` on ``outcome`` (0/1; NaN rows ignored). Pass only rows whose
    label horizon has passed: an immature label is unknown, not a miss."""
    p, y = _as_array(prob), _as_array(outcome)
    if p.shape != y.shape:
        raise DomainError(f"probabilities {p.shape} and outcomes {y.shape} differ in shape")
    ok = np.isfinite(p) & np.isfinite(y)
    if np.any((y[ok] != 0) & (y[ok] != 1)):
        raise DomainError("outcomes must be 0 or 1")
    n = int(ok.sum())
    return CalibrationCheck(
        n=n,
        ece=ece(p[ok], y[ok], bins) if n else math.nan,
        brier=brier(p[ok], y[ok]) if n else math.nan,
        reference_ece=reference_ece,
        reference_brier=reference_brier,
    )


# ---------------------------------------------------------------------------- assessment
class DriftReference(BaseModel):
    """What a model version stores for drift checks: its training-reference profiles."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: dict[str, DistributionProfile]
    prediction: DistributionProfile
    oos_ece: float  # walk-forward out-of-sample calibration at training time
    oos_brier: float
    window: tuple[str, str]  # ISO dates of the reference rows (first, last)


class DriftThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_psi: float = Field(default=0.25, gt=0)
    feature_ks: float = Field(default=0.2, gt=0, le=1)
    max_drifted_share: float = Field(default=0.3, gt=0, le=1)
    prediction_psi: float = Field(default=0.25, gt=0)
    prediction_ks: float = Field(default=0.2, gt=0, le=1)
    calibration_decay: float = Field(default=0.05, gt=0)
    min_rows: int = Field(default=200, ge=1)  # fewer current rows: not assessed (no alarm)


DEFAULT_THRESHOLDS: Final = DriftThresholds()


@dataclass(frozen=True, slots=True)
class VariableDrift:
    name: str
    n: int
    psi: float
    ks: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    features: tuple[VariableDrift, ...]
    prediction: VariableDrift | None
    calibration: CalibrationCheck | None
    alarms: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def blocks_promotion(self) -> bool:
        return bool(self.alarms)

    @property
    def drifted_share(self) -> float:
        assessed = [f for f in self.features if not math.isnan(f.psi)]
        return sum(f.drifted for f in assessed) / len(assessed) if assessed else 0.0

    @property
    def status(self) -> Literal["alarm", "ok"]:
        return "alarm" if self.alarms else "ok"


def _variable(
    name: str, ref: DistributionProfile, cur: FloatArray, psi_max: float, ks_max: float
) -> VariableDrift:
    p, d = psi(ref, cur), ks_statistic(ref, cur)
    drifted = (not math.isnan(p) and p > psi_max) or (not math.isnan(d) and d > ks_max)
    return VariableDrift(name, int(cur.size), p, d, drifted)


def assess_drift(
    reference: DriftReference,
    features: Mapping[str, npt.ArrayLike],
    predictions: npt.ArrayLike,
    calibration: CalibrationCheck | None,
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS,
) -> DriftReport:
    """Compare the current window with the reference; list every alarm with its reason."""
    missing: Sequence[str] = [f for f in reference.features if f not in features]
    if missing:
        raise DomainError(f"current window lacks reference features {missing}")
    t = thresholds
    preds = _as_array(predictions)
    alarms: list[str] = []
    notes: list[str] = []
    rows = preds.size
    per_feature = tuple(
        _variable(name, prof, _as_array(features[name]), t.feature_psi, t.feature_ks)
        for name, prof in reference.features.items()
    )
    prediction = _variable(
        "prediction", reference.prediction, preds, t.prediction_psi, t.prediction_ks
    )
    if rows < t.min_rows:
        notes.append(f"only {rows} current rows (< {t.min_rows}): features not assessed")
    else:
        drifted = [f.name for f in per_feature if f.drifted]
        share = len(drifted) / len(per_feature) if per_feature else 0.0
        if share > t.max_drifted_share:
            alarms.append(
                f"{len(drifted)}/{len(per_feature)} features drifted (> "
                f"{t.max_drifted_share:.0%}): {', '.join(drifted)}"
            )
        elif drifted:
            notes.append(f"drifted below the share threshold: {', '.join(drifted)}")
        if prediction.drifted:
            alarms.append(
                f"prediction distribution shifted: PSI {prediction.psi:.3f}, KS {prediction.ks:.3f}"
            )
    if calibration is None or calibration.n < t.min_rows:
        notes.append("calibration not assessed: too few outcomes whose horizon has passed")
    elif calibration.decay > t.calibration_decay:
        alarms.append(
            f"calibration decayed: ECE {calibration.ece:.3f} vs {calibration.reference_ece:.3f} "
            f"at training (+{calibration.decay:.3f} > {t.calibration_decay})"
        )
    return DriftReport(per_feature, prediction, calibration, tuple(alarms), tuple(notes))
