"""ML lifecycle use cases: walk-forward training, drift checks, and the canary steps.

Samples (training, evaluation and drift alike): one row per coin on every ``step_days``-th UTC
day (days since epoch divisible by ``step_days``, so every run samples the same calendar), with
features from :func:`cryptosmarttrader.domain.features.feature_frame` — the module the scan and
the ML agent use — and the label "max close within ``horizon_days`` reaches ``1 + threshold``
times today's close" (:func:`forward_gain_labels`; null until the horizon has passed). A coin is
eligible on a day when it reports a market cap, trades at least ``min_volume_usd`` a day on its
30-day mean, and has the core features the ML agent needs (``MlConfig.required``).

Training never reads a label that ends after ``train_end``: walk-forward test blocks of
``fold_days`` run from ``min_train_days`` after the first sample to ``train_end``; each block is
scored by a model fitted only on samples whose label window plus the embargo ends before the
block (:func:`purged_train_mask`); the final model is fitted on every known sample.

Canary evaluation scores the candidate and the incumbent on the same rows: eligible sample days
after the candidate's ``train_end`` + embargo whose label horizon has passed by ``asof`` —
out-of-sample for both (the incumbent was trained earlier). Features are deterministic, so this
equals the predictions a shadow deployment would have logged on those days.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.agents.ml_predictor import MlConfig, feature_matrix
from cryptosmarttrader.domain.drift import (
    DriftReference,
    DriftReport,
    DriftThresholds,
    assess_drift,
    calibration_check,
    profile,
)
from cryptosmarttrader.domain.evaluation import (
    auc,
    base_rate,
    brier,
    ece,
    forward_gain_labels,
    label_column,
    lift,
    precision_at_k,
    purged_train_mask,
    walk_forward_folds,
)
from cryptosmarttrader.domain.features import FEATURE_COLUMNS, FEATURE_LOOKBACK_DAYS, feature_frame
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.model_canary import (
    CanaryDecision,
    CanaryPolicy,
    FoldMetrics,
    ModelCard,
    ModelStage,
    ModelVersion,
    OosScore,
    SkillEvidence,
    judge,
    skill_gate,
)
from cryptosmarttrader.domain.skill_metrics import (
    Interval,
    block_bootstrap,
    block_length,
    per_date_precision_at_k,
)
from cryptosmarttrader.ports import MarketData, Metrics, Predictor, PredictorTrainer
from cryptosmarttrader.services.model_registry import (
    ArtifactLoader,
    ModelRegistryError,
    ModelRegistryService,
)

__all__ = [
    "CanaryService",
    "DriftService",
    "LifecycleError",
    "TrainConfig",
    "TrainedModel",
    "model_samples",
    "score_models",
    "train_walk_forward",
]

FloatArray = npt.NDArray[np.float64]
TOP_K = 20
DEFAULT_THRESHOLDS = DriftThresholds()
DEFAULT_POLICY = CanaryPolicy()
ELIGIBLE_MIN_VOLUME_USD = 100_000.0


class LifecycleError(ValueError):
    """The request cannot be served from the data available (the message says why)."""


def _day(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) // 86_400


def _date(day: int) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(day))).date()


# ------------------------------------------------------------------------------ samples
def model_samples(
    daily: pl.DataFrame,
    *,
    horizon_days: int,
    threshold: float,
    step_days: int,
    min_volume_usd: float = ELIGIBLE_MIN_VOLUME_USD,
) -> pl.DataFrame:
    """Eligible rows on the sampling calendar: ``symbol``, ``ts``, ``day``, ``label_end_day``,
    ``label`` (Float64, null until matured) and :data:`FEATURE_COLUMNS`."""
    frame = daily.sort("symbol", "ts")
    feats = feature_frame(frame)
    labels = forward_gain_labels(frame, horizon_days, [threshold]).select(
        "symbol",
        "ts",
        "label_end_day",
        pl.col(label_column(threshold)).cast(pl.Float64).alias("label"),
    )
    required = MlConfig().required
    return (
        feats.filter(pl.col("day") % step_days == 0)
        .join(labels, on=["symbol", "ts"], how="left")
        .join(frame.select("symbol", "ts", "market_cap"), on=["symbol", "ts"], how="left")
        .filter(
            (pl.col("market_cap") > 0)
            & (pl.col("log_volume_30d") >= math.log1p(min_volume_usd))
            & pl.all_horizontal(pl.col(c).is_not_null() for c in required)
        )
        .drop("market_cap")
        .sort("day", "symbol")
    )


def _metrics(rows: pl.DataFrame, prob: FloatArray) -> dict[str, float | None]:
    scored = rows.select("day", "label").with_columns(p=pl.Series(prob, dtype=pl.Float64))
    y = scored["label"].to_numpy().astype(np.float64)

    def clean(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 6)

    prec = precision_at_k(scored, "p", "label", TOP_K)
    rate = base_rate(scored, "label")
    return {
        "base_rate": clean(rate),
        "auc": clean(auc(prob, y)),
        "brier": clean(brier(prob, y)),
        "ece": clean(ece(prob, y)),
        "precision_at_k": clean(prec),
        "lift": clean(lift(prec, rate)),
    }


# trivial rankers the daily classifier's samples can score: name -> (feature, sign); the same
# rankers as the ranking evaluation's (domain/skill_metrics.py), the drawdown one over the 180
# days these samples carry
CLASSIFIER_TRIVIAL_RANKERS: Final[dict[str, tuple[str, float]]] = {
    "smallest_market_cap": ("log_market_cap", -1.0),
    "highest_volatility_30d": ("vol_30d", 1.0),
    "momentum_90d": ("ret_90d", 1.0),
    "largest_drawdown_180d": ("dd_180d", -1.0),
}


def classifier_skill(rows: pl.DataFrame, prob: FloatArray, cfg: TrainConfig) -> SkillEvidence:
    """The skill gate's evidence for a walk-forward-trained classifier, measured the way the
    ranking evaluation measures its model: per-date precision@k of the model's label on the
    out-of-sample rows, with a moving-block bootstrap 95 % interval, beside the trivial rankers
    (random and the size / volatility / momentum / drawdown ones) on the same rows. The gate
    then promotes it only if the interval's lower bound is above the best of them."""
    block = block_length(cfg.step_days, cfg.horizon_days)
    scored = rows.with_columns(
        p=pl.Series(prob, dtype=pl.Float64),
        trivial_random=pl.Series(
            np.random.default_rng(20210701).random(rows.height), dtype=pl.Float64
        ),
        **{
            f"trivial_{name}": pl.col(col).cast(pl.Float64) * sign
            for name, (col, sign) in CLASSIFIER_TRIVIAL_RANKERS.items()
        },
    )

    def figure(score: str) -> Interval:
        per_date = per_date_precision_at_k(scored, score, "label", TOP_K)
        return block_bootstrap(per_date["value"].to_numpy(), block, bounds=(0.0, 1.0))

    model = figure("p")
    trivial = {name: figure(f"trivial_{name}") for name in ("random", *CLASSIFIER_TRIVIAL_RANKERS)}
    valued = {k: v.value for k, v in trivial.items() if not math.isnan(v.value)}
    best = max(valued, key=lambda k: valued[k]) if valued else "random"
    days = rows["day"]

    def clean(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 6)

    return SkillEvidence(
        period=f"{_date(int(days.min())).isoformat()}..{_date(int(days.max())).isoformat()}",  # type: ignore[arg-type]
        metric=f"precision_at_{TOP_K} (gain >= {cfg.threshold:.0%} within {cfg.horizon_days} "
        "days, per date, walk-forward out of sample)",
        value=clean(model.value),
        ci_low=clean(model.ci_low),
        ci_high=clean(model.ci_high),
        best_trivial=best,
        best_trivial_value=clean(trivial[best].value),
        evaluation={
            "model": model.as_dict(),
            "trivial_rankers": {k: v.as_dict() for k, v in trivial.items()},
            "bootstrap_block_dates": block,
        },
    )


# ------------------------------------------------------------------------------ training
class TrainConfig(BaseModel):
    """Every training parameter; echoed in the model card."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str = "cst-daily-ml"
    train_end: date
    first_day: date | None = None  # earliest sample day (None: the data's first)
    horizon_days: int = Field(default=30, ge=1, le=365)
    threshold: float = Field(default=0.5, gt=0)
    step_days: int = Field(default=7, ge=1)
    fold_days: int = Field(default=91, ge=7)
    min_train_days: int = Field(default=365, ge=30)
    embargo_days: int = Field(default=7, ge=0)
    reference_days: int = Field(default=182, ge=7)  # drift reference: last days before train_end
    min_volume_usd: float = Field(default=ELIGIBLE_MIN_VOLUME_USD, ge=0)
    features: tuple[str, ...] = FEATURE_COLUMNS
    params: dict[str, Any] = Field(default_factory=dict)  # trainer hyperparameters (echoed)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        unknown = [f for f in self.features if f not in FEATURE_COLUMNS]
        if unknown:
            raise ValueError(
                f"unknown features {unknown}: the feature module makes {FEATURE_COLUMNS}"
            )
        if self.first_day is not None and self.first_day >= self.train_end:
            raise ValueError("first_day must be before train_end")
        return self


@dataclass(frozen=True)
class TrainedModel:
    predictor: Predictor
    card: ModelCard
    reference: DriftReference


def train_walk_forward(
    daily: pl.DataFrame,
    cfg: TrainConfig,
    trainer: PredictorTrainer,
    *,
    feature_hash: str,
    git_commit: str,
    created_at: datetime,
) -> TrainedModel:
    """Walk-forward (purge + embargo) metrics per fold, then the final model on every label
    known by ``train_end``. ``daily`` is ``DAILY_SCHEMA``; rows after ``train_end`` are dropped
    before anything is computed."""
    end_day = _day(cfg.train_end)
    data = daily.filter(pl.col("ts") // DAY_MS <= end_day)
    if data.is_empty():
        raise LifecycleError(f"no bars on or before train_end {cfg.train_end}")
    samples = model_samples(
        data,
        horizon_days=cfg.horizon_days,
        threshold=cfg.threshold,
        step_days=cfg.step_days,
        min_volume_usd=cfg.min_volume_usd,
    )
    if cfg.first_day is not None:
        samples = samples.filter(pl.col("day") >= _day(cfg.first_day))
    known = samples.filter(pl.col("label").is_not_null() & (pl.col("label_end_day") <= end_day))
    if known.height < 200 or known["label"].n_unique() < 2:
        raise LifecycleError(
            f"only {known.height} labelled samples by {cfg.train_end} (need >= 200, both outcomes)"
        )
    names = cfg.features
    x = feature_matrix(known, names)
    y = known["label"].to_numpy().astype(np.float64)
    day = known["day"].to_numpy().astype(np.int64)
    label_end = known["label_end_day"].to_numpy().astype(np.int64)
    first_test = int(day.min()) + cfg.min_train_days
    folds: list[FoldMetrics] = []
    oos_idx: list[npt.NDArray[np.int64]] = []
    oos_prob: list[FloatArray] = []
    for fold in walk_forward_folds(first_test, end_day - cfg.horizon_days, cfg.fold_days):
        test = (day >= fold.test_start_day) & (day <= fold.test_end_day)
        train = purged_train_mask(day, label_end, fold.test_start_day, cfg.embargo_days)
        if not test.any() or train.sum() < 200 or len(np.unique(y[train])) < 2:
            continue
        model = trainer.fit(x[train], y[train], names)
        prob = model.predict_proba(x[test])
        idx = np.flatnonzero(test)
        oos_idx.append(idx)
        oos_prob.append(prob)
        folds.append(
            FoldMetrics(
                test_start=_date(fold.test_start_day),
                test_end=_date(fold.test_end_day),
                n_train=int(train.sum()),
                n_test=int(test.sum()),
                **_metrics(known[idx], prob),
            )
        )
    if not folds:
        raise LifecycleError(
            f"no walk-forward fold fits between {_date(first_test)} and {cfg.train_end}: "
            "start earlier or shorten min_train_days"
        )
    all_idx = np.concatenate(oos_idx)
    all_prob = np.concatenate(oos_prob)
    oos = FoldMetrics(
        test_start=folds[0].test_start,
        test_end=folds[-1].test_end,
        n_train=len(y),
        n_test=int(all_idx.size),
        **_metrics(known[all_idx], all_prob),
    )
    final = trainer.fit(x, y, names)
    ref_rows = samples.filter(pl.col("day") > end_day - cfg.reference_days)
    ref_pred = final.predict_proba(feature_matrix(ref_rows, names))
    ref_days = sorted(ref_rows["day"].unique().to_list())
    reference = DriftReference(
        features={
            n: profile(ref_rows[n].cast(pl.Float64).fill_null(np.nan).to_numpy()) for n in names
        },
        prediction=profile(ref_pred),
        oos_ece=oos.ece if oos.ece is not None else math.nan,
        oos_brier=oos.brier if oos.brier is not None else math.nan,
        window=(_date(ref_days[0]).isoformat(), _date(ref_days[-1]).isoformat()),
    )
    first_ts, last_ts = int(data["ts"].min()), int(data["ts"].max())  # type: ignore[arg-type]
    card = ModelCard(
        group=cfg.group,
        created_at=created_at,
        data_start=_date(first_ts // DAY_MS),
        data_end=_date(last_ts // DAY_MS),
        train_end=cfg.train_end,
        target=f"gain >= {cfg.threshold:.0%} within {cfg.horizon_days} days",
        horizon_days=cfg.horizon_days,
        threshold=cfg.threshold,
        step_days=cfg.step_days,
        embargo_days=cfg.embargo_days,
        features=names,
        feature_hash=feature_hash,
        params=cfg.model_dump(mode="json") | {"trainer": cfg.params},
        folds=tuple(folds),
        oos=oos,
        git_commit=git_commit,
        train_rows=len(y),
        skill=classifier_skill(known[all_idx], all_prob, cfg),
    )
    return TrainedModel(final, card, reference)


# ------------------------------------------------------------------------------ scoring
def score_models(rows: pl.DataFrame, predictors: Sequence[Predictor]) -> list[OosScore]:
    """Each predictor's out-of-sample score on the same labelled ``rows``."""
    y = rows["label"].to_numpy().astype(np.float64)
    out: list[OosScore] = []
    for predictor in predictors:
        p = predictor.predict_proba(feature_matrix(rows, predictor.feature_names))
        scored = rows.select("day", "label").with_columns(p=pl.Series(p, dtype=pl.Float64))
        out.append(
            OosScore(
                n=rows.height,
                auc=auc(p, y),
                brier=brier(p, y),
                precision_at_k=precision_at_k(scored, "p", "label", TOP_K),
            )
        )
    return out


@dataclass(frozen=True)
class _Universe:
    market: MarketData
    excluded: Collection[str]

    def samples(self, card: ModelCard, asof: datetime, span_days: int) -> pl.DataFrame:
        """Model samples for ``card`` with ``day`` in ``(asof - span_days, asof]``, labels
        known by ``asof`` only (nothing after ``asof`` is read)."""
        lookback = span_days + FEATURE_LOOKBACK_DAYS + 1
        daily = self.market.daily_universe(asof, lookback)
        daily = daily.filter(~pl.col("symbol").is_in(list(self.excluded)))
        if daily.is_empty():
            raise LifecycleError(f"no market data up to {asof.date()}")
        asof_day = int(asof.timestamp()) // 86_400
        return model_samples(
            daily.filter(pl.col("ts") // DAY_MS <= asof_day),
            horizon_days=card.horizon_days,
            threshold=card.threshold,
            step_days=card.step_days,
        ).filter(pl.col("day") > asof_day - span_days)


# ------------------------------------------------------------------------------ drift
@dataclass(frozen=True)
class DriftOutcome:
    version: ModelVersion
    report: DriftReport
    window: tuple[date, date]


@dataclass(frozen=True)
class DriftService:
    """Scheduled drift check of a version (default: production) as of a day."""

    registry: ModelRegistryService
    market: MarketData
    loader: ArtifactLoader
    metrics: Metrics
    excluded: Collection[str] = frozenset()
    window_days: int = 28
    thresholds: DriftThresholds = DEFAULT_THRESHOLDS

    def check(self, asof: datetime, version: int | None = None) -> DriftOutcome:
        target = self.registry.get(version) if version is not None else self.registry.production()
        if target is None:
            raise LifecycleError(f"{self.registry.registry.group} has no production version")
        card = target.card
        predictor = self.registry.load_predictor(target, self.loader)
        reference = self.registry.reference(target)
        universe = _Universe(self.market, self.excluded)
        span = self.window_days + card.horizon_days
        rows = universe.samples(card, asof, span)
        asof_day = int(asof.timestamp()) // 86_400
        current = rows.filter(pl.col("day") > asof_day - self.window_days)
        matured = rows.filter(
            (pl.col("day") <= asof_day - card.horizon_days)
            & (pl.col("label_end_day") <= asof_day)
            & pl.col("label").is_not_null()
        )
        names = card.features
        preds = predictor.predict_proba(feature_matrix(current, names))
        calibration = None
        if matured.height:
            calibration = calibration_check(
                predictor.predict_proba(feature_matrix(matured, names)),
                matured["label"].to_numpy().astype(np.float64),
                reference_ece=reference.oos_ece,
                reference_brier=reference.oos_brier,
            )
        report = assess_drift(
            reference,
            {n: current[n].cast(pl.Float64).fill_null(np.nan).to_numpy() for n in names},
            preds,
            calibration,
            self.thresholds,
        )
        self._emit(target, report)
        updated = self.registry.record_drift(
            target, report.blocks_promotion, "; ".join(report.alarms)
        )
        return DriftOutcome(
            updated, report, (_date(asof_day - self.window_days + 1), _date(asof_day))
        )

    def _emit(self, version: ModelVersion, report: DriftReport) -> None:
        dims = {"ModelGroup": version.group}
        psis = [f.psi for f in report.features if not math.isnan(f.psi)]
        kss = [f.ks for f in report.features if not math.isnan(f.ks)]
        if psis:
            self.metrics.add("ModelFeaturePsiMax", max(psis), "None", dims)
            self.metrics.add("ModelFeatureKsMax", max(kss), "None", dims)
        self.metrics.add("ModelFeatureDriftShare", report.drifted_share, "None", dims)
        if report.prediction is not None and not math.isnan(report.prediction.psi):
            self.metrics.add("ModelPredictionPsi", report.prediction.psi, "None", dims)
            self.metrics.add("ModelPredictionKs", report.prediction.ks, "None", dims)
        if report.calibration is not None and not math.isnan(report.calibration.ece):
            self.metrics.add("ModelCalibrationDecay", report.calibration.decay, "None", dims)
        self.metrics.add("ModelDriftAlarm", 1.0 if report.alarms else 0.0, "Count", dims)


# ------------------------------------------------------------------------------ canary
@dataclass(frozen=True)
class CanaryEvaluation:
    candidate: ModelVersion
    incumbent: ModelVersion | None
    decision: CanaryDecision
    scores: dict[str, dict[str, float]]
    window: tuple[date, date] | None


@dataclass(frozen=True)
class CanaryService:
    """The steps the model-canary state machine runs."""

    registry: ModelRegistryService
    market: MarketData
    loader: ArtifactLoader
    excluded: Collection[str] = frozenset()
    policy: CanaryPolicy = DEFAULT_POLICY
    actor: str = "model-canary"

    def start(self, number: int, stage: Literal["shadow", "canary"], reason: str) -> ModelVersion:
        version = self.registry.get(number)
        if stage == "shadow":
            return self.registry.move(version, ModelStage.SHADOW, reason, self.actor, 0.0)
        # capital only for a version promotion would accept: the skill gate first
        promotable, why = skill_gate(version.card.skill)
        if not promotable:
            raise LifecycleError(
                f"{version.label} gets no canary capital: fails the skill gate: {why}"
            )
        return self.registry.move(
            version, ModelStage.CANARY, reason, self.actor, self.policy.capital_fraction
        )

    def evaluate(self, number: int, asof: datetime) -> CanaryEvaluation:
        candidate = self.registry.get(number)
        incumbent = self.registry.production()
        if incumbent is not None and incumbent.version == number:
            raise LifecycleError(f"{candidate.label} is already in production")
        card = candidate.card
        asof_day = int(asof.timestamp()) // 86_400
        first = _day(card.train_end) + card.embargo_days + 1
        last = asof_day - card.horizon_days
        if last < first:
            decision = CanaryDecision(
                "rollback",
                (
                    f"no out-of-sample day has matured: labels after {card.train_end} end after "
                    f"{asof.date()}",
                ),
            )
            return CanaryEvaluation(candidate, incumbent, decision, {}, None)
        rows = _Universe(self.market, self.excluded).samples(card, asof, asof_day - first + 1)
        rows = rows.filter(
            (pl.col("day") <= last)
            & pl.col("label").is_not_null()
            & (pl.col("label_end_day") <= asof_day)
        )
        models = [self.registry.load_predictor(candidate, self.loader)]
        if incumbent is not None:
            models.append(self.registry.load_predictor(incumbent, self.loader))
        scores = score_models(rows, models) if rows.height else []
        cand = scores[0] if scores else OosScore(0, math.nan, math.nan, math.nan)
        inc = scores[1] if len(scores) > 1 else None
        decision = judge(cand, inc, drift_blocked=candidate.drift_blocked, policy=self.policy)
        table = {"candidate": _score_dict(cand)}
        if inc is not None:
            table["incumbent"] = _score_dict(inc)
        return CanaryEvaluation(candidate, incumbent, decision, table, (_date(first), _date(last)))

    def promote(self, number: int, reason: str) -> ModelVersion:
        try:
            return self.registry.promote(number, reason, self.actor)
        except ModelRegistryError as exc:
            raise LifecycleError(str(exc)) from exc

    def rollback(self, number: int, reason: str) -> ModelVersion:
        version = self.registry.get(number)
        if version.stage in (ModelStage.REJECTED, ModelStage.ARCHIVED):
            return version  # already out of the way: a retried rollback changes nothing
        return self.registry.move(version, ModelStage.REJECTED, reason, self.actor, 0.0)


def _score_dict(score: OosScore) -> dict[str, float]:
    return {
        "n": float(score.n),
        "auc": score.auc,
        "brier": score.brier,
        "precision_at_k": score.precision_at_k,
    }
