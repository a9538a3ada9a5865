"""The execution Lambda on a live stack whose trading key may withdraw: the cycle abstains.

The handler runs as deployed (moto for AWS: the key's secret, the go-live records, the tables);
Binance's live API is served by ``cst_devtools.fake_binance`` through
``cst_devtools.venue_redirect`` (``live=True``), every signed request verified.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.golive import GoLiveParams, Stage
from cryptosmarttrader.services.golive import GoLiveService
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.moto_shims import emf_points, emf_records
from cst_devtools.venue_redirect import binance_sandbox_served_by
from tests.support.live_stack import live_execution_stack

pytestmark = pytest.mark.realdata

KEYS = {
    "api_key": "hD4kLiveWithdrawKeyForTestsOnly000000000000000000000000000000000",
    "secret": "hS9sLiveWithdrawSecretForTestsOnly11111111111111111111111111111",
}


class Context:
    function_name = "cst-execute"
    aws_request_id = "req-keys-1"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cst-execute"


@pytest.fixture
def live_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with live_execution_stack(monkeypatch, KEYS) as clients:
        # a go-live run that passed staging and canary: the live gate lets the venue be built
        clock = FixedClock(datetime.now(UTC) - timedelta(days=11))
        state = DynamoStateStore(clients.resources.state_table, clients.dynamodb)
        orders = DynamoOrderStore(clients.resources.orders_table, clients.dynamodb)
        golive = GoLiveService(state, orders, kill_switch=None, clock=clock)  # type: ignore[arg-type]
        params = GoLiveParams(run_id="run-1", version="v2", previous_version="v1")
        golive.start_stage(params, Stage.STAGING, "staging started")
        clock.advance(timedelta(days=7))
        golive.start_stage(params, Stage.CANARY, "staging SLOs met")
        clock.advance(timedelta(days=3))
        golive.promote(params, "canary SLOs met")
        yield clients


def _invoke() -> tuple[dict[str, Any], str]:
    from cryptosmarttrader.handlers import execute

    out = io.StringIO()
    with redirect_stdout(out):
        result = execute.handler({}, Context())  # type: ignore[arg-type]
    return result, out.getvalue()


def test_live_venue_execution_cycle_abstains_when_the_key_can_withdraw(
    live_stack: AwsClients, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Binance says the stack's key may withdraw
    fake = FakeBinance(
        KEYS["api_key"], KEYS["secret"], RecordedMarketData(data_dir), lambda: datetime.now(UTC)
    )
    fake.api_restrictions["enableWithdrawals"] = True
    with serve(fake) as url, binance_sandbox_served_by(url, live=True):
        # When the scheduled execution cycle runs
        result, out = _invoke()
    # Then it abstains with the one-line reason, having asked only what the key may do (after
    # the venue's public server time, so the check is signed on its clock)
    assert result["status"] == "rejected", result
    assert "trading key refused (withdrawals enabled)" in result["error"]
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("GET", "/api/v3/time"),
        ("GET", "/sapi/v1/account/apiRestrictions"),
    ]
    assert fake.posts() == 0
    # and it is counted (the VenueKeysRefused alarm) and logged as an error, without the key
    refused = [p for p in emf_points(emf_records(out)) if p["name"] == "VenueKeysRefused"]
    assert [p["value"] for p in refused] == [1.0]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == ["exchange keys refused"]
    assert "withdrawals enabled" in errors[0].__dict__["reason"]
    logged = out + json.dumps(result) + "".join(json.dumps(r.__dict__, default=str) for r in errors)
    assert KEYS["api_key"] not in logged and KEYS["secret"] not in logged
