"""A warm scan whose read of the registry's production pointer times out (the network, not an
answer of DynamoDB): the model's agents (ml, ensemble) abstain with the reason, as for any
failed read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from botocore.exceptions import ReadTimeoutError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.wiring import RANKING_GROUP
from tests.integration.test_scan_serves_promotion import (
    DAY,
    _promote,
    _register,
    _scan,
    aws,
    bundles,
)

pytestmark = pytest.mark.realdata

__all__ = ["aws", "bundles"]


def test_a_registry_read_that_times_out_makes_the_warm_scans_ranking_abstain(
    aws: AwsClients, bundles: dict[int, Path]
) -> None:
    with time_machine.travel(DAY + timedelta(minutes=15), tick=False):
        # Given a warm scan serving v1
        _promote(_register(aws, bundles[30]))
        assert _scan()["model_version"] == f"{RANKING_GROUP}/v1"

        # When every read of the registry's production pointer times out
        def timed_out(request: Any, **_: Any) -> None:
            if f'"model#{RANKING_GROUP}"' in (request.body or b"").decode():
                raise ReadTimeoutError(endpoint_url=request.url)

        dynamodb = _common.aws_clients().dynamodb
        dynamodb.meta.events.register("before-send.dynamodb.GetItem", timed_out)
        try:
            blind = _scan()
        finally:
            dynamodb.meta.events.unregister("before-send.dynamodb.GetItem", timed_out)

        # Then the scan runs, the model's agents (ml, ensemble) abstaining with the reason,
        # nothing ordered
        ranking = blind["agents"]["ml"]
        assert ranking["votes"] == 0, ranking
        assert blind["agents"]["ensemble"] == ranking
        (why,) = ranking["abstention_reasons"]
        assert why.startswith(f"model registry unreadable: the promoted {RANKING_GROUP} version")
        assert blind["model_version"] == f"{RANKING_GROUP}/unknown"
        assert blind["orders_created"] == 0
