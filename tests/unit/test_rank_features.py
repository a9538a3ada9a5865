"""Ranking features: nothing after a row's day enters it, segments never join, percentiles are
taken within the day."""

from __future__ import annotations

import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.rank_features import (
    RAW_FEATURES,
    coin_features,
    rank_within_day,
    ranked_name,
)


def _frame(n: int = 400) -> pl.DataFrame:
    rows = []
    for i, sym in enumerate(("a", "b", "c")):
        for d in range(n):
            close = (1.0 + 0.001 * (i + 1)) ** d * (1.05 if d % 7 == 0 else 1.0)
            rows.append((sym, (18_000 + d) * DAY_MS, close, 1e6 * (i + 1) + d, 1e8 * (i + 1)))
    return pl.DataFrame(rows, schema=DAILY_SCHEMA, orient="row")


def test_truncating_the_future_leaves_every_past_feature_unchanged() -> None:
    full = coin_features(_frame())
    cut = coin_features(_frame().filter(pl.col("ts") <= (18_000 + 300) * DAY_MS))
    cols = [c for c in RAW_FEATURES if c != "ret_90d_vs_size"]
    a = full.filter(pl.col("day") <= 18_300).select("symbol", "day", *cols)
    assert a.equals(cut.select("symbol", "day", *cols))


def test_a_window_of_366_days_gives_the_same_features_as_the_whole_history() -> None:
    full = coin_features(_frame()).filter(pl.col("day") == 18_399)
    window = coin_features(_frame().filter(pl.col("ts") > (18_399 - 366) * DAY_MS))
    # equal up to the last bits of running-sum rolling windows (1e-15 relative)
    assert_frame_equal(full, window.filter(pl.col("day") == 18_399), rel_tol=1e-12)


def test_segments_restart_the_history() -> None:
    frame = _frame().with_columns(
        segment=pl.when(pl.col("ts") >= (18_000 + 200) * DAY_MS).then(1).otherwise(0)
    )
    feats = coin_features(frame).filter(pl.col("day") == 18_210)
    assert feats["listing_age"].to_list() == [10.0, 10.0, 10.0]
    assert feats["ret_90d"].null_count() == 3  # no close 90 days back in this segment


def test_percentiles_are_within_the_day() -> None:
    rows = pl.DataFrame(
        {
            "day": [1, 1, 1, 2, 2],
            "log_market_cap": [1.0, 2.0, 3.0, 5.0, 4.0],
            "ret_90d": [0.1, 0.2, None, 0.5, -0.5],
        }
    )
    out = rank_within_day(rows, ("log_market_cap", "ret_90d"))
    assert out[ranked_name("log_market_cap")].to_list() == pytest.approx(
        [1 / 3, 2 / 3, 1.0, 1.0, 0.5]
    )
    pct = out[ranked_name("ret_90d")].to_list()
    assert pct[:2] == pytest.approx([0.5, 1.0]) and pct[2] is None
    assert not math.isnan(out["ret_90d_vs_size"][0])
