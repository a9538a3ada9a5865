"""`cst execute --venue paper|testnet|live`: the execution cycle on a real-order venue, locally.

``--venue testnet`` is driven against ``cst_devtools.fake_binance`` (the Binance spot REST shape,
every signed request verified, fills at the open of the recorded real 1h candles). The CLI
builds its ccxt client itself, in sandbox mode, from a key file; the sandbox's host is served
by the fake through ``cst_devtools.venue_redirect`` inside this test process, which also fails
any request to another host (so "nothing sent" is checked on the wire). The process clock is
moved to a day of the recorded data (time-machine, ``tick=True``): a real venue trades now,
never at a replayed ``--at``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from typer.testing import CliRunner, Result

from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoPositionStore
from cryptosmarttrader.cli import app
from cryptosmarttrader.cli import execute as execute_cli
from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import embedded_aws
from cst_devtools.venue_redirect import (
    LeftLoopbackError,
    binance_sandbox_served_by,
)
from tests.support.testnet_desk import SandboxDesk, fake_testnet_account

pytestmark = pytest.mark.realdata

API_KEY = "cl1Tn8kQ3vZ0pW5hLrX2mJc7eYbN4sFgD6uTiKoE9qRvHyZlAxBnMjCdSfPgU7hW"
SECRET = "Qm4nB8vQx1LmZ4kR7pT0wJsE9cF2uGiA6oDyNbVtHrKlMeXqWzPaSd5jU1fCgI3z"
DAY = datetime(2022, 5, 10, tzinfo=UTC)  # the 10:00 BTC/USDT bar opens at 31397.68
QUANTITY = Decimal("0.003")  # ~94 USDT: within 2 % of the 10000 USDT the account trades
COMMISSION = Decimal("0.001")


class Desk(SandboxDesk):
    def run(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            app,
            ["execute", *args, "--state-dir", str(self.state), "--data", str(self.data)],
            input=input,
        )

    def nothing_sent(self) -> bool:
        return self.redirect.sent == [] and self.fake.requests == []


@pytest.fixture
def desk(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    with fake_testnet_account(data_dir, tmp_path, monkeypatch, API_KEY, SECRET) as (
        fake,
        redirect,
        keys,
    ):
        yield Desk(fake, redirect, tmp_path / "st", data_dir, keys)


def _decide(desk: Desk, when: datetime) -> str:
    """A decision recorded the way `cst scan` records it (a NEW order, valid 120 minutes)."""
    intent = OrderIntent("cst-scan-v1", Symbol("BTC/USDT"), Side.BUY, Intent.OPEN,
                         int((DAY - timedelta(days=1)).timestamp() * 1000), Quantity(QUANTITY),
                         Price.of("31400"))  # fmt: skip
    order = Order.new(intent, created_at=when, mode="paper", rank=1,
                      valid_for=timedelta(minutes=120))  # fmt: skip
    with embedded_aws(desk.state, AwsResources()) as aws:
        assert DynamoOrderStore(aws.resources.orders_table, aws.clients.dynamodb).record(order)
    return order.client_order_id.value


def _books(desk: Desk) -> tuple[dict[str, Any], Decimal]:
    with embedded_aws(desk.state, AwsResources()) as aws:
        res, ddb = aws.resources, aws.clients.dynamodb
        [order] = [
            o
            for o in DynamoOrderStore(res.orders_table, ddb).list_orders()
            if o["intent"] != "protect"
        ]  # the entry (a held position also has its stop)
        position = DynamoPositionStore(res.positions_table, ddb).get("BTC/USDT")
    return order, Decimal(0) if position is None else Decimal(str(position["quantity"]))


def test_cst_execute_testnet_places_and_fills_a_real_signed_order(desk: Desk) -> None:
    with time_machine.travel(DAY + timedelta(hours=9, minutes=5), tick=True) as clock:
        coid = _decide(desk, datetime.now(UTC))
        # When `cst execute --venue testnet` runs at 09:10
        clock.move_to(DAY + timedelta(hours=9, minutes=10))
        sent = desk.run("--venue", "testnet", "--keys-file", str(desk.keys), "--json")
        assert sent.exit_code == 0, sent.output
        assert json.loads(sent.stdout)["dispatched"] == 1
        # Then one signed market order reached the sandbox, under the decision's client id
        [params] = [
            p for m, path, p in desk.fake.requests if (m, path) == ("POST", "/api/v3/order")
        ]
        assert params["newClientOrderId"] == coid and params["symbol"] == "BTCUSDT"
        assert Decimal(params["quantity"]) == QUANTITY and params["type"] == "MARKET"
        assert set(desk.redirect.sandbox_hosts) == {"testnet.binance.vision"}
        order, held = _books(desk)
        assert (order["mode"], order["status"], held) == ("testnet", "ACCEPTED", 0)
        # When the next cycle runs after the 10:00 bar filled it
        clock.move_to(DAY + timedelta(hours=10, minutes=10))
        filled = desk.run("--venue", "testnet", "--keys-file", str(desk.keys))
        assert filled.exit_code == 0, filled.output
        assert "on the testnet (binance) venue" in filled.stdout
    # Then the ledger booked the venue's fill: the position is what reached the account
    order, held = _books(desk)
    assert order["status"] == "FILLED" and order["client_order_id"] == coid
    assert held == QUANTITY * (1 - COMMISSION) == desk.fake.balances["BTC"]
    # one entry sent, once; the held position got its protective stop on the venue
    entries = [p for m, path, p in desk.fake.requests
               if (m, path) == ("POST", "/api/v3/order") and p["type"] == "MARKET"]  # fmt: skip
    assert [p["newClientOrderId"] for p in entries] == [coid]
    [stop] = [o for o in desk.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert stop["status"] == "NEW" and Decimal(stop["origQty"]) <= held
    for output in (sent.output, filled.output):
        assert API_KEY not in output and SECRET not in output


def test_cst_execute_live_venue_without_keys_refuses_and_sends_nothing(desk: Desk) -> None:
    result = desk.run("--venue", "live", "--yes")
    assert result.exit_code != 0
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: --venue live needs the binance account's API keys")
    assert "nothing was sent" in line
    assert desk.nothing_sent() and not desk.state.exists()


def test_cst_execute_live_venue_without_confirmation_refuses(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = ["--venue", "live", "--keys-file", str(desk.keys)]
    # no terminal, no --yes: no one can confirm
    refused = desk.run(*keys)
    assert refused.exit_code != 0
    assert "--venue live without a terminal needs --yes and CST_LIVE_CONFIRM='live binance'" in (
        refused.stderr
    )
    # --yes alone (a copied command line) is not a confirmation either
    monkeypatch.setenv("CST_LIVE_CONFIRM", "live kraken")  # names another exchange
    alone = desk.run(*keys, "--yes")
    assert alone.exit_code != 0 and "also needs CST_LIVE_CONFIRM='live binance'" in alone.stderr
    # at a terminal the phrase must be typed as asked; --yes does not skip it
    monkeypatch.setattr(execute_cli, "_interactive", lambda: True)
    typed = desk.run(*keys, "--yes", input="yes\n")
    assert typed.exit_code != 0
    assert 'live trading not confirmed (expected "live binance")' in typed.stderr
    for result in (refused, alone, typed):
        assert len(result.stderr.strip().splitlines()) <= 2  # the prompt, then one error line
        assert API_KEY not in result.output and SECRET not in result.output
    assert desk.nothing_sent()


def test_cst_execute_live_venue_confirmed_goes_to_the_production_api_not_the_sandbox(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the typed confirmation: the client is built for the production API (no sandbox),
    # which this test's loopback guard stops at its first request
    monkeypatch.setattr(execute_cli, "_interactive", lambda: True)
    with pytest.raises(LeftLoopbackError, match=r"https://api\.binance\.com"):
        CliRunner().invoke(
            app,
            ["execute", "--venue", "live", "--keys-file", str(desk.keys), "--state-dir",
             str(desk.state), "--data", str(desk.data)],
            input="live binance\n",
            catch_exceptions=False,
        )  # fmt: skip
    assert desk.redirect.sandbox_hosts == [] and desk.fake.requests == []


def test_cst_execute_live_venue_refuses_a_key_that_can_withdraw_before_any_signed_read(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a confirmed live run whose key Binance says may withdraw (the production API
    # served by the fake exchange)
    monkeypatch.setattr(execute_cli, "_interactive", lambda: True)
    desk.fake.api_restrictions["enableWithdrawals"] = True
    with binance_sandbox_served_by(desk.redirect.base_url, live=True):
        result = desk.run("--venue", "live", "--keys-file", str(desk.keys), input="live binance\n")
    # Then one line, exit 2: the permissions were the only signed request, after the venue's
    # public server time (no balance read, no order)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2  # the confirmation prompt, then one error line
    line = lines[-1]
    assert "trading key refused (withdrawals enabled)" in line and "nothing was sent" in line
    assert [(m, p) for m, p, _ in desk.fake.requests] == [
        ("GET", "/api/v3/time"),
        ("GET", "/sapi/v1/account/apiRestrictions"),
    ]
    assert API_KEY not in result.output and SECRET not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--venue", "moon"], "--venue must be one of paper, testnet, live, got 'moon'"),
        (["--venue", "testnet", "--exchange", "kraken"], "--venue testnet is refused for kraken"),
        (["--venue", "testnet", "--exchange", "kucoin"], "--venue testnet is refused for kucoin"),
        (
            ["--venue", "testnet", "--exchange", "ftx"],
            "--exchange (or CST_EXCHANGE) must be one of",
        ),
        (["--venue", "testnet", "--at", "2022-05-10T09:10:00Z"], "paper venue only"),
        (["--venue", "testnet"], "needs the binance account's API keys"),
    ],
)
def test_cst_execute_testnet_refusals_are_one_line(
    desk: Desk, args: list[str], message: str
) -> None:
    result = desk.run(*args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert message in line
    assert desk.nothing_sent() and not desk.state.exists()


def test_cst_execute_testnet_refuses_keys_others_can_read_or_a_missing_capital(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.keys.chmod(0o644)
    shared = desk.run("--venue", "testnet", "--keys-file", str(desk.keys))
    assert shared.exit_code == 2 and "readable by other users (mode 644)" in shared.stderr
    desk.keys.chmod(0o600)
    desk.keys.write_text(json.dumps({"api_key": API_KEY}))
    partial = desk.run("--venue", "testnet", "--keys-file", str(desk.keys))
    assert partial.exit_code == 2 and "malformed: fields ['secret']" in partial.stderr
    assert API_KEY not in partial.output
    monkeypatch.setenv("CST_VENUE_API_KEY", API_KEY)
    half = desk.run("--venue", "testnet")
    assert half.exit_code == 2 and "CST_VENUE_API_SECRET is not set" in half.stderr
    desk.keys.write_text(json.dumps({"api_key": API_KEY, "secret": SECRET}))
    monkeypatch.delenv("CST_EQUITY_USD")
    no_capital = desk.run("--venue", "testnet", "--keys-file", str(desk.keys))
    assert no_capital.exit_code == 2 and "set CST_EQUITY_USD" in no_capital.stderr
    assert desk.nothing_sent()


def test_cst_execute_testnet_refuses_keys_the_venue_rejects_before_any_order(desk: Desk) -> None:
    # Given a decision waiting and a key file whose secret is not the account's
    with time_machine.travel(DAY + timedelta(hours=9, minutes=5), tick=True) as clock:
        coid = _decide(desk, datetime.now(UTC))
        desk.keys.write_text(json.dumps({"api_key": API_KEY, "secret": "X" + SECRET[1:]}))
        clock.move_to(DAY + timedelta(hours=9, minutes=10))
        result = desk.run("--venue", "testnet", "--keys-file", str(desk.keys))
    # Then the run stops at the venue's refusal of the signed read: one line, no order sent
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert "account could not be read with these keys" in line
    assert "Signature for this request is not valid" in line and "no order was sent" in line
    assert SECRET[1:] not in result.output
    assert desk.fake.posts() == 0
    order, _ = _books(desk)
    assert (order["client_order_id"], order["status"]) == (coid, "NEW")
