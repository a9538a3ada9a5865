"""A throttled S3 read of the agents' side data (funding, quotes, sentiment) leaves those agents
abstaining with the reason; the scan itself goes on (services/scan.py ``ScanAnalyzer._state``).

The lake is moto's S3; the throttling is S3's own answer (``SlowDown``, HTTP 503) once the
client's retries are spent, injected on the lake client's calls."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cryptosmarttrader.adapters.lake_agent_data import LakeAgentData
from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer

pytestmark = [pytest.mark.realdata]

BUCKET = "cst-lake-faults"
ASOF = datetime(2022, 3, 1, tzinfo=UTC)


def _slow_down(**kwargs: Any) -> None:
    raise ClientError(
        {
            "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
            "ResponseMetadata": {"HTTPStatusCode": 503},
        },
        kwargs.get("model").name if kwargs.get("model") is not None else "GetObject",
    )


def test_a_throttled_side_data_read_is_an_abstention_not_a_failed_scan(data_dir: Path) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        # Given the lake answering every read of the side data with S3's throttling error
        s3.meta.events.register("before-call.s3", _slow_down)
        side = LakeAgentData(
            S3ParquetLake(BUCKET, s3),
            S3AgentInputs(BUCKET, s3),
            home="binance",
            venues=("binance", "kucoin"),
        )
        analyzer = replace(
            recorded_analyzer(data_dir, FixedClock(ASOF), TradingSettings(universe="all")),
            agent_data=side,
        )

        # When the scan decides
        analysis = analyzer.analyze(ASOF, 5)

    # Then it decided on the universe, and the agents needing the side data abstained saying
    # why, on every coin
    assert analysis.ranked
    tally = analysis.agent_tally
    assert tally["technical"].votes >= 1
    for name in ("funding", "arbitrage", "sentiment"):
        assert tally[name].votes == 0, (name, tally[name])
        reasons = tally[name].abstention_reasons
        assert reasons and all("SlowDown" in why for why in reasons), (name, reasons)
