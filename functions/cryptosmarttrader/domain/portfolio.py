"""Portfolio exposure and correlation clusters.

Exposure is money (``Decimal``); correlations are analytics (numpy float64). Clusters are the
connected components of the graph "pairwise correlation of daily log returns >= threshold over
the window" (single linkage), computed without a Python loop over pairs: pairwise-complete sums
come from matrix products over a presence mask, components from vectorized label propagation.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cryptosmarttrader.domain.exposure import PortfolioExposure
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "PortfolioExposure",
    "correlation_clusters",
    "pairwise_correlation",
]

DEFAULT_WINDOW_DAYS: Final = 90
DEFAULT_THRESHOLD: Final = 0.8
DEFAULT_MIN_OVERLAP: Final = 60


def _log_returns_wide(
    closes: pl.DataFrame, window: int, bar_ms: int
) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Long ``symbol, ts, close`` → (symbols, T x N log returns of the last ``window`` bars)."""
    missing = {"symbol", "ts", "close"} - set(closes.columns)
    if missing:
        raise DomainError(f"closes frame lacks columns {sorted(missing)}")
    if closes.is_empty():
        return [], np.empty((0, 0))
    if closes.filter(pl.col("close") <= 0).height:
        raise DomainError("closes must be > 0 to take log returns")
    rets = (
        closes.sort("symbol", "ts")
        .with_columns(
            ret=pl.col("close").log().diff().over("symbol"),
            gap=pl.col("ts").diff().over("symbol"),
        )
        # a return across a gap is not a one-bar return: drop it rather than invent one
        .filter(pl.col("gap") == bar_ms)
    )
    last_ts = rets["ts"].unique().sort().tail(window)
    wide = (
        rets.filter(pl.col("ts").is_in(last_ts.implode()))
        .pivot(on="symbol", index="ts", values="ret")
        .sort("ts")
    )
    symbols = sorted(c for c in wide.columns if c != "ts")
    matrix = wide.select(symbols).to_numpy().astype(np.float64)
    return symbols, matrix


def pairwise_correlation(
    returns: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Pearson correlation of every column pair over the rows where both are present (NaN =
    missing), and the overlap counts. Pairs with < 2 overlapping rows or no variance → NaN."""
    present = ~np.isnan(returns)
    x = np.where(present, returns, 0.0)
    m = present.astype(np.float64)
    n = m.T @ m
    sx = x.T @ m  # sx[i, j] = sum of x_i over rows where j is present (x_i is 0 where missing)
    sxx = (x * x).T @ m
    sxy = x.T @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = n * sxy - sx * sx.T
        var_i = n * sxx - sx * sx
        var_j = var_i.T
        corr = cov / np.sqrt(var_i * var_j)
    corr[(n < 2) | ~np.isfinite(corr)] = np.nan
    return np.clip(corr, -1.0, 1.0), n.astype(np.int64)


def _components(adjacency: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Connected-component labels (smallest member index) by min-label propagation."""
    size = adjacency.shape[0]
    labels = np.arange(size, dtype=np.int64)
    adj = adjacency | np.eye(size, dtype=bool)
    while True:
        neighbour_min = np.where(adj, labels[None, :], size).min(axis=1)
        updated = labels[neighbour_min]  # pointer jumping halves the remaining distance
        if np.array_equal(updated, labels):
            return labels
        labels = updated


def correlation_clusters(
    closes: pl.DataFrame,
    *,
    window: int = DEFAULT_WINDOW_DAYS,
    threshold: float = DEFAULT_THRESHOLD,
    min_overlap: int = DEFAULT_MIN_OVERLAP,
    bar_ms: int = DAY_MS,
) -> dict[str, str]:
    """Symbol → cluster name (the cluster's first symbol alphabetically), single linkage at
    ``corr >= threshold`` over the last ``window`` bars of log returns. Pairs with fewer than
    ``min_overlap`` common returns are not linked. Every symbol in ``closes`` gets a cluster."""
    if window < 2 or not 0.0 < threshold <= 1.0 or min_overlap < 2:
        raise DomainError(
            f"invalid clustering parameters window={window} threshold={threshold} "
            f"min_overlap={min_overlap}"
        )
    symbols, matrix = _log_returns_wide(closes, window, bar_ms)
    all_symbols = sorted(closes["symbol"].unique().to_list()) if not closes.is_empty() else []
    if len(symbols) == 0:
        return {s: s for s in all_symbols}
    corr, overlap = pairwise_correlation(matrix)
    linked = (np.nan_to_num(corr, nan=-1.0) >= threshold) & (overlap >= min_overlap)
    labels = _components(linked)
    out = {s: symbols[int(labels[i])] for i, s in enumerate(symbols)}
    for s in all_symbols:
        out.setdefault(s, s)
    return out
