"""The go-live rollback's order step as the state machine runs it on a live stack: the execution
Lambda (it holds the account's keys) gets ``{"action": "golive_cancel_orders", ...}``.

A rollback of a new version's canary happens while the stack's live run is no longer the
active one, so the live gate refuses placing orders; the rollback's venue only cancels, so it
is built all the same (its keys still checked first) and the sweep runs. The handler runs as
deployed (moto for AWS); Binance's live API is served by ``cst_devtools.fake_binance``.
"""

from __future__ import annotations

import io
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
from cryptosmarttrader.settings import VenueSettings
from cryptosmarttrader.venues import VenueKeysRefusedError, check_live_gate
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.venue_redirect import binance_sandbox_served_by
from tests.support.live_stack import live_execution_stack

pytestmark = pytest.mark.realdata

KEYS = {
    "api_key": "hD4kLiveRollbackKeyForTestsOnly00000000000000000000000000000000",
    "secret": "hS9sLiveRollbackSecretForTestsOnly111111111111111111111111111111",
}
EVENT = {
    "action": "golive_cancel_orders",
    "run_id": "run-2",
    "failure": {"Error": "CanarySloBreach", "Cause": "uptime 0.9 < 0.995"},
}


class Context:
    function_name = "cst-execute"
    aws_request_id = "req-rollback-1"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cst-execute"


@pytest.fixture
def canary_on_live_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """A live stack deployed with run-1 (promoted), now running run-2's canary."""
    with live_execution_stack(monkeypatch, KEYS) as clients:
        clock = FixedClock(datetime.now(UTC) - timedelta(days=30))
        state = DynamoStateStore(clients.resources.state_table, clients.dynamodb)
        orders = DynamoOrderStore(clients.resources.orders_table, clients.dynamodb)
        golive = GoLiveService(state, orders, kill_switch=None, clock=clock)  # type: ignore[arg-type]
        for run_id in ("run-1", "run-2"):
            params = GoLiveParams(run_id=run_id, version=run_id, previous_version="v0")
            golive.start_stage(params, Stage.STAGING, "staging started")
            clock.advance(timedelta(days=7))
            golive.start_stage(params, Stage.CANARY, "staging SLOs met")
            clock.advance(timedelta(days=3))
            if run_id == "run-1":
                golive.promote(params, "canary SLOs met")
        yield clients


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    from cryptosmarttrader.handlers import execute

    with redirect_stdout(io.StringIO()):
        return execute.handler(event, Context())  # type: ignore[arg-type, no-any-return]


def _fake(data_dir: Path) -> FakeBinance:
    return FakeBinance(
        KEYS["api_key"], KEYS["secret"], RecordedMarketData(data_dir), lambda: datetime.now(UTC)
    )


def test_golive_rollback_cancels_on_a_live_venue_the_live_gate_closed(
    canary_on_live_stack: AwsClients, data_dir: Path
) -> None:
    # Given the live gate closed to placing orders (run-2's canary is the active run)
    state = DynamoStateStore(
        canary_on_live_stack.resources.state_table, canary_on_live_stack.dynamodb
    )
    assert not check_live_gate(VenueSettings(), state).allowed
    fake = _fake(data_dir)
    with serve(fake) as url, binance_sandbox_served_by(url, live=True):
        # When the state machine's CancelOpenOrders task invokes the execution function
        result = _invoke(EVENT)
    # Then the venue was built (its key checked) and swept: nothing was open, nothing placed
    assert result["venue"] == "live", result
    assert (result["canceled"], result["kept"], result["in_doubt"]) == ([], {}, {})
    assert ("GET", "/sapi/v1/account/apiRestrictions") in [(m, p) for m, p, _ in fake.requests]
    assert fake.posts() == 0


def test_golive_rollback_on_a_venue_fails_the_task_when_the_key_is_refused(
    canary_on_live_stack: AwsClients, data_dir: Path
) -> None:
    # Given a key that may withdraw
    fake = _fake(data_dir)
    fake.api_restrictions["enableWithdrawals"] = True
    # Then the rollback's order step raises: the task fails, is retried, then recorded
    with (
        serve(fake) as url,
        binance_sandbox_served_by(url, live=True),
        pytest.raises(VenueKeysRefusedError, match="withdrawals enabled") as raised,
    ):
        _invoke(EVENT)
    assert "live trading refused" not in str(raised.value)  # the keys refused it, not the gate
    assert fake.posts() == 0
