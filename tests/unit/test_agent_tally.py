"""The per-agent tally the scan reports: votes, abstentions and their reasons, for all nine."""

from __future__ import annotations

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, abstentions
from cryptosmarttrader.domain.agents.regime import Regime, RegimeReading
from cryptosmarttrader.domain.agents.tally import AGENT_NAMES, MAX_REASONS, tally_agents


def _votes(agent: str, symbols: list[str], p: float = 0.6) -> pl.DataFrame:
    n = len(symbols)
    return pl.DataFrame(
        {
            "symbol": symbols,
            "agent": [agent] * n,
            "ts": [0] * n,
            "probability": [p] * n,
            "confidence": [0.5] * n,
            "reasons": [["r"]] * n,
            "abstain_reason": [None] * n,
        },
        schema=VOTE_SCHEMA,
    )


def test_each_agent_counts_votes_and_abstentions_with_reasons() -> None:
    coins = ["a", "b", "c"]
    frame = pl.concat(
        [
            _votes("technical", ["a", "b"]),
            abstentions(["c"], "technical", 0, "fewer than 60 bars"),
            abstentions(["a"], "liquidity", 0, "veto: median 30d volume $5 below $1000000"),
            abstentions(["b", "c"], "liquidity", 0, "no directional view: liquid"),
            abstentions(coins, "funding", 0, "no recorded perpetual funding"),
        ]
    )
    regime = RegimeReading(0, Regime.SIDEWAYS, "index flat")

    tally = tally_agents(frame, coins, regime, {"ml": "no fitted model configured"})

    assert list(tally)[: len(AGENT_NAMES)] == list(AGENT_NAMES)
    assert (tally["technical"].votes, tally["technical"].abstentions) == (2, 1)
    assert dict(tally["technical"].abstention_reasons) == {"fewer than 60 bars": 1}
    # the liquidity gate decides on every coin it can judge; its vetoes are counted apart
    assert (tally["liquidity"].votes, tally["liquidity"].vetoes) == (3, 1)
    assert tally["liquidity"].abstentions == 0
    assert dict(tally["funding"].abstention_reasons) == {"no recorded perpetual funding": 3}
    # a known regime applies to every scored coin
    assert (tally["regime"].votes, tally["regime"].abstentions) == (3, 0)
    # an agent that did not run abstains on every coin with the stated reason, never silently
    assert dict(tally["ml"].abstention_reasons) == {"no fitted model configured": 3}
    assert dict(tally["ensemble"].abstention_reasons) == {"produced no vote": 3}


def test_unknown_regime_abstains_with_its_reason_and_rare_reasons_are_grouped() -> None:
    coins = [f"c{i}" for i in range(MAX_REASONS + 5)]
    frame = pl.concat(
        [abstentions([c], "technical", 0, f"reason {chr(65 + i)}") for i, c in enumerate(coins)]
    )
    tally = tally_agents(frame, coins, RegimeReading(0, None, "fewer than 200 index days"), {})

    assert dict(tally["regime"].abstention_reasons) == {"fewer than 200 index days": len(coins)}
    reasons = dict(tally["technical"].abstention_reasons)
    assert len(reasons) == MAX_REASONS + 1
    assert reasons["5 other reason(s)"] == 5
    assert sum(reasons.values()) == len(coins)


def test_reasons_differing_only_in_numbers_are_counted_together() -> None:
    coins = ["a", "b", "c", "d"]
    frame = pl.concat(
        [
            abstentions(["a"], "early_mover", 0, "large cap (rank 1 by market cap ≤ 20)"),
            abstentions(["b"], "early_mover", 0, "large cap (rank 2 by market cap ≤ 20)"),
            abstentions(["c"], "early_mover", 0, "large cap (rank 3 by market cap ≤ 20)"),
            abstentions(["d"], "early_mover", 0, "fewer than 35 bars"),
        ]
    )
    tally = tally_agents(frame, coins, None, {})
    assert dict(tally["early_mover"].abstention_reasons) == {
        "large cap (rank 1 by market cap ≤ 20) (and 2 similar)": 3,
        "fewer than 35 bars": 1,
    }


def test_a_shared_abstention_is_every_agents_reason() -> None:
    frame = abstentions(["a", "b"], "all", 0, "data source unhealthy: breaker open")
    tally = tally_agents(frame, ["a", "b"], None, {"regime": "data source unhealthy: breaker open"})
    for name in AGENT_NAMES:
        assert tally[name].votes == 0
        assert dict(tally[name].abstention_reasons) == {"data source unhealthy: breaker open": 2}
    assert "all" not in tally
