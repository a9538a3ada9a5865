"""The deployed scan's side data after a gap in the ingest: the scan at 00:15 UTC decides as of
00:00, and an agent whose newest lake reading is too old abstains saying so; it never votes on a
Fear & Greed reading several days old or on funding from days ago.

The deployed scan's reader (``wiring.lake_agent_data``) reads the in-memory lake
(``tests/fakes.py``, held to the S3 adapters by ``test_lake_contract.py``), with hand-written
readings (the gap is what is checked)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import polars as pl
import pytest

from cryptosmarttrader.domain.agents.registry import run_agents
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.types import ms_from_utc
from cryptosmarttrader.settings import AwsResources
from cryptosmarttrader.wiring import lake_agent_data
from tests.fakes import InMemoryAgentInputs, InMemoryLake

HOUR = 3_600_000
ASOF = ms_from_utc(datetime(2024, 3, 14, tzinfo=UTC))  # the scan's decision: 00:00 of its day
UNIVERSE = pl.DataFrame({"symbol": ["BTC/USDT"], "ts": [ASOF]})


@pytest.fixture
def inputs() -> InMemoryAgentInputs:
    return InMemoryAgentInputs()


def _sentiment(inputs: InMemoryAgentInputs, days_before: list[int]) -> None:
    inputs.write_sentiment(
        pl.DataFrame(
            {
                "ts": [ASOF - d * DAY_MS for d in days_before],
                "value": [10.0] * len(days_before),
                "classification": ["Extreme Fear"] * len(days_before),
            }
        ),
        "fear_greed",
    )


def _funding(inputs: InMemoryAgentInputs, hours_before: list[int]) -> None:
    inputs.write_funding(
        pl.DataFrame(
            {
                "symbol": ["BTC/USDT"] * len(hours_before),
                "ts": [ASOF - h * HOUR for h in hours_before],
                "funding_rate": [0.001] * len(hours_before),
            }
        ),
        "binance",
    )


def _votes(inputs: InMemoryAgentInputs) -> dict[str, dict[str, object]]:
    # the deployed scan's reader, its lake (never called here) swapped for the in-memory one
    deployed = lake_agent_data(cast(Any, None), AwsResources(), "binance")
    state = replace(deployed, lake=InMemoryLake(), inputs=inputs).state(UNIVERSE, ASOF)
    votes = run_agents(state, ASOF, only=("sentiment", "funding"))
    return {str(r["agent"]): r for r in votes.to_dicts()}


def test_the_readings_of_the_last_ingest_runs_are_voted_on(inputs: InMemoryAgentInputs) -> None:
    # Given yesterday's Fear & Greed reading and the last day's three funding readings
    _sentiment(inputs, [1, 2])
    _funding(inputs, [8, 16, 24])

    # When the scan's agents read the lake as of 00:00
    votes = _votes(inputs)

    # Then both vote
    assert votes["sentiment"]["abstain_reason"] is None
    assert votes["funding"]["abstain_reason"] is None


def test_after_days_without_ingest_the_agents_abstain_saying_the_data_is_stale(
    inputs: InMemoryAgentInputs,
) -> None:
    # Given the sentiment and funding ingests stopped: the newest Fear & Greed reading is 5 days
    # old, the newest funding reading 40 hours old (both inside the reader's look-back)
    _sentiment(inputs, [5, 6, 7])
    _funding(inputs, [40, 48, 56])

    # When the scan's agents read the lake as of 00:00
    votes = _votes(inputs)

    # Then neither votes on the old reading; each says it is stale
    assert "stale" in str(votes["sentiment"]["abstain_reason"])
    assert votes["sentiment"]["probability"] is None
    assert "stale" in str(votes["funding"]["abstain_reason"])
    assert votes["funding"]["probability"] is None


def test_a_reading_stamped_at_the_decision_is_not_read_by_it(inputs: InMemoryAgentInputs) -> None:
    # Given only today's Fear & Greed reading (stamped 00:00 of the decision's day)
    _sentiment(inputs, [0])

    # When the scan's agents read the lake as of 00:00
    votes = _votes(inputs)

    # Then the sentiment agent abstains: that day's reading is used once the day has ended
    assert votes["sentiment"]["probability"] is None
    assert "no alternative.me fear & greed reading" in str(votes["sentiment"]["abstain_reason"])
