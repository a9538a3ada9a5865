"""`cst golive rollback --venue testnet`: the manual rollback cancels at the venue, locally.

Driven against ``cst_devtools.fake_binance`` exactly as `cst execute --venue testnet` is
(tests/integration/test_cli_execute_venue.py): the CLI builds its ccxt client in sandbox mode
from a key file, the sandbox's host is served by the fake through ``cst_devtools.venue_redirect``,
and the process clock is moved to a day of the recorded data (time-machine, ``tick=True``).
`cst execute` places a BTC entry, books its fill and places the position's protective stop, then
sends a second entry that rests on the venue; `cst golive rollback` runs the deployed rollback's
sweep on that venue: the resting entry is cancelled there, the stop stays resting, and a cancel
whose answer is lost is reported in doubt, never recorded CANCELED.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from typer.testing import CliRunner, Result

from cryptosmarttrader.adapters import ccxt_venue
from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore
from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import embedded_aws
from cst_devtools.venue_redirect import binance_sandbox_served_by
from tests.support.live_venue import on_fake
from tests.support.sdk_waits import without_exchange_retry_waits
from tests.support.testnet_desk import SandboxDesk, fake_testnet_account

pytestmark = pytest.mark.realdata

API_KEY = "rB7kQ3vZ0pW5hLrX2mJc7eYbN4sFgD6uTiKoE9qRvHyZlAxBnMjCdSfPgU7hWcl1"
SECRET = "Zq4nB8vQx1LmZ4kR7pT0wJsE9cF2uGiA6oDyNbVtHrKlMeXqWzPaSd5jU1fCgI3m"
DAY = datetime(2022, 5, 10, tzinfo=UTC)  # the 10:00 BTC/USDT bar opens at 31397.68
RUN = "canary-run"


class Desk(SandboxDesk):
    def execute(self) -> Result:
        return CliRunner().invoke(
            app,
            ["execute", "--venue", "testnet", "--keys-file", str(self.keys), "--state-dir",
             str(self.state), "--data", str(self.data)],
        )  # fmt: skip

    def rollback(self, *args: str) -> Result:
        return CliRunner().invoke(
            app,
            ["golive", "rollback", "--run-id", RUN, "--reason", "canary fills drift",
             "--state-dir", str(self.state), *args],
        )  # fmt: skip

    def venue_status(self, coid: str) -> str:
        (order,) = self.fake.orders(coid)
        return str(order["status"])

    def ledger(self) -> dict[str, dict[str, Any]]:
        with embedded_aws(self.state, AwsResources()) as aws:
            store = DynamoOrderStore(aws.resources.orders_table, aws.clients.dynamodb)
            return {str(o["client_order_id"]): o for o in store.list_orders()}


@pytest.fixture
def desk(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    golive_env = ("CST_GOLIVE_TOPIC_ARN", "CST_GOLIVE_STATE_MACHINE_ARN")
    with fake_testnet_account(
        data_dir, tmp_path, monkeypatch, API_KEY, SECRET, also_unset=golive_env
    ) as (fake, redirect, keys):
        yield Desk(fake, redirect, tmp_path / "st", data_dir, keys)


def _decide(desk: Desk, bar: datetime, quantity: str) -> str:
    """A decision recorded the way `cst scan` records it (a NEW order, valid 120 minutes)."""
    intent = OrderIntent("cst-scan-v1", Symbol("BTC/USDT"), Side.BUY, Intent.OPEN,
                         int(bar.timestamp() * 1000), Quantity.of(quantity),
                         Price.of("31400"))  # fmt: skip
    order = Order.new(intent, created_at=datetime.now(UTC), mode="paper", rank=1,
                      valid_for=timedelta(minutes=120))  # fmt: skip
    with embedded_aws(desk.state, AwsResources()) as aws:
        assert DynamoOrderStore(aws.resources.orders_table, aws.clients.dynamodb).record(order)
    return order.client_order_id.value


def _held_with_stop_and_resting_entry(desk: Desk, clock: Any) -> tuple[list[str], str]:
    """`cst execute` buys BTC (filled at the 10:00 open, its protective OCO placed: a stop and a
    take-profit leg), then at 10:12 sends a second entry that rests on the venue until the
    11:00 bar opens. Returns the client order IDs of the OCO's legs and of the resting entry."""
    _decide(desk, DAY - timedelta(days=1), "0.003")
    clock.move_to(DAY + timedelta(hours=9, minutes=10))
    assert desk.execute().exit_code == 0
    clock.move_to(DAY + timedelta(hours=10, minutes=10))
    filled = desk.execute()
    assert filled.exit_code == 0, filled.output
    # the position's protective sells: an OCO list (its stop and take-profit legs)
    legs = sorted(o["client_order_id"] for o in desk.ledger().values()
                  if o["intent"] == Intent.PROTECT.value)  # fmt: skip
    assert len(legs) == 2 and {desk.venue_status(leg) for leg in legs} == {"NEW"}
    resting = _decide(desk, DAY, "0.002")
    clock.move_to(DAY + timedelta(hours=10, minutes=12))  # the 10:00 quote is still fresh
    sent = desk.execute()
    assert sent.exit_code == 0, sent.output
    assert desk.ledger()[resting]["status"] == "ACCEPTED", (sent.output, desk.ledger()[resting])
    assert desk.venue_status(resting) == "NEW"
    return legs, resting


def _switch(desk: Desk) -> dict[str, Any]:
    shown = CliRunner().invoke(app, ["killswitch", "status", "--json", "--state-dir",
                                     str(desk.state)])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    switch: dict[str, Any] = json.loads(shown.stdout)["kill_switch"]
    return switch


def test_cst_golive_rollback_testnet_cancels_the_resting_entry_and_keeps_the_stop(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clients_on_the_fake(desk, monkeypatch)
    with time_machine.travel(DAY + timedelta(hours=9, minutes=5), tick=True) as clock:
        legs, resting = _held_with_stop_and_resting_entry(desk, clock)
        # When an operator rolls the run back on the testnet venue
        clock.move_to(DAY + timedelta(hours=10, minutes=20))
        result = desk.rollback("--venue", "testnet", "--keys-file", str(desk.keys), "--json")
        assert result.exit_code == 0, result.output
        # Then the resting entry is cancelled on the venue, CANCELED in the ledger on its answer
        assert desk.venue_status(resting) == "CANCELED"
        # and the held position's protective sells still rest there, as the ledger says
        assert {desk.venue_status(leg) for leg in legs} == {"NEW"}
    ledger = desk.ledger()
    assert ledger[resting]["status"] == "CANCELED"
    assert {ledger[leg]["status"] for leg in legs} == {"ACCEPTED"}
    deletes = [p for m, path, p in desk.fake.requests if (m, path) == ("DELETE", "/api/v3/order")]
    assert [p["origClientOrderId"] for p in deletes] == [resting]
    # and the report names each outcome, as the deployed rollback's order step does
    run = json.loads(result.stdout)["run"]
    orders = run["rollback_steps"]["orders"]
    assert run["status"] == "ROLLED_BACK" and "ManualRollback: canary fills drift" in run["reason"]
    assert (orders["venue"], orders["canceled"], sorted(orders["kept"])) == (
        "testnet",
        [resting],
        legs,
    )
    assert all(orders["kept"][leg].startswith("protects the") for leg in legs)
    assert (orders["in_doubt"], orders["unprotected"], orders["unreadable"]) == ({}, {}, [])
    # and the switch holds for the rollback (its marker), so later sweeps keep the stop too
    switch = _switch(desk)
    assert (switch["on"], switch["golive_rollback"]) == (True, RUN)
    assert API_KEY not in result.output and SECRET not in result.output


def _clients_on_the_fake(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The testnet commands' clients driven as ``tests/support/live_venue.on_fake`` drives one:
    a lost answer is a real client timeout after 0.1 s (the fake holds it far longer), no
    throttle wait (the production rate limit is checked by ``test_live_venue_fake_exchange``)."""
    make_client = ccxt_venue.ccxt_client
    monkeypatch.setattr(
        ccxt_venue, "ccxt_client", lambda *a, **k: on_fake(make_client(*a, **k), desk.fake)
    )


def _answers_lost_after_the_cancel(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first cancel is booked and its answer lost; every cancel or order lookup after it
    is lost before the venue reads it (the client times out each time: a real socket timeout,
    after 0.1 s on a request the fake withholds, as ``tests/support/live_venue.on_fake`` drives
    a client; the fake holds those answers far longer)."""
    cancels: list[str] = []

    def kind(method: str, path: str) -> str | None:
        if path != "/api/v3/order" or (method != "DELETE" and not cancels):
            return None
        return "timeout_after_booking" if method == "DELETE" and not cancels else (
            "timeout_before_booking"
        )  # fmt: skip

    def lost(method: str, path: str) -> str | None:
        fault = kind(method, path)
        if fault == "timeout_after_booking":
            cancels.append(method)
        return fault

    monkeypatch.setattr(desk.fake, "take_fault", lost)
    monkeypatch.setattr(desk.fake, "withholds", lambda method, path: kind(method, path) is not None)


def test_cst_golive_rollback_testnet_reports_a_lost_cancel_answer_in_doubt(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clients_on_the_fake(desk, monkeypatch)
    with time_machine.travel(DAY + timedelta(hours=9, minutes=5), tick=True) as clock:
        legs, resting = _held_with_stop_and_resting_entry(desk, clock)
        # Given the venue cancels the entry but every answer about it from then on is lost (the
        # adapter's retries of a lost lookup are all made; their backoff is recorded, not slept)
        _answers_lost_after_the_cancel(desk, monkeypatch)
        backoffs = without_exchange_retry_waits(monkeypatch)
        clock.move_to(DAY + timedelta(hours=10, minutes=20))
        # When the operator rolls back on the testnet venue (text output)
        result = desk.rollback("--venue", "testnet", "--keys-file", str(desk.keys))
        assert result.exit_code == 0, result.output
        assert desk.venue_status(resting) == "CANCELED"
        assert {desk.venue_status(leg) for leg in legs} == {"NEW"}
    # Then the ledger never records CANCELED on no answer: the entry is in doubt, and said so
    ledger = desk.ledger()
    assert ledger[resting]["status"] == "CANCEL_PENDING"
    assert {ledger[leg]["status"] for leg in legs} == {"ACCEPTED"}
    assert backoffs, "the lost lookups were never retried"
    assert "open orders (testnet venue): canceled 0, kept 2, in doubt 1" in result.stdout
    assert f"in doubt {resting}: CANCEL_PENDING" in result.stdout
    for leg in legs:
        assert f"kept {leg}: protects the" in result.stdout


def test_cst_golive_rollback_refuses_before_changing_anything(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the account's keys: one line, nothing sent, no state written
    no_keys = desk.rollback("--venue", "testnet")
    assert no_keys.exit_code == 2, no_keys.output
    [line] = no_keys.stderr.strip().splitlines()
    assert "--venue testnet needs the binance account's API keys" in line
    moon = desk.rollback("--venue", "moon")
    assert moon.exit_code == 2 and "--venue must be one of paper, testnet, live" in moon.stderr
    # Against a deployed stack: the deployed steps roll back, not this local command
    monkeypatch.setenv(
        "CST_GOLIVE_STATE_MACHINE_ARN", "arn:aws:states:eu-west-1:123456789012:stateMachine:GoLive"
    )
    deployed = desk.rollback("--venue", "testnet", "--keys-file", str(desk.keys))
    assert deployed.exit_code == 2, deployed.output
    [line] = deployed.stderr.strip().splitlines()
    assert "CST_GOLIVE_STATE_MACHINE_ARN names a deployed go-live machine" in line
    assert '"On a deployed stack"' in line and "nothing was changed" in line
    assert desk.fake.requests == [] and desk.redirect.sent == []
    assert not desk.state.exists()


def test_cst_golive_rollback_live_asks_no_confirmation_but_refuses_a_key_that_can_withdraw(
    desk: Desk,
) -> None:
    # Given live keys Binance says may withdraw (the production API served by the fake), and
    # no terminal to type a confirmation in: the rollback's venue only cancels, so none is asked
    desk.fake.api_restrictions["enableWithdrawals"] = True
    with binance_sandbox_served_by(desk.redirect.base_url, live=True):
        result = desk.rollback("--venue", "live", "--keys-file", str(desk.keys))
    # Then the key is refused before anything changes: one line, no cancel, no state written
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert "trading key refused (withdrawals enabled)" in line and "nothing was sent" in line
    assert [(m, p) for m, p, _ in desk.fake.requests] == [
        ("GET", "/api/v3/time"),
        ("GET", "/sapi/v1/account/apiRestrictions"),
    ]
    assert not desk.state.exists()
