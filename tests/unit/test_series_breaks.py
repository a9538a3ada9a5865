"""Series breaks: token swaps, redenominations, broken feeds, duplicate days."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.series_breaks import BreakCode, cut_series, find_breaks

T0 = 18_000 * DAY_MS


def _frame(
    closes: list[float], volumes: list[float], caps: list[float] | None = None
) -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame(
        {
            "symbol": ["x"] * n,
            "ts": [T0 + i * DAY_MS for i in range(n)],
            "close": closes,
            "volume": volumes,
            "market_cap": caps if caps is not None else [c * 1000 for c in closes],
        },
        schema=DAILY_SCHEMA,
    )


def test_a_jump_on_thin_volume_is_a_break_and_a_jump_on_heavy_volume_is_not() -> None:
    closes = [1.0] * 20 + [5.0] + [5.0] * 5
    thin = find_breaks(_frame(closes, [1000.0] * 20 + [10.0] + [1000.0] * 5))
    heavy = find_breaks(_frame(closes, [1000.0] * 20 + [50_000.0] + [1000.0] * 5))
    assert thin["code"].to_list() == [BreakCode.JUMP_ON_THIN_VOLUME]
    assert thin["day"].to_list() == [18_020]
    assert heavy.is_empty()


def test_a_redenomination_is_a_supply_jump_but_a_supply_restatement_is_not() -> None:
    closes = [1.0] * 10 + [0.001] * 5
    caps = [1000.0] * 15  # market cap continuous: supply x1000
    redenominated = find_breaks(_frame(closes, [1e9] * 15, caps))
    assert BreakCode.BROKEN_FEED in redenominated["code"].to_list() or BreakCode.SUPPLY_JUMP in (
        redenominated["code"].to_list()
    )
    restated = find_breaks(_frame([1.0] * 15, [1e6] * 15, [1000.0] * 10 + [5000.0] * 5))
    assert restated.is_empty()


def test_cut_series_numbers_segments_and_drops_duplicate_days() -> None:
    frame = _frame([1.0] * 20 + [5.0] * 5, [1000.0] * 20 + [10.0] + [1000.0] * 4)
    dup = frame.slice(3, 1).with_columns(ts=pl.col("ts") + 3_600_000)  # a sub-daily row
    cuts = cut_series(pl.concat([frame, dup]))
    assert cuts.dropped_days["day"].to_list() == [18_003]
    assert cuts.dropped_days["code"].to_list() == [BreakCode.DUPLICATE_DAY]
    seg = cuts.frame.sort("ts")["segment"].to_list()
    assert seg[:19] == [0] * 19 and set(seg[19:]) == {1}
    assert 18_003 not in cuts.frame["day"].to_list()
    assert cuts.report()[0]["code"] in {BreakCode.DUPLICATE_DAY, BreakCode.JUMP_ON_THIN_VOLUME}


def test_a_non_finite_price_is_not_a_break_the_quality_gate_rejects_it() -> None:
    # Given a clean series with one infinite and one NaN close (bad data, not a market move)
    closes = [1.0] * 10 + [float("inf")] + [1.0] * 5 + [float("nan")] + [1.0] * 3
    frame = _frame(closes, [1000.0] * 20, [1000.0] * 20)
    # Then no break is found and the series stays one segment, so the gate sees (and rejects)
    # those rows with NON_FINITE instead of the coin silently restarting after a "move"
    assert find_breaks(frame).is_empty()
    assert set(cut_series(frame).frame["segment"].to_list()) == {0}


@pytest.mark.realdata
def test_the_real_qanplatform_token_swap_is_cut(data_dir: Path) -> None:
    # Given the real CoinGecko series of qanplatform (2022-11-02: x11.9 on $182 of volume)
    daily = RecordedMarketData(data_dir).daily_all().filter(pl.col("symbol") == "qanplatform")
    cuts = cut_series(daily)
    swap = cuts.breaks.filter(pl.col("day") == 19_298)
    # Then the series is cut on that day with the reason
    assert swap["code"].to_list() == [BreakCode.JUMP_ON_THIN_VOLUME]
    assert "x11.9" in swap["reason"][0] and "token swap" in swap["reason"][0]
    before = cuts.frame.filter(pl.col("day") == 19_297)["segment"][0]
    after = cuts.frame.filter(pl.col("day") == 19_298)["segment"][0]
    assert after == before + 1
    # and a break is known on its own day: cutting the series there finds the same break
    upto = cut_series(daily.filter(pl.col("ts") <= 19_298 * DAY_MS)).breaks
    assert 19_298 in upto["day"].to_list()
