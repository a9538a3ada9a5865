"""The deployed scan's side data after a gap in the ingest: the scan at 00:15 UTC decides as of
00:00, and an agent whose newest lake reading is too old abstains saying so; it never votes on a
Fear & Greed reading several days old or on funding from days ago.

The lake is moto S3 written through the real adapters, with hand-written readings (the gap is
what is checked)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import polars as pl
import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs
from cryptosmarttrader.domain.agents.registry import run_agents
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.types import ms_from_utc
from cryptosmarttrader.settings import AwsResources
from cryptosmarttrader.wiring import lake_agent_data
from tests.support.aws import moto_stack

HOUR = 3_600_000
ASOF = ms_from_utc(datetime(2024, 3, 14, tzinfo=UTC))  # the scan's decision: 00:00 of its day
UNIVERSE = pl.DataFrame({"symbol": ["BTC/USDT"], "ts": [ASOF]})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch) as clients:
        yield clients


def _inputs() -> S3AgentInputs:
    return S3AgentInputs(AwsResources().lake_bucket, boto3.client("s3"))


def _sentiment(days_before: list[int]) -> None:
    _inputs().write_sentiment(
        pl.DataFrame(
            {
                "ts": [ASOF - d * DAY_MS for d in days_before],
                "value": [10.0] * len(days_before),
                "classification": ["Extreme Fear"] * len(days_before),
            }
        ),
        "fear_greed",
    )


def _funding(hours_before: list[int]) -> None:
    _inputs().write_funding(
        pl.DataFrame(
            {
                "symbol": ["BTC/USDT"] * len(hours_before),
                "ts": [ASOF - h * HOUR for h in hours_before],
                "funding_rate": [0.001] * len(hours_before),
            }
        ),
        "binance",
    )


def _votes(clients: AwsClients) -> dict[str, dict[str, object]]:
    state = lake_agent_data(clients.s3, AwsResources(), "binance").state(UNIVERSE, ASOF)
    votes = run_agents(state, ASOF, only=("sentiment", "funding"))
    return {str(r["agent"]): r for r in votes.to_dicts()}


def test_the_readings_of_the_last_ingest_runs_are_voted_on(aws: AwsClients) -> None:
    # Given yesterday's Fear & Greed reading and the last day's three funding readings
    _sentiment([1, 2])
    _funding([8, 16, 24])

    # When the scan's agents read the lake as of 00:00
    votes = _votes(aws)

    # Then both vote
    assert votes["sentiment"]["abstain_reason"] is None
    assert votes["funding"]["abstain_reason"] is None


def test_after_days_without_ingest_the_agents_abstain_saying_the_data_is_stale(
    aws: AwsClients,
) -> None:
    # Given the sentiment and funding ingests stopped: the newest Fear & Greed reading is 5 days
    # old, the newest funding reading 40 hours old (both inside the reader's look-back)
    _sentiment([5, 6, 7])
    _funding([40, 48, 56])

    # When the scan's agents read the lake as of 00:00
    votes = _votes(aws)

    # Then neither votes on the old reading; each says it is stale
    assert "stale" in str(votes["sentiment"]["abstain_reason"])
    assert votes["sentiment"]["probability"] is None
    assert "stale" in str(votes["funding"]["abstain_reason"])
    assert votes["funding"]["probability"] is None


def test_a_reading_stamped_at_the_decision_is_not_read_by_it(aws: AwsClients) -> None:
    # Given only today's Fear & Greed reading (stamped 00:00 of the decision's day)
    _sentiment([0])

    # When the scan's agents read the lake as of 00:00
    votes = _votes(aws)

    # Then the sentiment agent abstains: that day's reading is used once the day has ended
    assert votes["sentiment"]["probability"] is None
    assert "no alternative.me fear & greed reading" in str(votes["sentiment"]["abstain_reason"])
