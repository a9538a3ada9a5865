"""A warm scan function over registry states an operator meets: several scheduled runs on a
moving clock across a promotion and a rollback, a production pointer of the ranking group that
cannot be read as one (the scan keeps running, its ranking abstaining with the reason), and a
registry written before the pointer existed (the scan finds the production version by a query,
once).

The scan runs as in tests/integration/test_scan_serves_promotion.py: one process is one warm
execution environment, each run gets the schedule rule's exact event."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.model_registry_embedded import POINTER_SK
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.settings import AwsResources, MlSettings
from cryptosmarttrader.wiring import RANKING_GROUP, registry_service
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

SCHEDULED = timedelta(minutes=15)  # the daily rule's minute (cron(15 0 * * ? *))


def _rollback(clients: AwsClients) -> None:
    """What ``cst model rollback`` does for the ranking group (the operator's machine)."""
    service = registry_service(
        MlSettings(), AwsResources(), clients, SystemClock(), group=RANKING_GROUP
    )
    service.rollback("bad live results", "operator")


def test_daily_scans_on_a_moving_clock_follow_promotion_and_rollback(
    aws: AwsClients, bundles: dict[int, Path]
) -> None:
    # Given v1 then v2 registered, v1 promoted
    v1 = _register(aws, bundles[30])
    v2 = _register(aws, bundles[10])
    served = []
    with time_machine.travel(DAY + SCHEDULED, tick=True):
        _promote(v1)
        served.append(_scan()["model_version"])
    # When v2 is promoted the next day and rolled back the day after
    with time_machine.travel(DAY + timedelta(days=1) + SCHEDULED, tick=True):
        _promote(v2)
        served.append(_scan()["model_version"])
    with time_machine.travel(DAY + timedelta(days=2) + SCHEDULED, tick=True):
        _rollback(aws)
        served.append(_scan()["model_version"])
    with time_machine.travel(DAY + timedelta(days=3) + SCHEDULED, tick=True):
        served.append(_scan()["model_version"])

    # Then each day's scheduled run serves the version in production that day
    assert served == [f"{RANKING_GROUP}/v{v}" for v in (v1, v2, v1, v1)]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param({"version": {"S": "one"}}, id="version-not-a-number"),
        pytest.param({}, id="no-version"),
        pytest.param({"version": {"N": "1"}, "artifact_sha256": {"S": "f" * 8}}, id="digest"),
    ],
)
def test_a_damaged_production_pointer_makes_the_warm_scans_ranking_abstain(
    aws: AwsClients, bundles: dict[int, Path], damage: dict[str, dict[str, str]]
) -> None:
    with time_machine.travel(DAY + SCHEDULED, tick=False):
        # Given a warm scan serving v1
        _promote(_register(aws, bundles[30]))
        assert _scan()["model_version"] == f"{RANKING_GROUP}/v1"

        # When the ranking group's production pointer cannot be read as one (a hand edit, a
        # partial restore of the state table)
        aws.dynamodb.put_item(
            TableName=AwsResources().state_table,
            Item={"pk": {"S": f"model#{RANKING_GROUP}"}, "sk": {"S": POINTER_SK}, **damage},
        )

        # Then the scheduled scan still runs; the model's agents (ml, ensemble) abstain, saying
        # why
        blind = _scan()
        ranking = blind["agents"]["ml"]
        assert ranking["votes"] == 0, ranking
        assert blind["agents"]["ensemble"] == ranking
        (why,) = ranking["abstention_reasons"]
        assert why.startswith(f"model registry unreadable: the promoted {RANKING_GROUP} version")
        assert f"damaged registry item model#{RANKING_GROUP}/{POINTER_SK}" in why
        assert blind["model_version"] == f"{RANKING_GROUP}/unknown"
        assert blind["orders_created"] == 0


def test_a_registry_written_before_the_pointer_existed_is_served(
    aws: AwsClients, bundles: dict[int, Path]
) -> None:
    with time_machine.travel(DAY + SCHEDULED, tick=False):
        # Given v1 in production in a registry written before the production pointer existed
        _promote(_register(aws, bundles[30]))
        key = {"pk": {"S": f"model#{RANKING_GROUP}"}, "sk": {"S": POINTER_SK}}
        aws.dynamodb.delete_item(TableName=AwsResources().state_table, Key=key)
        # When the scan runs (a cold start of the upgraded function)
        served = _scan()
        # Then it serves v1, found by querying the group's versions, and writes the pointer
        assert served["model_version"] == f"{RANKING_GROUP}/v1"
        stored = aws.dynamodb.get_item(TableName=AwsResources().state_table, Key=key)
        assert stored["Item"]["version"] == {"N": "1"}
        # and a later promotion moves it as it moves the versions
        v2 = _register(aws, bundles[10])
        _promote(v2)
        assert _scan()["model_version"] == f"{RANKING_GROUP}/v{v2}"
