"""Correlation clusters from real Binance daily closes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.portfolio import (
    PortfolioExposure,
    correlation_clusters,
    pairwise_correlation,
)
from cryptosmarttrader.domain.types import DomainError

ASOF = datetime(2022, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def closes(data_dir: Path) -> pl.DataFrame:
    market = RecordedMarketData(data_dir)
    frame = market.ohlcv_all("1d", ASOF)
    return frame.filter(pl.col("ts") > int(ASOF.timestamp() * 1000) - 200 * 86_400_000).select(
        "symbol", "ts", "close"
    )


@pytest.mark.realdata
def test_pairwise_correlation_matches_pandas_on_real_returns(closes: pl.DataFrame) -> None:
    # Given 200 days of real log returns of every recorded pair, with the gaps they have
    wide = (
        closes.sort("symbol", "ts")
        .with_columns(ret=pl.col("close").log().diff().over("symbol"))
        .pivot(on="symbol", index="ts", values="ret")
        .sort("ts")
    )
    symbols = [c for c in wide.columns if c != "ts"]
    matrix = wide.select(symbols).to_numpy().astype(np.float64)
    # When correlations are computed by matrix products
    corr, overlap = pairwise_correlation(matrix)
    # Then they equal pandas' pairwise-complete Pearson correlations
    expected = pd.DataFrame(matrix).corr(min_periods=2).to_numpy()
    assert np.allclose(corr, expected, atol=1e-9, equal_nan=True)
    assert overlap.max() <= matrix.shape[0]


@pytest.mark.realdata
def test_btc_and_eth_share_a_cluster_in_mid_2022(closes: pl.DataFrame) -> None:
    # When the 90-day single-linkage clusters at corr >= 0.8 are computed
    clusters = correlation_clusters(closes, window=90, threshold=0.8)
    # Then BTC and ETH (and their many followers) are one cluster; every pair has a cluster
    assert clusters["BTC/USDT"] == clusters["ETH/USDT"]
    assert set(clusters) == set(closes["symbol"].unique().to_list())
    # And a threshold of 1.0 leaves every pair alone
    alone = correlation_clusters(closes, window=90, threshold=1.0)
    assert all(k == v for k, v in alone.items())


def test_single_linkage_chains_through_an_intermediate_symbol() -> None:
    # Given A~B and B~C correlated but A and C only weakly (a chain)
    rng = np.random.default_rng(7)
    base = rng.normal(size=200)
    a = base
    b = base + 0.4 * rng.normal(size=200)
    c = b + 0.4 * rng.normal(size=200)
    d = rng.normal(size=200)
    rows = []
    for sym, series in {"A": a, "B": b, "C": c, "D": d}.items():
        price = 100 * np.exp(np.cumsum(series * 0.01))
        rows += [
            {"symbol": sym, "ts": (i + 1) * 86_400_000, "close": float(p)}
            for i, p in enumerate(price)
        ]
    clusters = correlation_clusters(pl.DataFrame(rows), window=150, threshold=0.9)
    corr, _ = pairwise_correlation(np.column_stack([a, b, c])[-150:])
    assert corr[0, 2] < 0.9 <= min(corr[0, 1], corr[1, 2])
    assert clusters == {"A": "A", "B": "A", "C": "A", "D": "D"}


def test_exposure_sums_by_cluster_and_validates() -> None:
    exp = PortfolioExposure(
        {"A": Decimal("10"), "B": Decimal("5"), "C": Decimal("0")}, {"A": "A", "B": "A"}
    )
    assert (exp.gross, exp.open_positions, exp.cluster_exposure("A")) == (Decimal(15), 2, 10 + 5)
    assert exp.cluster_exposure("C") == 0
    with pytest.raises(DomainError):
        PortfolioExposure({"A": Decimal("-1")})
