"""E2E: a scheduled scan driven through the Lambda handler on moto over the real shared data.

moto does not fire EventBridge schedules: the test delivers the schedule's constant input
(`{"top_n": ...}` plus an as-of date for replay) to the handler, as the rule target would.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources

pytestmark = pytest.mark.realdata


@dataclass
class Context:
    function_name: str = "cst-scan"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-scan"
    aws_request_id: str = "req-e2e-1"


@pytest.fixture
def aws(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CST_DATA_SOURCE": "recorded",
        "CST_DATA_DIR": str(data_dir),
        # no promoted model in this registry: the deployment's opt-in to technical-only trading
        "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",
        "POWERTOOLS_SERVICE_NAME": "cst-scan",
        "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from cryptosmarttrader.handlers import _common
    from cryptosmarttrader.handlers import scan as scan_handler

    _common.reset_caches()
    scan_handler._service.cache_clear()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        yield clients
    _common.reset_caches()
    scan_handler._service.cache_clear()


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    from cryptosmarttrader.handlers import scan as scan_handler

    return scan_handler.handler(event, Context())  # type: ignore[arg-type]


def _orders(clients: AwsClients) -> list[dict[str, Any]]:
    return clients.dynamodb.scan(TableName=AwsResources().orders_table)["Items"]  # type: ignore[return-value]


def test_scheduled_scan_orders_once_and_respects_kill_switch(
    aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptosmarttrader.handlers import scan as scan_handler

    logs = io.StringIO()
    tap = logging.StreamHandler(logs)
    tap.setFormatter(scan_handler.logger.registered_formatter)
    scan_handler.logger.addHandler(tap)  # the Lambda's own JSON formatter, to a buffer
    level = scan_handler.logger.log_level
    scan_handler.logger.setLevel("INFO")  # as deployed (LOG_LEVEL=INFO), whatever ran before

    # Given the schedule's input replayed for a real date
    event = {"top_n": 10, "asof": "2021-05-01"}

    # When the scan Lambda runs
    first = _invoke(event)

    # Then it ranked the real universe and recorded one paper order per BUY, each with its ID
    assert first["status"] == "ok", first
    report = first["report"]
    # (a replayed day ranks its point-in-time top 200: the members with a price series)
    assert 100 < report["universe"] <= 200
    buys = [r for r in report["rows"] if r["action"] == "buy"]
    assert buys, "expected at least one BUY on 2021-05-01 (a broad bull market)"
    # (the research universe: a BUY on a coin the paper venue cannot trade is reported, not ordered)
    ordered = [r for r in buys if r["client_order_id"] is not None]
    assert ordered, "expected at least one BUY on a tradable coin"
    assert report["orders_created"] == len(ordered) == len(_orders(aws))
    assert report["orders_created"] + report["not_ordered_untradable"] == len(buys)
    assert all(len(r["client_order_id"]) == 32 for r in ordered)
    # and each order is at most 2% of the 100k paper equity
    for item in _orders(aws):
        assert float(item["notional"]["N"]) <= 2000.0

    # And the report is published for readers (API, dashboards) as the latest signals
    from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
    from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore

    signals = DynamoSignalStore(DynamoStateStore(AwsResources().state_table, aws.dynamodb))
    latest = signals.latest()
    assert latest is not None
    # the published signals are the report's rows without this run's own bookkeeping (whether
    # this invocation created the order or found it: order_outcome)
    assert latest["rows"] == [
        {k: v for k, v in r.items() if k != "order_outcome"} for r in report["rows"]
    ]
    assert {r.get("order_outcome") for r in report["rows"]} >= {"created"}

    # When the same scheduled scan is delivered again (at-least-once delivery)
    second = _invoke(event)

    # Then no second order exists and the duplicates are reported
    assert second["report"]["orders_created"] == 0
    assert second["report"]["duplicates_prevented"] == len(ordered)
    assert len(_orders(aws)) == len(ordered)

    # When an operator turns the kill-switch on and a later scan runs
    aws.ssm.put_parameter(
        Name=AwsResources().kill_switch_param,
        Value=json.dumps(
            {"on": True, "reason": "e2e drill", "actor": "test", "at": "2021-05-02T00:00:00+00:00"}
        ),
        Type="String",
        Overwrite=True,
    )
    scan_handler._service.cache_clear()  # a new execution environment: no cached parameter
    third = _invoke({"top_n": 10, "asof": "2021-05-02"})

    # Then nothing is ordered and every BUY says the kill-switch stopped it
    assert third["report"]["orders_created"] == 0
    assert len(_orders(aws)) == len(ordered)
    held = [r for r in third["report"]["rows"] if "kill_switch" in " ".join(r["reasons"])]
    assert held and all(r["client_order_id"] is None for r in held)

    # And the Lambda emitted EMF metrics and JSON logs carrying the correlation ID
    assert '"OrdersCreated"' in capsys.readouterr().out
    scan_handler.logger.removeHandler(tap)
    scan_handler.logger.setLevel(level)
    lines = [json.loads(x) for x in logs.getvalue().splitlines()]
    done = [x for x in lines if x["message"] == "scan complete"]
    assert len(done) == 3
    assert {x["correlation_id"] for x in done} == {"req-e2e-1"}
    assert done[-1]["level"] == "INFO"
    assert done[-1]["orders_created"] == 0


def test_malformed_event_is_rejected_without_side_effects(aws: AwsClients) -> None:
    result = _invoke({"top_n": "lots"})
    assert result["status"] == "rejected"
    assert "invalid scan event" in result["error"]
    assert _orders(aws) == []


def test_future_asof_is_rejected(aws: AwsClients) -> None:
    result = _invoke({"top_n": 5, "asof": "2999-01-01"})
    assert result["status"] == "rejected"
    assert "future" in result["error"]
    assert _orders(aws) == []
