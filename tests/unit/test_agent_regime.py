"""Regime math on tiny hand-written inputs; the classification is checked on real data in
tests/integration/test_agents_realdata.py."""

import polars as pl
import pytest

from cryptosmarttrader.domain.agents.regime import Regime, market_index, regime_at
from cryptosmarttrader.domain.agents.registry import (
    REGIME_STRATEGIES,
    UNKNOWN_REGIME_STRATEGY,
    strategy_for,
)
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS

T = 1_600_000_000_000 - 1_600_000_000_000 % DAY_MS


def _rows(rows: list[tuple[str, int, float, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(s, T + d * DAY_MS, c, 0.0, m) for s, d, c, m in rows],
        schema=DAILY_SCHEMA,
        orient="row",
    )


def test_index_weights_each_return_by_the_previous_days_market_cap() -> None:
    # Given A (cap 300) rises 10 % and B (cap 100) falls 10 % on day 1
    frame = _rows(
        [("a", 0, 1.0, 300.0), ("a", 1, 1.1, 330.0), ("b", 0, 1.0, 100.0), ("b", 1, 0.9, 90.0)]
    )
    index = market_index(frame)
    # Then the day's index return is (300·0.1 - 100·0.1) / 400 = +5 %
    assert index["ret"].to_list() == pytest.approx([0.05])
    assert index["coins"].to_list() == [2]


def test_index_never_bridges_a_missing_day_or_weighs_an_unknown_cap() -> None:
    # Given A skips day 1 and B has no market cap on day 0
    frame = _rows(
        [
            ("a", 0, 1.0, 100.0),
            ("a", 2, 2.0, 200.0),
            ("b", 0, 1.0, None),
            ("b", 1, 1.5, 150.0),
            ("b", 2, 1.5, 150.0),
        ]
    )
    index = market_index(frame)
    # Then day 1 has no weight at all (absent) and day 2 counts only B (A's 2-day jump is not a
    # one-day return)
    assert index["ts"].to_list() == [T + 2 * DAY_MS]
    assert index["ret"].to_list() == pytest.approx([0.0])


def test_short_history_has_no_regime_and_says_why() -> None:
    frame = _rows([("a", d, 1.0 + d / 100, 100.0) for d in range(50)])
    reading = regime_at(frame, T + 49 * DAY_MS)
    assert reading.regime is None
    assert reading.reason == "insufficient market history: 49 index days < 200"
    assert strategy_for(reading) is UNKNOWN_REGIME_STRATEGY


def test_every_regime_has_weights_summing_to_one_and_a_bounded_exposure() -> None:
    assert set(REGIME_STRATEGIES) == set(Regime)
    for strategy in [*REGIME_STRATEGIES.values(), UNKNOWN_REGIME_STRATEGY]:
        assert sum(strategy.weights.values()) == pytest.approx(1.0)
        assert 0 < strategy.exposure <= 1
    assert REGIME_STRATEGIES[Regime.CRASH].exposure < REGIME_STRATEGIES[Regime.BULL_TREND].exposure


def test_run_agents_can_run_only_the_named_agents() -> None:
    from cryptosmarttrader.domain.agents.registry import MarketState, run_agents
    from cryptosmarttrader.domain.agents.sentiment import SentimentReading

    # Given a universe and a Fear & Greed reading of the day before
    universe = _rows([("a", 0, 1.0, 5.0), ("b", 0, 2.0, 6.0)])
    reading = SentimentReading(T - DAY_MS, 20.0, "Extreme Fear", "test")
    state = MarketState(universe=universe, sentiment=(reading,))
    # When only the side-data agents are run (as a replayed fit runs them)
    votes = run_agents(state, T, only=("sentiment", "funding"))
    # Then only they answer, one row per coin each, exactly as in the full run
    assert sorted(set(votes["agent"].to_list())) == ["funding", "sentiment"]
    everything = run_agents(state, T).filter(pl.col("agent").is_in(["funding", "sentiment"]))
    assert votes.sort("agent", "symbol").equals(everything.sort("agent", "symbol"))
    assert votes.filter(pl.col("agent") == "sentiment")["abstain_reason"].null_count() == 2
    assert run_agents(state, T, only=()).is_empty()
