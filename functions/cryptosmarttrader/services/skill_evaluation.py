"""`cst evaluate`: does the ranking model pick early movers better than trivial rankers, on a
point-in-time universe, trading exactly the strategy's exit rule, after realistic costs?

Per decision day ``d`` (every ``step_days``):

1. **Universe** — the point-in-time top ``top_n`` (the latest monthly snapshot usable on ``d``,
   :mod:`cryptosmarttrader.domain.pit_universe`); before the first snapshot (training years
   only) the data's own top ``top_n`` by market cap that day, flagged as survivorship-biased.
2. **Series** — every CoinGecko series is cut at its breaks (token swaps, redenominations,
   broken feeds, duplicate days: :mod:`cryptosmarttrader.domain.series_breaks`); the scan's
   window (``lookback_days``) of the current segment goes through the quality gate, and the
   heuristic agents (technical, early mover) vote on what passes.
3. **Rows** — members with a clean bar on ``d``, a market cap and a 30-day mean volume of at
   least ``min_volume_usd``. Every ranker (model and trivial) is scored on exactly these rows.
4. **Outcome** — the exit rule (:mod:`cryptosmarttrader.domain.exit_rule`) on the closes after
   ``d``: the trade label (take profit reached), its graded relevance and its realized return;
   the touch-the-high "opportunity" label (max close within the horizon ≥ +100 %) beside it.

**Model** — one learning-to-rank model (decision day = query group, graded labels) on the
day-ranked features of :mod:`cryptosmarttrader.domain.rank_features`, refitted every
``refit_days`` on rows whose outcome had matured (plus the embargo) before the refit day
(purge). Signals are kept only if their out-of-sample per-date AUC over the matured decisions before
``train_end`` is above 0.5 (each date's direction decided from the dates matured before it);
the model itself is left out (the strategy stays in cash) unless its own walk-forward
per-date AUC on those decisions is above 0.5. The probability the gate reads is an isotonic (monotone, never
inverting) map from the score's within-day percentile to P(take profit), fitted on matured
out-of-sample predictions only.

Nothing decided on the reporting period: every choice (signals kept, hyper-parameters, exit
rule, costs) is fixed before it; refits inside it only use outcomes matured before each refit.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.agents.regime import Regime, regime_timeline
from cryptosmarttrader.domain.agents.registry import REGIME_STRATEGIES, UNKNOWN_REGIME_STRATEGY
from cryptosmarttrader.domain.agents.series_votes import votes_on_days
from cryptosmarttrader.domain.drift import DriftReference, profile
from cryptosmarttrader.domain.ensemble import IsotonicCalibrator, fit_calibrator
from cryptosmarttrader.domain.evaluation import auc, brier, ece, purged_train_mask
from cryptosmarttrader.domain.exit_rule import (
    ExitOutcomes,
    ExitRule,
    exit_outcomes,
    marked_paths,
    trade_grade,
)
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.model_canary import FoldMetrics, ModelCard, SkillEvidence
from cryptosmarttrader.domain.pit_universe import members_on
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.domain.rank_features import (
    CANDIDATE_SIGNALS,
    RANK_LOOKBACK_DAYS,
    coin_features,
    rank_within_day,
    ranked_name,
)
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.domain.skill_metrics import (
    TRIVIAL_RANKERS,
    Interval,
    block_bootstrap,
    block_length,
    non_overlapping_horizons,
    per_date_auc,
    per_date_precision_at_k,
    per_date_rank_ic,
    trivial_scores,
)
from cryptosmarttrader.domain.trade_book import Cohort, CostModel, simulate_book
from cryptosmarttrader.domain.universe import STABLE_BASES, WRAPPED_BASES
from cryptosmarttrader.ports import MarketData, Progress, Ranker, RankerTrainer
from cryptosmarttrader.services.progress import no_progress

__all__ = [
    "SkillConfig",
    "SkillError",
    "SkillResult",
    "evaluate_skill",
    "skill_evidence",
]

FloatArray = npt.NDArray[np.float64]
BTC = "bitcoin"
DELISTED_AFTER_DAYS = 7  # a series ending this long before the data's last day stopped trading
SURVIVORSHIP_NOTE = (
    "Rows before the first point-in-time snapshot use the CoinGecko list's own top-N by market "
    "cap: that list was chosen in 2025 from survivors, so those rows (training only) are biased "
    "upward. Reported rows use the point-in-time membership."
)


class SkillError(ValueError):
    """The evaluation cannot be run as asked (dates, data)."""


def _day(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) // 86_400


def _date(day: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(day))).date().isoformat()


class SkillConfig(BaseModel):
    """Every parameter of a run (echoed in the JSON so a figure can be reproduced). Defaults
    were fixed on data before 2021-07 (docs/evaluation.md says how)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train_end: date
    start: date
    end: date
    top_k: int = Field(default=20, ge=1)
    top_n: int = Field(default=200, ge=10)
    first_decision: date = date(2016, 1, 1)
    step_days: int = Field(default=7, ge=1)
    refit_days: int = Field(default=91, ge=7)
    min_train_days: int = Field(default=364, ge=28)
    embargo_days: int = Field(default=7, ge=0)
    lookback_days: int = Field(default=260, ge=200)  # the quality gate's and agents' window
    rebalance_days: int = Field(default=28, ge=1)
    min_volume_usd: float = Field(default=100_000.0, ge=0)
    equity_usd: float = Field(default=1_000_000.0, gt=0)
    confidence_gate: float = Field(default=0.8, ge=0, le=1)
    take_profit: float = Field(default=1.0, gt=0)
    stop_loss: float = Field(default=0.5, gt=0, lt=1)
    horizon_days: int = Field(default=180, ge=7, le=730)
    haircut: float = Field(default=0.3, ge=0, le=1)
    opportunity_gain: float = Field(default=1.0, gt=0)
    n_boot: int = Field(default=2000, ge=100)
    # ranking relevance: the exit rule's outcome classes, or the quintile of the trade's
    # return within its day
    grade: Literal["exit", "return_quintile"] = "return_quintile"
    # the event whose calibrated probability the gate reads: the take profit, or the trade
    # beating the median trade of its day's universe
    event: Literal["take_profit", "beats_median"] = "beats_median"

    @model_validator(mode="after")
    def _dates(self) -> SkillConfig:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if _day(self.start) <= _day(self.train_end) + self.embargo_days:
            raise ValueError(
                f"start {self.start} must be more than the embargo ({self.embargo_days} days) "
                f"after train_end {self.train_end}"
            )
        if self.first_decision >= self.train_end:
            raise ValueError("first_decision must be before train_end")
        return self

    @property
    def rule(self) -> ExitRule:
        return ExitRule(
            take_profit=self.take_profit,
            stop_loss=self.stop_loss,
            max_days=self.horizon_days,
            haircut=self.haircut,
        )


@dataclass
class SkillResult:
    summary: dict[str, Any]
    rows: pl.DataFrame  # every scored row (day, symbol, scores, outcomes)
    equity: pl.DataFrame  # day, strategy, equity
    ranker: Ranker | None  # the last refit (what a scan would serve; it trades only if
    # summary["decision"]["trade"])
    calibrator: IsotonicCalibrator | None
    signals: tuple[str, ...]
    cuts: list[dict[str, object]] = field(default_factory=list)


# ------------------------------------------------------------------------------ universe
def _universe(
    frame: pl.DataFrame, membership: pl.DataFrame | None, days: list[int], top_n: int
) -> pl.DataFrame:
    """``day``, ``symbol`` (null for unpriced members), ``member``, ``source``."""
    parts: list[pl.DataFrame] = []
    covered: set[int] = set()
    if membership is not None and membership.height:
        pit = members_on(membership, days, top_n)
        covered = set(pit["day"].unique().to_list())
        parts.append(
            pit.select(
                "day",
                pl.col("coingecko_id").alias("symbol"),
                "member",
                source=pl.lit("point_in_time"),
            )
        )
    rest = [d for d in days if d not in covered]
    if rest:
        top = (
            frame.filter(pl.col("day").is_in(rest) & (pl.col("market_cap") > 0))
            .with_columns(_r=pl.col("market_cap").rank("ordinal", descending=True).over("day"))
            .filter(pl.col("_r") <= top_n)
            .select("day", "symbol", member=pl.col("symbol"), source=pl.lit("data_top_n"))
        )
        parts.append(top)
    if not parts:
        raise SkillError("no universe on any decision day")
    return pl.concat(parts).sort("day", "member")


# ------------------------------------------------------------------------------ replay
def _gate(
    frame: pl.DataFrame, universe: pl.DataFrame, days: list[int], lookback: int
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Per decision day: the current segment's window of the members → quality gate. Returns
    the members passing it with a bar on the day (``day``, ``symbol``, ``ts``) and the gate's
    exclusion counts by code. The gate judges each day's window as the scan does."""
    cols = ["symbol", "ts", "close", "volume", "market_cap"]
    # grouped per symbol in time order once: each day's window keeps that order (the gate's)
    by_symbol = frame.select(*cols, "segment").sort("symbol", "ts")
    members = universe.filter(pl.col("symbol").is_not_null()).group_by("day").agg("symbol")
    member_map = dict(zip(members["day"].to_list(), members["symbol"].to_list(), strict=True))
    out: list[pl.DataFrame] = []
    excluded: dict[str, int] = {}
    for day in days:  # one step per decision day, vectorized over the universe
        names = member_map.get(day)
        if not names:
            continue
        asof_ms = day * DAY_MS
        window = by_symbol.filter(
            pl.col("ts").is_between((day - lookback) * DAY_MS + 1, asof_ms + DAY_MS - 1)
            & pl.col("symbol").is_in(names)
        ).filter(pl.col("segment") == pl.col("segment").max().over("symbol"))
        if window.is_empty():
            continue
        quality = check_daily(window.select(cols), asof_ms)
        for code, n in quality.totals().items():
            excluded[code] = excluded.get(code, 0) + n
        today = quality.clean.filter(pl.col("ts") // DAY_MS == day).select("symbol", "ts")
        if today.height:
            out.append(today.with_columns(day=pl.lit(day, pl.Int64)))
    if not out:
        raise SkillError("no decision day has any member passing the quality gate")
    return pl.concat(out).select("day", "symbol", "ts"), excluded


def agent_probabilities(frame: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """The heuristic agents' probabilities (``p_technical``, ``p_early_mover``; null where the
    agent abstains) for each row of ``at`` (``day``, ``symbol``, ``ts``: the coins voted on
    that day), from ``frame`` (the cut daily frame, ``segment`` per symbol): each series
    computed once and read on each decision day
    (:func:`~cryptosmarttrader.domain.agents.series_votes.votes_on_days`)."""
    votes = votes_on_days(frame, at, series=("symbol", "segment")).filter(
        pl.col("abstain_reason").is_null()
    )
    p = {
        agent: votes.filter(pl.col("agent") == agent).select(
            "day", "symbol", pl.col("probability").cast(pl.Float64).alias(f"p_{agent}")
        )
        for agent in ("technical", "early_mover")
    }
    return (
        at.select("day", "symbol")
        .join(p["technical"], on=["day", "symbol"], how="left")
        .join(p["early_mover"], on=["day", "symbol"], how="left")
    )


def _replay(
    frame: pl.DataFrame, universe: pl.DataFrame, days: list[int], lookback: int
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Per decision day the quality gate (:func:`_gate`); the agents once per series
    (:func:`agent_probabilities`). Returns the eligible rows (``day``, ``symbol``,
    ``p_technical``, ``p_early_mover``) and the gate's exclusion counts by code."""
    today, excluded = _gate(frame, universe, days, lookback)
    return agent_probabilities(frame, today).sort("day", "symbol"), excluded


# ------------------------------------------------------------------------------ outcomes
def _outcomes(
    frame: pl.DataFrame,
    rows: pl.DataFrame,
    cfg: SkillConfig,
    data_last_day: int,
) -> tuple[pl.DataFrame, FloatArray, FloatArray]:
    """Exit-rule outcome of buying each row at its decision-day close; the forward closes
    (rows × horizon) and entry prices for the portfolio. Rows whose horizon passes the data's
    last day get null outcomes (not yet known)."""
    rule = cfg.rule
    h = rule.max_days
    symbols = sorted(rows["symbol"].unique().to_list())
    col = {s: i for i, s in enumerate(symbols)}
    first = int(rows["day"].min())  # type: ignore[arg-type]
    n_days = data_last_day - first + 2
    px = frame.filter(pl.col("symbol").is_in(symbols) & (pl.col("day") >= first))
    prices = np.full((n_days + h, len(symbols)), np.nan)
    segs = np.full((n_days + h, len(symbols)), -1, dtype=np.int64)
    r_idx = px["day"].to_numpy() - first
    c_idx = px["symbol"].replace_strict(col, return_dtype=pl.Int64).to_numpy()
    prices[r_idx, c_idx] = px["close"].to_numpy()
    segs[r_idx, c_idx] = px["segment"].to_numpy()
    last_bar = (
        frame.filter(pl.col("symbol").is_in(symbols)).group_by("symbol").agg(pl.col("day").max())
    )
    last_day = np.full(len(symbols), data_last_day, dtype=np.int64)
    last_day[last_bar["symbol"].replace_strict(col, return_dtype=pl.Int64).to_numpy()] = last_bar[
        "day"
    ].to_numpy()
    rd = rows["day"].to_numpy().astype(np.int64)
    rc = rows["symbol"].replace_strict(col, return_dtype=pl.Int64).to_numpy()
    offs = np.arange(1, h + 1)
    fwd_rows = (rd - first)[:, None] + offs[None, :]
    forward = prices[fwd_rows, rc[:, None]]
    seg_now = segs[rd - first, rc]
    seg_fwd = segs[fwd_rows, rc[:, None]]
    other_segment = (seg_fwd >= 0) & (seg_fwd != seg_now[:, None])
    first_cut = np.where(other_segment.any(axis=1), np.argmax(other_segment, axis=1), h)
    delisted_at = last_day[rc] - rd  # offset of the series' last bar
    gone = last_day[rc] < data_last_day - DELISTED_AFTER_DAYS
    series_end = np.where(first_cut < h, first_cut, np.where(gone, delisted_at, h + 1))
    series_end = np.minimum(series_end, np.where(gone, delisted_at, h + 1))
    cut = (first_cut < h) & (first_cut <= np.where(gone, delisted_at, h + 1))
    entry = prices[rd - first, rc]
    mature = (rd + h <= data_last_day) | (series_end < h)
    out = exit_outcomes(rule, entry, forward, series_end=series_end, cut=cut)
    grade = trade_grade(out).astype(np.float64)
    fwd_max = np.nanmax(
        np.where(offs[None, :] <= np.minimum(series_end, h)[:, None], forward, np.nan),
        axis=1,
        initial=-np.inf,
    )
    opportunity = (fwd_max / entry - 1.0) >= cfg.opportunity_gain
    nan = np.full(rows.height, np.nan)
    reasons = [r.value if ok else None for r, ok in zip(out.reasons(), mature, strict=True)]
    frame_out = rows.with_columns(
        hit=pl.Series(np.where(mature, out.hit().astype(np.float64), nan)),
        grade=pl.Series(np.where(mature, grade, nan)),
        trade_ret=pl.Series(np.where(mature, out.ret, nan)),
        exit_reason=pl.Series(reasons, dtype=pl.String),
        exit_offset=pl.Series(out.exit_offset),
        opportunity=pl.Series(np.where(mature, opportunity.astype(np.float64), nan)),
        label_end_day=pl.Series(rd + h),
    )
    return frame_out, forward, entry


# ------------------------------------------------------------------------------ model
def _matrix(rows: pl.DataFrame, signals: tuple[str, ...]) -> FloatArray:
    return (
        rows.select(pl.col(ranked_name(s)).cast(pl.Float64).fill_null(np.nan) for s in signals)
        .to_numpy()
        .astype(np.float64)
    )


def _walk_forward_auc(per_date: pl.DataFrame, cfg: SkillConfig) -> tuple[float, int]:
    """Out-of-sample per-date AUC of a signal whose direction is re-decided on every date from
    the dates whose outcomes had matured before it (at least one horizon of dates): mean over
    dates of ``0.5 + sign * (auc - 0.5)``. Returns (value, dates used)."""
    if per_date.is_empty():
        return math.nan, 0
    days = per_date["day"].to_numpy().astype(np.int64)
    vals = per_date["value"].to_numpy().astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(vals - 0.5)])
    # dates whose outcome (day + horizon + embargo) is known before each date
    known = np.searchsorted(days + cfg.horizon_days + cfg.embargo_days, days, side="left")
    need = block_length(cfg.step_days, cfg.horizon_days)
    ok = known >= need
    if not ok.any():
        return math.nan, 0
    sign = np.where(csum[known] >= 0.0, 1.0, -1.0)
    oos = 0.5 + sign * (vals - 0.5)
    return float(oos[ok].mean()), int(ok.sum())


def _signal_selection(
    rows: pl.DataFrame, cfg: SkillConfig
) -> tuple[tuple[str, ...], dict[str, dict[str, float | None]]]:
    """Keep a signal only if its out-of-sample per-date AUC (:func:`_walk_forward_auc`) over
    every matured decision date before ``train_end`` is above 0.5."""
    t_end = _day(cfg.train_end)
    known = rows.filter(pl.col("hit").is_not_null() & (pl.col("label_end_day") <= t_end))
    kept: list[str] = []
    table: dict[str, dict[str, float | None]] = {}
    for s in CANDIDATE_SIGNALS:
        name = ranked_name(s)
        per = per_date_auc(known, name, "hit")
        value, n = _walk_forward_auc(per, cfg)
        raw = per["value"].mean() if per.height else None
        table[s] = {
            "auc_in_sample": None if raw is None else round(float(raw), 4),  # type: ignore[arg-type]
            "auc_out_of_sample": None if math.isnan(value) else round(value, 4),
            "dates": float(n),
        }
        if value > 0.5:
            kept.append(s)
    return tuple(kept), table


@dataclass
class _WalkForward:
    score: FloatArray
    prob: FloatArray
    ranker: Ranker | None
    calibrator: IsotonicCalibrator | None
    refits: list[dict[str, Any]]


def _percentile_in_day(rows: pl.DataFrame, score: FloatArray) -> FloatArray:
    pct = (
        rows.select("day")
        .with_columns(s=pl.Series(score, dtype=pl.Float64).fill_nan(None))
        .select(pl.col("s").rank("average").over("day") / pl.col("s").count().over("day"))
        .to_series()
        .fill_null(np.nan)
        .to_numpy()
    )
    out: FloatArray = np.asarray(pct, dtype=np.float64)
    return out


def _walk_forward(
    rows: pl.DataFrame, signals: tuple[str, ...], trainer: RankerTrainer, cfg: SkillConfig
) -> _WalkForward:
    """Refit every ``refit_days`` on matured rows only; score the rows up to the next refit;
    calibrate the within-day percentile on matured out-of-sample rows."""
    day = rows["day"].to_numpy().astype(np.int64)
    label_end = rows["label_end_day"].to_numpy().astype(np.int64)
    grade = rows["grade"].to_numpy().astype(np.float64)
    hit = rows["event"].to_numpy().astype(np.float64)
    x = _matrix(rows, signals)
    score = np.full(rows.height, np.nan)
    prob = np.full(rows.height, np.nan)
    first_day = int(day.min())
    first_refit = first_day + cfg.min_train_days + cfg.horizon_days + cfg.embargo_days
    last_day = int(day.max())
    refits: list[dict[str, Any]] = []
    ranker: Ranker | None = None
    calibrator: IsotonicCalibrator | None = None
    for refit in range(first_refit, last_day + 1, cfg.refit_days):  # ~4 per year
        train = purged_train_mask(day, label_end, refit, cfg.embargo_days) & np.isfinite(grade)
        block = (day >= refit) & (day < refit + cfg.refit_days)
        if not block.any():
            continue
        if train.sum() < 500 or len(np.unique(grade[train])) < 2:
            continue
        ranker = trainer.fit(x[train], grade[train], day[train], signals)
        score[block] = ranker.score(x[block])
        pct = _percentile_in_day(rows.filter(pl.Series(block)), score[block])
        # calibration on out-of-sample rows whose outcome matured before this refit
        oos = np.isfinite(score) & train & np.isfinite(hit) & (day < refit)
        calibrator = None
        if oos.sum() >= 200 and 0 < hit[oos].sum() < oos.sum():
            pct_oos = _percentile_in_day(rows.filter(pl.Series(oos)), score[oos])
            fitted = fit_calibrator(pct_oos, hit[oos], "isotonic", bins=20)
            assert isinstance(fitted, IsotonicCalibrator)
            calibrator = fitted
            prob[block] = calibrator.apply(pct)
        refits.append(
            {
                "refit_day": _date(refit),
                "train_rows": int(train.sum()),
                "scored_rows": int(block.sum()),
                "calibration_rows": int(oos.sum()),
            }
        )
    return _WalkForward(score, prob, ranker, calibrator, refits)


# ------------------------------------------------------------------------------ metrics
def _intervals(
    test: pl.DataFrame, score: str, cfg: SkillConfig, label: str, outcome: str
) -> dict[str, Interval]:
    block = block_length(cfg.step_days, cfg.horizon_days)
    prec = per_date_precision_at_k(test, score, label, cfg.top_k)["value"].to_numpy()
    a = per_date_auc(test, score, label)["value"].to_numpy()
    ic = per_date_rank_ic(test, score, outcome)["value"].to_numpy()
    return {
        "precision_at_k": block_bootstrap(prec, block, n_boot=cfg.n_boot, bounds=(0.0, 1.0)),
        "auc_per_date": block_bootstrap(a, block, n_boot=cfg.n_boot, bounds=(0.0, 1.0)),
        "rank_ic": block_bootstrap(ic, block, n_boot=cfg.n_boot, bounds=(-1.0, 1.0)),
    }


def _paired_gap(
    test: pl.DataFrame, score: str, other: str, cfg: SkillConfig, label: str
) -> Interval:
    a = per_date_precision_at_k(test, score, label, cfg.top_k).rename({"value": "a"})
    b = per_date_precision_at_k(test, other, label, cfg.top_k).rename({"value": "b"})
    diff = a.join(b, on="day").select(pl.col("a") - pl.col("b")).to_series().to_numpy()
    return block_bootstrap(diff, block_length(cfg.step_days, cfg.horizon_days), n_boot=cfg.n_boot)


def _target_block(test: pl.DataFrame, cfg: SkillConfig, label: str, outcome: str) -> dict[str, Any]:
    model = _intervals(test, "score", cfg, label, outcome)
    trivial = {
        name: _intervals(test, f"trivial_{name}", cfg, label, outcome) for name in TRIVIAL_RANKERS
    }
    best = max(
        trivial,
        key=lambda n: (
            -math.inf
            if math.isnan(trivial[n]["precision_at_k"].value)
            else trivial[n]["precision_at_k"].value
        ),
    )
    gap = _paired_gap(test, "score", f"trivial_{best}", cfg, label)
    rows = test.filter(pl.col(label).is_not_null())
    base = rows.group_by("day").agg(pl.col(label).mean())[label].mean()
    base_rate = float(base) if base is not None else math.nan  # type: ignore[arg-type]
    m = model["precision_at_k"]
    b = trivial[best]["precision_at_k"]
    beats = not math.isnan(m.ci_low) and m.ci_low > b.value
    pooled = rows.filter(pl.col("score").is_not_null())
    verdict = (
        f"precision@{cfg.top_k} {m.value:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}] vs the best "
        f"trivial ranker ({best}) {b.value:.3f}: the model "
        + (
            "beats it (its lower 95% bound is above that figure)"
            if beats
            else "does NOT beat it (its lower 95% bound is not above that figure)"
        )
        + f"; paired difference {gap.value:+.3f} [{gap.ci_low:+.3f}, {gap.ci_high:+.3f}]"
    )
    return {
        "precision_at_k": m.as_dict(),
        "auc_per_date": model["auc_per_date"].as_dict(),
        "rank_ic": model["rank_ic"].as_dict(),
        "base_rate": round(base_rate, 6) if not math.isnan(base_rate) else None,
        "lift": round(m.value / base_rate, 4)
        if base_rate > 0 and not math.isnan(m.value)
        else None,
        "trivial_rankers": {
            n: {k: v.as_dict() for k, v in iv.items()} for n, iv in trivial.items()
        },
        "best_trivial_ranker": best,
        "gap_to_best_trivial": gap.as_dict(),
        "beats_best_trivial": beats,
        "verdict": verdict,
        "pooled": {
            "auc": _r(auc(pooled["score"].to_numpy(), pooled[label].to_numpy())),
            "rows": pooled.height,
        },
    }


def _event_text(cfg: SkillConfig) -> str:
    if cfg.event == "take_profit":
        return f"take profit within the exit rule ({cfg.rule.describe()})"
    return (
        "the trade (exit rule: "
        + cfg.rule.describe()
        + ") returns more than the median trade of the day's universe"
    )


def _r(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


# What each of the nine agents could see in this evaluation, and how it entered (the JSON's
# ``agents`` block and docs/evaluation.md). The recorded side data covers too few coins or too
# short a span to be a ranking input validated before a train-end: it is said, not imputed.
EVALUATION_AGENTS: Final[dict[str, dict[str, str]]] = {
    "technical": {
        "used": "ranking input",
        "saw": "daily closes and volumes of every point-in-time member, as of each decision",
    },
    "early_mover": {
        "used": "ranking input",
        "saw": "daily closes, volumes and market caps of every member, as of each decision",
    },
    "liquidity": {
        "used": "eligibility filter",
        "saw": "30-day dollar volume: members below min_volume_usd are not ranked; position "
        "sizes are capped at a fraction of ADV in the book",
    },
    "regime": {
        "used": "exposure",
        "saw": "the cap-weighted market index of the daily universe: each model cohort is sized "
        "by its decision day's regime exposure (the regime block); never the ranking",
    },
    "ml": {
        "used": "the model itself",
        "saw": "the ranked features of every member, refitted walk-forward",
    },
    "ensemble": {
        "used": "calibration",
        "saw": "the model's out-of-sample scores: the monotone calibration of the gate event "
        "(the heuristic agents enter as inputs, not stacked probabilities)",
    },
    "funding": {
        "used": "not used",
        "saw": "recorded perpetual funding exists for BTC only (2021-08 -> 2022-07): one coin "
        "cannot rank a universe, and none of it lies before a 2021-06-30 train-end",
    },
    "arbitrage": {
        "used": "not used",
        "saw": "KuCoin beside Binance exists for about 20 pairs from 2021: a minority of the "
        "members, with too little history before train-end to validate it as a signal",
    },
    "sentiment": {
        "used": "not used",
        "saw": "the Fear & Greed index is one market-wide value per day: it carries no "
        "information about which coin ranks above another within a day",
    },
}


FUNDING_RECORDED_FROM: Final = date(2021, 8, 31)  # the first recorded BTC funding reading
# the heuristic agents whose probabilities are candidate ranking inputs (domain/rank_features)
_AGENT_SIGNAL: Final[dict[str, str]] = {"technical": "p_technical", "early_mover": "p_early_mover"}


def evaluation_agents(
    signals_kept: Collection[str],
    selection: Mapping[str, Mapping[str, float | None]],
    *,
    train_end: date,
    regime_applied: bool,
    model_kept: bool,
) -> dict[str, dict[str, str]]:
    """What each of the nine agents could see in this run, and how it entered: the
    :data:`EVALUATION_AGENTS` statement, corrected by what the run decided. An agent whose
    probability the signal selection left out is not a ranking input of this run (and says
    why); the regime sizes nothing when the run had no regime timeline; the model that failed
    its own validation is fitted but never trades; the funding statement names this run's
    train-end."""
    out = {name: dict(entry) for name, entry in EVALUATION_AGENTS.items()}
    for agent, signal in _AGENT_SIGNAL.items():
        if signal in signals_kept:
            continue
        auc_oos = selection.get(signal, {}).get("auc_out_of_sample")
        why = (
            f"its out-of-sample per-date AUC before train-end was {auc_oos:.4f} (kept only "
            "above 0.5)"
            if auc_oos is not None
            else "its out-of-sample per-date AUC could not be measured before train-end"
        )
        out[agent] = {
            "used": "not used",
            "saw": f"{out[agent]['saw']}; left out of this run's ranking by the signal "
            f"selection: {why}",
        }
    if not signals_kept:
        for agent in _AGENT_SIGNAL:
            out[agent]["saw"] += (
                " (no signal was kept: the model is fitted on every candidate but never trades)"
            )
    if not regime_applied:
        out["regime"] = {
            "used": "not used",
            "saw": "no regime timeline in this run: the book trades at full size",
        }
    if not model_kept:
        out["ml"] = {
            "used": "the model itself, left out",
            "saw": f"{out['ml']['saw']}; it did not clear its own validation before train-end "
            "(per-date AUC not above 0.5, or no signal kept): the strategy stays in cash",
        }
    funding = "one coin cannot rank a universe" + (
        f", and none of it lies before this run's train-end ({train_end.isoformat()})"
        if train_end < FUNDING_RECORDED_FROM
        else ""
    )
    out["funding"] = {
        "used": "not used",
        "saw": f"recorded perpetual funding exists for BTC only (2021-08 -> 2022-07): {funding}",
    }
    return out


# ------------------------------------------------------------------------------ books
def _regimes_on(daily: pl.DataFrame, days: Sequence[int]) -> dict[int, str | None]:
    """The regime (its value, None when unknown) of each day, from the scan's regime rules."""
    if not days or daily.is_empty():
        return {}
    timeline = regime_timeline(daily, min(days) * DAY_MS, max(days) * DAY_MS)
    return {
        int(ts) // DAY_MS: value
        for ts, value in zip(timeline["ts"].to_list(), timeline["regime"].to_list(), strict=True)
    }


def regime_exposure_by_day(
    regime_of: Mapping[int, str | None], days: Sequence[int]
) -> dict[int, float]:
    """The market regime's exposure (the share of the normal position size the scan allows
    in it) on each decision day (days since the epoch), from the regimes :func:`_regimes_on`
    read with the scan's rules; a day without a known regime gets the unknown-regime exposure."""
    out: dict[int, float] = {}
    for d in days:
        value = regime_of.get(d)
        strategy = UNKNOWN_REGIME_STRATEGY if value is None else REGIME_STRATEGIES[Regime(value)]
        out[d] = strategy.exposure
    return out


def _books(
    frame: pl.DataFrame,
    test: pl.DataFrame,
    forward: FloatArray,
    entry: FloatArray,
    universe: pl.DataFrame,
    cfg: SkillConfig,
    best_trivial: str,
    trade: bool,
    frame_daily: pl.DataFrame | None = None,
) -> tuple[dict[str, dict[str, float | int | None]], pl.DataFrame, dict[str, Any]]:
    rule = cfg.rule
    start, end = _day(cfg.start), _day(cfg.end)
    n_days = end - start + 1
    reb = sorted(test["day"].unique().to_list())[:: max(1, cfg.rebalance_days // cfg.step_days)]
    costs = CostModel()
    idx = test.with_row_index("_i")
    reason_code = test["exit_offset"].to_numpy().astype(np.int64)
    ret = test["trade_ret"].to_numpy().astype(np.float64)
    # each row's own exit (offset, return) from the exit rule: the label is the trade
    paths = marked_paths(entry, forward, ExitOutcomes(np.zeros_like(reason_code), reason_code, ret))
    adv = np.exp(test["log_volume_30d"].to_numpy().astype(np.float64)) - 1.0

    def cohorts(
        score: str | None, gate: bool = False, sized: Mapping[int, float] | None = None
    ) -> list[Cohort]:
        out: list[Cohort] = []
        for d in reb:
            at = idx.filter((pl.col("day") == d) & pl.col("trade_ret").is_not_null())
            if score is not None:
                at = at.filter(pl.col(score).is_not_null() & pl.col(score).is_not_nan())
                at = at.sort(score, descending=True).head(cfg.top_k)
                if gate:
                    at = at.filter(pl.col("prob") >= cfg.confidence_gate)
            i = at["_i"].to_numpy()
            exposure = 1.0 if sized is None else sized.get(d, UNKNOWN_REGIME_STRATEGY.exposure)
            out.append(Cohort(d - start, paths[i], np.maximum(reason_code[i], 0), adv[i], exposure))
        return out

    def run(cs: list[Cohort], rebalance: int, max_days: int) -> tuple[FloatArray, dict[str, Any]]:
        res = simulate_book(
            n_days,
            cs,
            rebalance_days=rebalance,
            max_days=max_days,
            equity_usd=cfg.equity_usd,
            costs=costs,
        )
        eq = res.equity / cfg.equity_usd
        return eq, {
            "total_return": _r(float(eq[-1] - 1.0)),
            "max_drawdown": _r(float(np.min(eq / np.maximum.accumulate(eq) - 1.0))),
            "positions": res.positions,
            "positions_capped_by_adv": res.capped_positions,
            "costs_pct_of_equity": _r(res.costs_usd / cfg.equity_usd),
        }

    books: dict[str, dict[str, float | int | None]] = {}
    curves: list[pl.DataFrame] = []
    # the strategy as traded sizes each cohort by the market regime of its decision day (the
    # scan's regime exposure); the full-size book beside it shows what the regime changed
    # one regime timeline for the sizing and the report of it
    regime_of = _regimes_on(frame_daily, reb) if frame_daily is not None else None
    sized = regime_exposure_by_day(regime_of, reb) if regime_of is not None else None
    plans: dict[str, list[Cohort]] = {
        "top_k_model": cohorts("score", sized=sized) if trade else [],
        "gated_top_k_model": cohorts("score", gate=True, sized=sized) if trade else [],
        f"top_k_{best_trivial}": cohorts(f"trivial_{best_trivial}"),
    }
    if trade and sized is not None:
        plans["top_k_model_full_size"] = cohorts("score")
    regime_block = _regime_block(regime_of, reb, sized)
    for name, cs in plans.items():
        eq, stats = run(cs, cfg.rebalance_days, rule.max_days)
        if not trade and name.endswith("_model"):
            stats["note"] = "no trade: the model did not clear its trivial baselines"
        books[name] = stats
        curves.append(
            pl.DataFrame({"day": np.arange(start, end + 1), "strategy": name, "equity": eq})
        )
    # equal weight over every ranked row, held to the next rebalance (upper bound) ...
    hold = cfg.rebalance_days
    hold_rule = ExitRule(take_profit=1e9, stop_loss=0.999999, max_days=hold, haircut=rule.haircut)
    ew: list[Cohort] = []
    ew_lower: list[Cohort] = []
    members = universe.group_by("day").agg(n=pl.len())
    n_members = dict(zip(members["day"].to_list(), members["n"].to_list(), strict=True))
    for d in reb:
        at = idx.filter(pl.col("day") == d)
        i = at["_i"].to_numpy()
        f = forward[i, :hold]
        # cuts and delistings inside the hold come from the row's own exit (offset/return)
        cut_at = np.where(
            (test["exit_reason"].to_numpy()[i] == "delisted")
            | (test["exit_reason"].to_numpy()[i] == "prices_cut"),
            reason_code[i],
            hold + 1,
        )
        o = exit_outcomes(
            hold_rule,
            entry[i],
            f,
            series_end=np.where(cut_at <= hold, cut_at, hold + 1).astype(np.int64),
            cut=test["exit_reason"].to_numpy()[i] == "prices_cut",
        )
        p = marked_paths(entry[i], f, o)
        ew.append(Cohort(d - start, p, np.maximum(o.exit_offset, 0), adv[i]))
        # ... and with every member without a price or not ranked at -100 % (lower bound)
        missing = max(0, int(n_members.get(d, 0)) - len(i))
        dead = np.zeros((missing, hold + 1))
        dead[:, 0] = 1.0
        ew_lower.append(
            Cohort(
                d - start,
                np.vstack([p, dead]),
                np.concatenate([np.maximum(o.exit_offset, 0), np.ones(missing, dtype=np.int64)]),
                # no ADV cap on them: each takes its full slot and loses it
                np.concatenate([adv[i], np.full(missing, np.inf)]),
            )
        )
    for name, cs in (("equal_weight_upper", ew), ("equal_weight_lower", ew_lower)):
        eq, stats = run(cs, hold, hold)
        books[name] = stats
        curves.append(
            pl.DataFrame({"day": np.arange(start, end + 1), "strategy": name, "equity": eq})
        )
    btc = frame.filter(
        (pl.col("symbol") == BTC) & (pl.col("day") >= start) & (pl.col("day") <= end)
    )
    if btc.height:
        series = np.full(n_days, np.nan)
        series[btc["day"].to_numpy() - start] = btc["close"].to_numpy()
        valid = np.flatnonzero(np.isfinite(series))
        series = series[np.maximum.accumulate(np.where(np.isfinite(series), np.arange(n_days), 0))]
        if valid.size and valid[0] == 0:
            c = float(costs.rate(np.asarray([cfg.equity_usd]), np.asarray([1e10]))[0])
            eq = series / series[0] * (1 - c)
            books["btc_buy_hold"] = {
                "total_return": _r(float(eq[-1] - 1.0)),
                "max_drawdown": _r(float(np.min(eq / np.maximum.accumulate(eq) - 1.0))),
            }
            curves.append(
                pl.DataFrame(
                    {"day": np.arange(start, end + 1), "strategy": "btc_buy_hold", "equity": eq}
                )
            )
    return books, pl.concat(curves), regime_block


def _regime_block(
    regime_of: Mapping[int, str | None] | None,
    reb: Sequence[int],
    sized: Mapping[int, float] | None,
) -> dict[str, Any]:
    """What the market regime did to the book: the regime of each rebalance day and the size
    it allowed (the scan's regime exposure), counted per regime."""
    if regime_of is None or sized is None or not reb:
        return {"applied": False, "note": "no regime: the book trades at full size"}
    counts: dict[str, int] = {}
    for d in reb:
        name = regime_of.get(d) or "unknown"
        counts[name] = counts.get(name, 0) + 1
    mean = float(np.mean([sized[d] for d in reb]))
    return {
        "applied": True,
        "rebalance_days_by_regime": dict(sorted(counts.items())),
        "mean_exposure": _r(mean),
        "note": "each model cohort is sized by its decision day's regime exposure (the scan's); "
        "top_k_model_full_size is the same picks at full size: the difference is what the "
        "regime changed",
    }


# ------------------------------------------------------------------------------ entry point
EVALUATION_STEP = "walk-forward evaluation"  # progress step (services/progress.py)
EVALUATION_STAGES = (
    "read",
    "series_cuts",
    "replay_gate_agents",
    "features",
    "outcomes",
    "signal_selection",
    "walk_forward_refits",
    "metrics_bootstrap",
    "books",
)


def evaluate_skill(
    market: MarketData,
    trainer: RankerTrainer,
    cfg: SkillConfig,
    *,
    excluded_symbols: Collection[str] = frozenset(),
    membership: pl.DataFrame | None = None,
    progress: Progress = no_progress,
) -> SkillResult:
    """Run the evaluation described in the module docstring; ``progress`` hears of each of
    its stages (:data:`EVALUATION_STAGES`)."""
    clock = time.perf_counter
    t0 = clock()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal t0
        now = clock()
        timings[name] = round(now - t0, 2)
        t0 = now
        progress(EVALUATION_STEP, len(timings), len(EVALUATION_STAGES))

    progress(EVALUATION_STEP, 0, len(EVALUATION_STAGES))

    h = cfg.horizon_days
    end_day = _day(cfg.end)
    last_needed = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=end_day + h)
    span = end_day + h - _day(cfg.first_decision) + max(cfg.lookback_days, RANK_LOOKBACK_DAYS) + 1
    history = market.daily_universe(last_needed, span).filter(
        ~pl.col("symbol").is_in(list(excluded_symbols))
    )
    if history.is_empty():
        raise SkillError("the market data holds no rows for the requested span")
    lap("read")
    cuts = cut_series(history)
    frame = cuts.frame
    lap("series_cuts")
    data_last_day = int(frame["day"].max())  # type: ignore[arg-type]
    first = _day(cfg.first_decision)
    days = [d for d in range(first, end_day + 1, cfg.step_days) if d <= data_last_day]
    start_day = _day(cfg.start)
    # the reporting grid starts on --start exactly
    days = sorted(
        {*(d for d in days if d < start_day), *range(start_day, end_day + 1, cfg.step_days)}
    )
    days = [d for d in days if d <= data_last_day]
    if membership is not None:
        # stablecoins and wrapped tokens are not growth candidates, priced or not
        membership = membership.filter(
            (pl.col("snapshot_day") < end_day)
            & ~pl.col("coingecko_id").fill_null("").is_in(list(excluded_symbols))
            & ~pl.col("cmc_symbol").str.to_uppercase().is_in(list(STABLE_BASES | WRAPPED_BASES))
        )
    universe = _universe(frame, membership, days, cfg.top_n)
    eligible, quality_excluded = _replay(frame, universe, days, cfg.lookback_days)
    lap("replay_gate_agents")
    feats = coin_features(frame)
    rows = (
        eligible.join(feats, on=["day", "symbol"], how="left")
        .filter(
            pl.col("log_market_cap").is_not_null()
            & (pl.col("log_volume_30d") >= math.log1p(cfg.min_volume_usd))
        )
        .sort("day", "symbol")
    )
    rows = rank_within_day(rows, CANDIDATE_SIGNALS)
    lap("features")
    rows, forward, entry = _outcomes(frame, rows, cfg, data_last_day)
    lap("outcomes")
    rows = trivial_scores(rows)
    rows = rows.with_columns(
        event=pl.col("hit")
        if cfg.event == "take_profit"
        else pl.when(pl.col("trade_ret").is_not_null()).then(
            (pl.col("trade_ret") > pl.col("trade_ret").median().over("day")).cast(pl.Float64)
        )
    )
    if cfg.grade == "return_quintile":
        rows = rows.with_columns(
            grade=pl.when(pl.col("trade_ret").is_not_null()).then(
                (
                    (pl.col("trade_ret").rank("ordinal").over("day") - 1)
                    * 5
                    // pl.col("trade_ret").count().over("day")
                ).cast(pl.Float64)
            )
        )
    signals, selection = _signal_selection(rows, cfg)
    lap("signal_selection")
    used = signals or CANDIDATE_SIGNALS  # none kept: fitted anyway, but never trades
    wf = _walk_forward(rows, used, trainer, cfg)
    lap("walk_forward_refits")
    rows = rows.with_columns(
        score=pl.Series(wf.score, dtype=pl.Float64).fill_nan(None),
        prob=pl.Series(wf.prob, dtype=pl.Float64).fill_nan(None),
    )
    # the model's own inner validation (before train_end): left out unless above 0.5
    t_end = _day(cfg.train_end)
    val = rows.filter((pl.col("label_end_day") <= t_end) & pl.col("score").is_not_null())
    val_auc = per_date_auc(val, "score", "hit")["value"].mean()
    model_val_auc = float(val_auc) if val_auc is not None else math.nan  # type: ignore[arg-type]
    model_kept = bool(signals) and model_val_auc > 0.5
    in_test = (pl.col("day") >= start_day) & (pl.col("day") <= end_day)
    test_all = rows.filter(in_test)
    test_idx = np.flatnonzero(((rows["day"] >= start_day) & (rows["day"] <= end_day)).to_numpy())
    test = test_all.filter(pl.col("hit").is_not_null())
    keep = np.isfinite(rows["hit"].to_numpy()[test_idx])
    fwd_test, entry_test = forward[test_idx][keep], entry[test_idx][keep]
    if test.is_empty():
        raise SkillError(f"no matured outcome on any decision day in {cfg.start}..{cfg.end}")
    trade_block = _target_block(test, cfg, "hit", "trade_ret")
    opp = test.with_columns(fwd_best=pl.col("opportunity"))
    opportunity_block = _target_block(opp, cfg, "opportunity", "trade_ret")
    base_trade = trade_block["base_rate"] or math.nan
    m_prec = trade_block["precision_at_k"]
    skill = model_kept and bool(trade_block["beats_best_trivial"])
    # calibration of the probability the gate reads
    cal = test.filter(pl.col("prob").is_not_null())
    p, y = cal["prob"].to_numpy(), cal["event"].to_numpy()
    gate_rows = cal.filter(pl.col("prob") >= cfg.confidence_gate)
    lap("metrics_bootstrap")
    books, equity, regime_block = _books(
        frame, test, fwd_test, entry_test, universe.filter(in_test), cfg,
        trade_block["best_trivial_ranker"], skill, history,
    )  # fmt: skip
    # the full-size book: the baselines are fully invested too (the regime's cash is not skill)
    top_book = books.get("top_k_model_full_size", books["top_k_model"])
    top_beats = skill and (top_book["total_return"] or -1.0) > max(
        books["equal_weight_upper"]["total_return"] or -1.0,
        books.get("btc_buy_hold", {}).get("total_return") or -1.0,
    )
    lap("books")
    ece_value = ece(p, y) if p.size else math.nan
    reasons: list[str] = []
    if not signals:
        reasons.append("no signal had an out-of-sample per-date AUC above 0.5 before train_end")
    if not math.isnan(model_val_auc) and model_val_auc <= 0.5:
        reasons.append(
            f"the model's own out-of-sample per-date AUC before train_end was {model_val_auc:.3f}"
            " (<= 0.5)"
        )
    if not trade_block["beats_best_trivial"]:
        reasons.append(trade_block["verdict"])
    trade_decision = {
        "trade": skill,
        "reason": "the model clears its trivial baselines"
        if skill
        else "no trade (strategy stays in cash): " + "; ".join(reasons),
    }
    members_test = universe.filter(in_test)
    priced = members_test.filter(pl.col("symbol").is_not_null())
    ranked_per_day = test_all.group_by("day").len()
    n_members_day = members_test.group_by("day").len()
    share = (
        ranked_per_day.join(n_members_day, on="day", suffix="_m")
        .select((pl.col("len") / pl.col("len_m")).mean())
        .item()
    )
    share_ranked = float(share) if share is not None else math.nan
    hits_lower = (
        test.group_by("day")
        .agg(h=pl.col("hit").sum())
        .join(n_members_day, on="day")
        .select((pl.col("h") / pl.col("len")).mean())
        .item()
    )
    sources = members_test["source"].unique().to_list()
    summary: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "exit_rule": cfg.rule.describe(),
        "universe": {
            "source": "point_in_time" if sources == ["point_in_time"] else sorted(sources),
            "file": "cmc_monthly/top200_point_in_time.csv" if membership is not None else None,
            "top_n": cfg.top_n,
            "member_days": members_test.height,
            "members_without_prices": int(members_test.filter(pl.col("symbol").is_null()).height),
            "distinct_members": members_test["member"].n_unique(),
            "distinct_members_without_prices": members_test.filter(pl.col("symbol").is_null())[
                "member"
            ].n_unique(),
            "priced_member_days": priced.height,
            "ranked_rows": test_all.height,
            "ranked_rows_with_outcome": test.height,
            "ranked_share_of_members": _r(share_ranked),
            "decision_days": test["day"].n_unique(),
            "non_overlapping_horizons": _r(non_overlapping_horizons(start_day, end_day, h)),
            "training_rows_before_first_snapshot": int(
                universe.filter(pl.col("source") == "data_top_n").height
            ),
            "note": SURVIVORSHIP_NOTE,
        },
        "bounds": {
            "base_rate_upper": _r(base_trade),
            "base_rate_lower": _r(float(hits_lower) if hits_lower is not None else math.nan),
            "precision_at_k_upper": m_prec["value"],
            "precision_at_k_lower": _r((m_prec["value"] or math.nan) * share_ranked),
            "note": "upper: ranked members only; lower: every member, those without prices or "
            "not ranked counted as misses (precision scaled by the ranked share of members: an "
            "unranked member takes its share of the top slots and misses)",
        },
        "targets": {"trade": trade_block, "opportunity": opportunity_block},
        "calibration": {
            "event": _event_text(cfg),
            "ece": _r(ece_value),
            "brier": _r(brier(p, y)) if p.size else None,
            "rows": int(p.size),
            "gate": cfg.confidence_gate,
            "gate_open_rows": gate_rows.height,
            "gate_open_share": _r(gate_rows.height / p.size) if p.size else None,
            "precision_when_open": _r(float(gate_rows["event"].mean()))  # type: ignore[arg-type]
            if gate_rows.height
            else None,
        },
        "model": {
            "signals_kept": list(signals),
            "signal_selection": selection,
            "validation_auc_per_date": _r(model_val_auc),
            "kept": model_kept,
            "refits": wf.refits,
        },
        "decision": trade_decision,
        "portfolio": books,
        "regime": regime_block,
        "agents": evaluation_agents(
            signals,
            selection,
            train_end=cfg.train_end,
            regime_applied=bool(regime_block.get("applied")),
            model_kept=model_kept,
        ),
        "targets_met": {
            "precision_at_k_ge_1_5x_base": bool(
                m_prec["value"] is not None
                and base_trade > 0
                and m_prec["value"] >= 1.5 * base_trade
            ),
            "lower_bound_above_best_trivial": bool(trade_block["beats_best_trivial"]),
            "top_k_beats_equal_weight_and_btc": bool(top_beats),
            "ece_below_0_05": bool(not math.isnan(ece_value) and ece_value < 0.05),
        },
        "timings_s": timings,
        "cuts": {
            "series": [
                c for c in cuts.report() if str(c["date"]) >= cfg.first_decision.isoformat()
            ],
            "series_breaks": cuts.breaks.height,
            "duplicate_days_dropped": cuts.dropped_days.height,
            "breaks_by_code": {
                str(k): int(v) for k, v in cuts.breaks.group_by("code").len().iter_rows()
            },
            "quality_gate_exclusions_by_code": quality_excluded,
        },
    }
    return SkillResult(
        summary=summary,
        rows=rows,
        equity=equity,
        ranker=wf.ranker,
        calibrator=wf.calibrator,
        signals=used,
        cuts=cuts.report(),
    )


def skill_evidence(summary: dict[str, Any]) -> SkillEvidence:
    """What the registry keeps beside a model: the trade label's per-date precision@k with its
    interval and the best trivial ranker's figure on the same rows (plus the whole summary)."""
    cfg = summary["config"]
    trade = summary["targets"]["trade"]
    best = trade["best_trivial_ranker"]
    return SkillEvidence(
        period=f"{cfg['start']}..{cfg['end']}",
        metric=f"precision_at_{cfg['top_k']} (trade label, per date)",
        value=trade["precision_at_k"]["value"],
        ci_low=trade["precision_at_k"]["ci_low"] if summary["model"]["kept"] else None,
        ci_high=trade["precision_at_k"]["ci_high"],
        best_trivial=best,
        best_trivial_value=trade["trivial_rankers"][best]["precision_at_k"]["value"],
        evaluation=summary,
    )


def ranking_card(
    summary: dict[str, Any],
    *,
    signals: tuple[str, ...],
    group: str,
    created_at: datetime,
    feature_hash: str,
    git_commit: str,
) -> ModelCard:
    """The registry card of a ranking model: its configuration, its walk-forward figures and
    the skill evidence the promotion gate reads."""
    cfg = summary["config"]
    trade = summary["targets"]["trade"]
    refits = summary["model"]["refits"]
    fold = FoldMetrics(
        test_start=date.fromisoformat(cfg["start"]),
        test_end=date.fromisoformat(cfg["end"]),
        n_train=int(refits[-1]["train_rows"]) if refits else 0,
        n_test=int(summary["universe"]["ranked_rows_with_outcome"]),
        base_rate=trade["base_rate"],
        auc=trade["auc_per_date"]["value"],
        brier=summary["calibration"]["brier"],
        ece=summary["calibration"]["ece"],
        precision_at_k=trade["precision_at_k"]["value"],
        lift=trade["lift"],
    )
    return ModelCard(
        group=group,
        created_at=created_at,
        data_start=date.fromisoformat(cfg["first_decision"]),
        data_end=date.fromisoformat(cfg["end"]),
        train_end=date.fromisoformat(cfg["train_end"]),
        target=summary["calibration"]["event"],
        horizon_days=int(cfg["horizon_days"]),
        threshold=float(cfg["take_profit"]),
        step_days=int(cfg["step_days"]),
        embargo_days=int(cfg["embargo_days"]),
        features=signals,
        feature_hash=feature_hash,
        params=cfg,
        folds=(fold,),
        oos=fold,
        git_commit=git_commit,
        train_rows=max(1, fold.n_train),
        skill=skill_evidence(summary),
    )


def ranking_feature_hash(signals: tuple[str, ...]) -> str:
    """SHA-256 of the signal names and the ranking feature module's source (serving refuses a
    model built on other feature definitions)."""
    from cryptosmarttrader.domain import rank_features

    digest = hashlib.sha256()
    digest.update("\n".join(signals).encode())
    digest.update(b"\0")
    digest.update(inspect.getsource(rank_features).encode())
    return digest.hexdigest()


def drift_reference(result: SkillResult, days: int = 182) -> DriftReference:
    """Profiles of the kept signals' percentiles and of the served probability over the last
    ``days`` of scored rows (the drift check's reference)."""
    rows = result.rows.filter(pl.col("prob").is_not_null())
    last = int(rows["day"].max()) if rows.height else 0  # type: ignore[arg-type]
    ref = rows.filter(pl.col("day") > last - days)
    cal = result.summary["calibration"]
    return DriftReference(
        features={
            s: profile(ref[ranked_name(s)].cast(pl.Float64).fill_null(np.nan).to_numpy())
            for s in result.signals
        },
        prediction=profile(ref["prob"].to_numpy()),
        oos_ece=float(cal["ece"]) if cal["ece"] is not None else math.nan,
        oos_brier=float(cal["brier"]) if cal["brier"] is not None else math.nan,
        window=(_date(last - days + 1), _date(last)),
    )
