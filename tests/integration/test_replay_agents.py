"""The evaluation's agents, computed once per series and read on each decision day
(``services/skill_evaluation.py: agent_probabilities``), on the real data: strictly point in
time (bars after a decision day never change that day's votes) and the scan's votes on each
day's own window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.pit_membership import load_pit_membership
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.agents.early_mover import early_mover_votes
from cryptosmarttrader.domain.agents.technical import technical_votes
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.services.skill_evaluation import (
    _day,
    _gate,
    _universe,
    agent_probabilities,
)
from cryptosmarttrader.wiring import excluded_coins

pytestmark = pytest.mark.realdata

LOOKBACK = 260
FIRST, LAST = _day(date(2021, 1, 6)), _day(date(2021, 12, 29))
DAYS = list(range(FIRST, LAST + 1, 28))
D = DAYS[len(DAYS) // 2]  # the decision day the data is truncated after


@pytest.fixture(scope="module")
def replay(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(cut frame to LAST + 60 days, the gate's rows of every decision day, the members)."""
    market = RecordedMarketData(data_dir)
    asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=LAST + 60)
    history = market.daily_universe(asof, LAST + 60 - FIRST + 2 * LOOKBACK).filter(
        ~pl.col("symbol").is_in(list(excluded_coins(market)))
    )
    frame = cut_series(history).frame
    universe = _universe(frame, load_pit_membership(data_dir), DAYS, 200)
    at, _ = _gate(frame, universe, DAYS, LOOKBACK)
    return frame, at, universe


def test_bars_after_a_decision_day_never_change_its_votes(
    replay: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    frame, at, _ = replay
    # Given the votes of every decision day on the whole frame (bars up to LAST + 60 days)
    whole = agent_probabilities(frame, at).filter(pl.col("day") == D).sort("symbol")
    # When every bar after the decision day D is dropped, and (separately) rewritten
    truncated = frame.filter(pl.col("day") <= D)
    later = pl.col("day") > D
    rewritten = frame.with_columns(
        close=pl.when(later).then(pl.col("close") * 3.0).otherwise("close"),
        volume=pl.when(later).then(pl.col("volume") * 0.1).otherwise("volume"),
        market_cap=pl.when(later).then(None).otherwise("market_cap"),
    )
    on_d = at.filter(pl.col("day") == D)
    cut = agent_probabilities(truncated, on_d).sort("symbol")
    changed = agent_probabilities(rewritten, at).filter(pl.col("day") == D).sort("symbol")
    # Then D's votes are exactly the same, coin by coin
    assert whole.height > 50
    assert whole["p_technical"].null_count() < whole.height
    assert whole["p_early_mover"].null_count() < whole.height
    assert cut.equals(whole)
    assert changed.equals(whole)
    # while a later day's votes did change (the rewrite reached the agents)
    after = DAYS[DAYS.index(D) + 1]
    assert not (
        agent_probabilities(rewritten, at)
        .filter(pl.col("day") == after)
        .equals(agent_probabilities(frame, at).filter(pl.col("day") == after))
    )


def test_the_votes_are_the_scans_votes_on_each_days_window(
    replay: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    frame, at, universe = replay
    ours = agent_probabilities(frame, at)
    by_ts = frame.sort("ts")
    for day in DAYS[::3]:
        # Given the scan's own path on the day's window (current segment, gate, agents)
        asof_ms = day * DAY_MS
        names = universe.filter((pl.col("day") == day) & pl.col("symbol").is_not_null())
        window = by_ts.filter(
            (pl.col("ts") > (day - LOOKBACK) * DAY_MS)
            & (pl.col("ts") < asof_ms + DAY_MS)
            & pl.col("symbol").is_in(names["symbol"].implode())
        ).filter(pl.col("segment") == pl.col("segment").max().over("symbol"))
        clean = check_daily(
            window.select("symbol", "ts", "close", "volume", "market_cap").sort("symbol", "ts"),
            asof_ms,
        ).clean
        votes = pl.concat([technical_votes(clean, asof_ms), early_mover_votes(clean, asof_ms)])
        scan = (
            votes.filter(pl.col("ts") // DAY_MS == day)
            .select("symbol", "agent", pl.col("probability"))
            .pivot(on="agent", index="symbol", values="probability")
            .sort("symbol")
        )
        mine = ours.filter(pl.col("day") == day).sort("symbol")
        # Then the same coins are voted on, with the same probabilities (moving averages read
        # the whole series here, the window there: 1e-8 apart at most after 260 days)
        assert mine["symbol"].to_list() == scan["symbol"].to_list()
        for agent in ("technical", "early_mover"):
            a, b = mine[f"p_{agent}"], scan[agent]
            assert (a.is_null() == b.is_null()).all(), (day, agent)
            assert ((a - b).abs().fill_null(0.0) <= 1e-8).all(), (day, agent)
