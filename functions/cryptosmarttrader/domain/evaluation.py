"""Honest evaluation: labels, walk-forward splits with purge and embargo, ranking and
calibration metrics, and a top-k portfolio simulation after costs. Pure numpy/polars.

Labels never invent the future: ``gain = max(close[t+1 .. t+H]) / close[t] - 1`` is computed
only where the series is observed through ``t + H`` days; elsewhere the label is null and the
sample is left out (not counted as a miss).

Walk-forward: a model evaluated on ``[test_start, test_end]`` is fitted only on samples whose
whole label window ends, plus an embargo, before ``test_start`` (purge), so no training label
overlaps the test period.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cryptosmarttrader.domain.features import dense_daily_grid
from cryptosmarttrader.domain.market import DAILY_SCHEMA
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "DAYS_PER_YEAR",
    "Fold",
    "PortfolioStats",
    "Simulation",
    "auc",
    "base_rate",
    "brier",
    "calibration_curve",
    "ece",
    "forward_gain_labels",
    "hit_rate_by_decile",
    "label_column",
    "lift",
    "max_drawdown",
    "portfolio_stats",
    "precision_at_k",
    "purged_train_mask",
    "simulate_portfolio",
    "walk_forward_folds",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

DAYS_PER_YEAR: Final = 365  # crypto trades every day
BACKTEST_COST_RATE: Final = 0.003  # fee + slippage per traded notional in the strategy backtest


def label_column(threshold: float) -> str:
    """Name of the 0/1 label column for a gain ``threshold`` (1.0 → ``hit_100``)."""
    return f"hit_{round(threshold * 100)}"


# ---------------------------------------------------------------------------------- labels
def forward_gain_labels(
    frame: pl.DataFrame, horizon_days: int, thresholds: Sequence[float]
) -> pl.DataFrame:
    """One row per input row: ``symbol``, ``ts``, ``day``, ``label_end_day`` (= day + H),
    ``fwd_gain`` and one ``hit_<pct>`` column (Int8) per threshold. All null where the series is
    not observed through ``day + H`` (the series' last bar is earlier)."""
    if horizon_days < 1:
        raise DomainError(f"horizon_days must be >= 1, got {horizon_days}")
    missing = [c for c in ("symbol", "ts", "close") if c not in frame.columns]
    if missing:
        raise DomainError(f"forward_gain_labels needs symbol, ts, close; missing {missing}")
    base = (
        frame.select(list(DAILY_SCHEMA))
        if set(DAILY_SCHEMA) <= set(frame.columns)
        else (
            frame.select("symbol", "ts", "close").with_columns(
                volume=pl.lit(None, pl.Float64), market_cap=pl.lit(None, pl.Float64)
            )
        )
    )
    close = pl.when(pl.col("close") > 0).then(pl.col("close"))
    grid = dense_daily_grid(base)
    gain = (
        grid.lazy()
        .with_columns(
            # reversed rolling max over the next H days (t+1 .. t+H), per symbol
            fwd_max=close.shift(-1)
            .reverse()
            .rolling_max(horizon_days, min_samples=1)
            .reverse()
            .over("symbol"),
            last_day=pl.col("day").filter(pl.col("ts").is_not_null()).max().over("symbol"),
            label_end_day=pl.col("day") + horizon_days,
        )
        .filter(pl.col("ts").is_not_null())
        .with_columns(
            fwd_gain=pl.when(pl.col("last_day") >= pl.col("label_end_day")).then(
                pl.col("fwd_max") / close - 1.0
            )
        )
    )
    hits = [
        pl.when(pl.col("fwd_gain").is_not_null())
        .then((pl.col("fwd_gain") >= t).cast(pl.Int8))
        .alias(label_column(t))
        for t in thresholds
    ]
    return (
        gain.select("symbol", "ts", "day", "label_end_day", "fwd_gain", *hits)
        .sort("symbol", "ts")
        .collect()
    )


# ---------------------------------------------------------------------------------- splits
@dataclass(frozen=True, slots=True)
class Fold:
    """A walk-forward test block ``[test_start_day, test_end_day]`` (days since epoch)."""

    test_start_day: int
    test_end_day: int


def walk_forward_folds(first_test_day: int, last_day: int, fold_days: int) -> list[Fold]:
    """Consecutive test blocks of ``fold_days`` from ``first_test_day`` up to ``last_day``."""
    if fold_days < 1:
        raise DomainError(f"fold_days must be >= 1, got {fold_days}")
    starts = np.arange(first_test_day, last_day + 1, fold_days, dtype=np.int64)
    return [Fold(int(s), min(int(s) + fold_days - 1, last_day)) for s in starts]


def purged_train_mask(
    sample_day: IntArray, label_end_day: IntArray, test_start_day: int, embargo_days: int
) -> BoolArray:
    """Training rows allowed for a test block starting ``test_start_day``: the sample's label
    window ends, plus the embargo, strictly before the test block (purge + embargo)."""
    if embargo_days < 0:
        raise DomainError(f"embargo_days must be >= 0, got {embargo_days}")
    keep: BoolArray = (sample_day < test_start_day) & (
        label_end_day + embargo_days < test_start_day
    )
    return keep


# ---------------------------------------------------------------------------------- metrics
def _finite_pairs(score: FloatArray, label: FloatArray) -> tuple[FloatArray, FloatArray]:
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    if s.shape != y.shape:
        raise DomainError(f"scores {s.shape} and labels {y.shape} differ in shape")
    ok = np.isfinite(s) & np.isfinite(y)
    return s[ok], y[ok]


def auc(score: FloatArray, label: FloatArray) -> float:
    """ROC AUC (Mann-Whitney, ties count one half). NaN if one class is absent."""
    s, y = _finite_pairs(score, label)
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # average rank of each distinct value: ranks first..last of its run, 1-based
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0
    rank_sum = float(avg_rank[inverse][pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def brier(prob: FloatArray, label: FloatArray) -> float:
    """Mean squared error of probabilities against 0/1 outcomes."""
    p, y = _finite_pairs(prob, label)
    return float(np.mean((p - y) ** 2)) if p.size else math.nan


def calibration_curve(prob: FloatArray, label: FloatArray, bins: int = 10) -> pl.DataFrame:
    """Equal-width probability bins: ``bin``, ``lo``, ``hi``, ``n``, ``mean_prob``,
    ``hit_rate`` (empty bins are omitted)."""
    if bins < 1:
        raise DomainError(f"bins must be >= 1, got {bins}")
    p, y = _finite_pairs(prob, label)
    idx = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    n = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    sum_y = np.bincount(idx, weights=y, minlength=bins)
    keep = n > 0
    edges = np.arange(bins, dtype=np.float64) / bins
    return pl.DataFrame(
        {
            "bin": np.arange(bins)[keep],
            "lo": edges[keep],
            "hi": edges[keep] + 1.0 / bins,
            "n": n[keep],
            "mean_prob": sum_p[keep] / n[keep],
            "hit_rate": sum_y[keep] / n[keep],
        }
    )


def ece(prob: FloatArray, label: FloatArray, bins: int = 10) -> float:
    """Expected calibration error: bin-size-weighted |mean probability - hit rate|."""
    curve = calibration_curve(prob, label, bins)
    total = int(curve["n"].sum())
    if total == 0:
        return math.nan
    gap = (curve["mean_prob"] - curve["hit_rate"]).abs() * curve["n"]
    return float(gap.sum()) / total


def _per_date_topk(frame: pl.DataFrame, score: str, label: str, k: int, date: str) -> pl.DataFrame:
    """Per date: hits in the top ``k`` by score, how many were taken, base rate."""
    if k < 1:
        raise DomainError(f"k must be >= 1, got {k}")
    rows = frame.filter(pl.col(score).is_not_null() & pl.col(label).is_not_null())
    ranked = rows.with_columns(_r=pl.col(score).rank("ordinal", descending=True).over(date))
    return ranked.group_by(date).agg(
        top_hits=pl.col(label).filter(pl.col("_r") <= k).sum(),
        taken=(pl.col("_r") <= k).sum(),
        base=pl.col(label).mean(),
    )


def precision_at_k(frame: pl.DataFrame, score: str, label: str, k: int, date: str = "day") -> float:
    """Mean over dates of the hit fraction among the top ``k`` scores of that date."""
    per = _per_date_topk(frame, score, label, k, date)
    if per.is_empty():
        return math.nan
    return float((per["top_hits"] / per["taken"]).mean())  # type: ignore[arg-type]


def base_rate(frame: pl.DataFrame, label: str, date: str = "day") -> float:
    """Mean over dates of the hit fraction of the whole eligible universe that date."""
    rows = frame.filter(pl.col(label).is_not_null())
    if rows.is_empty():
        return math.nan
    return float(rows.group_by(date).agg(pl.col(label).mean())[label].mean())  # type: ignore[arg-type]


def lift(precision: float, rate: float) -> float:
    """Precision@k over the base rate (1.0 = no better than picking at random)."""
    return precision / rate if rate > 0 else math.nan


def hit_rate_by_decile(
    frame: pl.DataFrame, score: str, label: str, date: str = "day"
) -> pl.DataFrame:
    """Deciles of the score within each date (10 = highest), pooled: ``decile``, ``n``,
    ``hit_rate``."""
    rows = frame.filter(pl.col(score).is_not_null() & pl.col(label).is_not_null())
    return (
        rows.with_columns(
            decile=(
                (pl.col(score).rank("ordinal").over(date) - 1) * 10 // pl.len().over(date) + 1
            ).cast(pl.Int64)
        )
        .group_by("decile")
        .agg(n=pl.len(), hit_rate=pl.col(label).cast(pl.Float64).mean())
        .sort("decile")
    )


# ---------------------------------------------------------------------------------- portfolio
@dataclass(frozen=True, slots=True)
class PortfolioStats:
    total_return: float
    cagr: float
    max_drawdown: float
    sharpe: float
    turnover: float  # sum of one-way traded fractions over all rebalances
    costs: float  # fraction of equity paid in fees and slippage, summed


def _ffill_columns(prices: FloatArray) -> FloatArray:
    """Last known price per column (valuation only: a missing day is marked at its last close)."""
    valid = np.isfinite(prices)
    rows = np.where(valid, np.arange(prices.shape[0])[:, None], 0)
    np.maximum.accumulate(rows, axis=0, out=rows)
    filled = prices[rows, np.arange(prices.shape[1])]
    seen = np.maximum.accumulate(valid, axis=0)
    return np.where(seen, filled, np.nan)


@dataclass(frozen=True, slots=True)
class Simulation:
    equity: FloatArray  # daily, starts at 1.0 before the first costs
    turnover: float  # sum over rebalances of the traded fraction of equity
    costs: float  # sum over rebalances of the fraction of equity paid in costs


def simulate_portfolio(
    prices: FloatArray,
    rebalance_rows: IntArray,
    target_weights: FloatArray,
    cost_rate: float,
) -> Simulation:
    """Daily equity (starts at 1.0) of a long-only book rebalanced to ``target_weights[i]`` at
    day row ``rebalance_rows[i]``.

    ``prices`` is days × assets (NaN where no bar). Weights are fractions of equity (sum <= 1,
    the rest is cash earning 0); a weight on an asset without a price that day is an error.
    Each rebalance pays ``cost_rate`` (fee + slippage) on the traded fraction
    ``sum |target - drifted|``. Between rebalances the book drifts with prices; a missing day is
    marked at the last close.
    """
    n_days, n_assets = prices.shape
    if target_weights.shape != (len(rebalance_rows), n_assets):
        raise DomainError(
            f"target_weights {target_weights.shape} must be (rebalances, assets) = "
            f"({len(rebalance_rows)}, {n_assets})"
        )
    if len(rebalance_rows) == 0 or rebalance_rows[0] != 0:
        raise DomainError("the first rebalance must be on the first day row (0)")
    if np.any(np.diff(rebalance_rows) <= 0) or rebalance_rows[-1] >= n_days:
        raise DomainError("rebalance rows must increase strictly and lie inside the price rows")
    if np.any(target_weights < 0) or np.any(target_weights.sum(axis=1) > 1 + 1e-9):
        raise DomainError("weights must be >= 0 and sum to at most 1 (long only, no leverage)")
    marked = _ffill_columns(prices)
    held = target_weights > 0
    at_rebalance = prices[rebalance_rows]
    if np.any(held & ~np.isfinite(at_rebalance)):
        raise DomainError("a target weight is set on an asset without a price at that rebalance")
    equity = np.empty(n_days, dtype=np.float64)
    units = np.zeros(n_assets)  # equity-units per asset (value / price)
    cash = 1.0
    turnover = costs = 0.0
    bounds = [*rebalance_rows.tolist(), n_days]
    for i in range(len(rebalance_rows)):  # one step per rebalance, vectorized over days/assets
        start, stop = bounds[i], bounds[i + 1]
        px = np.where(np.isfinite(marked[start]), marked[start], 0.0)
        value = units * px
        wealth = cash + value.sum()
        drifted = value / wealth if wealth > 0 else np.zeros(n_assets)
        target = target_weights[i]
        traded = float(np.abs(target - drifted).sum())
        turnover += traded
        costs += cost_rate * traded
        wealth *= 1.0 - cost_rate * traded
        with np.errstate(divide="ignore", invalid="ignore"):
            units = np.where(target > 0, target * wealth / px, 0.0)
        cash = wealth * (1.0 - float(target.sum()))
        block = np.where(np.isfinite(marked[start:stop]), marked[start:stop], 0.0)
        equity[start:stop] = cash + block @ units
    return Simulation(equity, turnover, costs)


def portfolio_stats(
    equity: FloatArray, turnover: float = 0.0, costs: float = 0.0
) -> PortfolioStats:
    """Total return, CAGR, max drawdown (negative fraction) and annualized daily Sharpe."""
    if equity.size < 2 or not np.all(np.isfinite(equity)) or np.any(equity <= 0):
        raise DomainError("equity must hold at least two finite positive values")
    daily = equity[1:] / equity[:-1] - 1.0
    sd = float(daily.std(ddof=1)) if daily.size > 1 else 0.0
    sharpe = float(daily.mean()) / sd * math.sqrt(DAYS_PER_YEAR) if sd > 0 else math.nan
    total = float(equity[-1] / equity[0] - 1.0)
    years = (equity.size - 1) / DAYS_PER_YEAR
    cagr = float((equity[-1] / equity[0]) ** (1.0 / years) - 1.0) if years > 0 else math.nan
    return PortfolioStats(total, cagr, max_drawdown(equity), sharpe, turnover, costs)


def max_drawdown(equity: FloatArray) -> float:
    """Largest fall from a running peak, as a negative fraction (0.0 for a curve that never
    falls)."""
    return float(np.min(equity / np.maximum.accumulate(equity) - 1.0))
