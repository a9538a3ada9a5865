"""Feature module: known answers on tiny series, calendar-day windows, no look-ahead, and the
training/serving identity on real data."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cryptosmarttrader.domain.features import (
    FEATURE_COLUMNS,
    FEATURE_LOOKBACK_DAYS,
    feature_frame,
    features_at,
)
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.types import DomainError

T0 = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS


def _series(symbol: str, closes: list[float], days: list[int] | None = None) -> pl.DataFrame:
    days = days if days is not None else list(range(len(closes)))
    n = len(closes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [T0 + d * DAY_MS for d in days],
            "close": closes,
            "volume": [1000.0] * n,
            "market_cap": [1e6 * c for c in closes],
        },
        schema=DAILY_SCHEMA,
    )


def test_returns_are_log_returns_over_calendar_days() -> None:
    # Given a coin doubling every day for 8 days
    frame = _series("x", [2.0**i for i in range(8)])
    # When features are computed
    f = feature_frame(frame)
    # Then the 1-day log return is log 2 and the 7-day one 7 log 2 on the last day
    last = f.row(-1, named=True)
    assert last["ret_1d"] == pytest.approx(math.log(2))
    assert last["ret_7d"] == pytest.approx(7 * math.log(2))
    assert f["ret_7d"][6] is None  # not enough history on day 6


def test_a_gap_never_stretches_a_window() -> None:
    # Given day 1 missing: the bar of day 2 has no bar one calendar day earlier
    frame = _series("x", [1.0, 4.0, 8.0], days=[0, 2, 3])
    f = feature_frame(frame)
    # Then the output keeps the input rows only, and day 2's 1-day return is null, not log 4
    assert f["ts"].to_list() == frame["ts"].to_list()
    assert f["ret_1d"].to_list()[:2] == [None, None]
    assert f["ret_1d"][2] == pytest.approx(math.log(2))


def test_cross_sectional_features_use_the_day_only() -> None:
    # Given two coins on one day with market caps 1e6 and 3e6
    frame = pl.concat([_series("a", [1.0]), _series("b", [3.0])])
    f = feature_frame(frame).sort("symbol")
    # Then their market-cap rank percentiles are 1/2 and 2/2
    assert f["mcap_rank_pct"].to_list() == [0.5, 1.0]


def test_rsi_of_a_monotone_rise_is_100() -> None:
    f = feature_frame(_series("x", [float(i + 1) for i in range(20)]))
    assert f["rsi_14"][-1] == pytest.approx(100.0)


def test_future_rows_never_change_past_features() -> None:
    # Given a series and the same series with a wild future appended
    past = [100.0 + (i % 5) for i in range(200)]
    base = _series("x", past)
    extended = _series("x", [*past, 1e6, 1.0, 5e5], days=list(range(203)))
    # Then the features of the shared rows are identical
    a = feature_frame(base)
    b = feature_frame(extended).head(200)
    assert_frame_equal(a, b)


def test_duplicate_day_is_refused() -> None:
    frame = _series("x", [1.0, 2.0], days=[0, 0])
    with pytest.raises(DomainError, match="more than one bar"):
        feature_frame(frame)


def test_empty_frame_gives_the_schema() -> None:
    f = feature_frame(pl.DataFrame(schema=DAILY_SCHEMA))
    assert f.is_empty() and set(FEATURE_COLUMNS) <= set(f.columns)


@pytest.mark.realdata
def test_serving_window_equals_training_history_on_real_data(data_dir: Path) -> None:
    # Given the real CoinGecko universe (stablecoins and wrapped tokens excluded)
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData

    market = RecordedMarketData(data_dir)
    excluded = [k for k, m in market.coins_metadata().items() if m.is_stablecoin or m.is_wrapped]
    asof = datetime(2021, 3, 1, tzinfo=UTC)
    asof_ms = int(asof.timestamp() * 1000)
    history = market.daily_universe(asof, 400).filter(~pl.col("symbol").is_in(excluded))
    # When training computes features over 400 days and serving over the scan's 260-day window
    training = feature_frame(history).filter(pl.col("day") == asof_ms // DAY_MS)
    serving = features_at(history.filter(pl.col("ts") > asof_ms - 260 * DAY_MS), asof_ms)
    # Then both give the same features for every coin that day
    assert FEATURE_LOOKBACK_DAYS < 260
    assert serving.height > 200
    assert_frame_equal(training, serving, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)
