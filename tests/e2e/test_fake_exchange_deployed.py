"""E2E: the DEPLOYED execution function trading on a testnet venue, end to end, on a moving clock.

The stack is synthesized and deployed exactly as an operator deploys a testnet stack
(``-c cst:venue_mode=testnet -c cst:equity_usd=10000``) with cdklocal to a moto server of this
module; the account's keys are written into the secret the stack created (``put-secret-value``,
docs/venues.md). The venue is ``cst_devtools.fake_binance``: it speaks the Binance spot REST
shape, verifies every signed request (API key header, HMAC signature, recvWindow) and fills
market orders at the open of the recorded real 1h candles. The deployed function builds its own
ccxt ``binance`` client in sandbox mode from the secret's keys; the only substitution is the
sandbox's host (``testnet.binance.vision`` → the fake on 127.0.0.1), made by
``cst_devtools.venue_redirect`` inside this test process, and any request to another host fails.

As in test_scheduled_functions.py, moto runs no Lambda code and fires no schedule: the test plays
EventBridge, delivering the execution rule's own event (``{}``) to the deployed handler
in-process, with the deployed environment, at the rule's minute (HH:10) of a day in 2021 (the
process clock is moved with time-machine, ``tick=True``). The lake is filled by the deployed
ingest function over the recorded data (``CST_DATA_SOURCE=recorded``, the offline machine) at
HH:02 / 00:05 before each cycle; its events name the one pair traded here instead of a hundred.
The decision is recorded the way the scan Lambda records it (``Order.new`` through the orders
store, mode ``paper``, valid for the scan's 120 minutes).

The pair: MANA/USDT around 2021-10-28 (the recorded data shows it more than doubling within two
days), so the strategy's take-profit (+100 %) is reached by real prices: the venue's take-profit
leg (the ``LIMIT_MAKER`` of the position's OCO order list, beside its stop) fills on the recorded
Oct 30 09:00 bar, before the hourly rule's confirming second daily close. The recorded exchangeInfo fixture defines BTCUSDT and LTCUSDT only: MANAUSDT is
listed here, visibly, with LTCUSDT's filters (step 0.001, minimum notional 5 USDT); every MANA
price is the recorded MANA/USDT candle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine

from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoPositionStore
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.faults import free_port
from cst_devtools.local_deploy import deploy, moto_server, npx_path
from cst_devtools.venue_redirect import (
    ProcessKilled,
    SandboxRedirect,
    binance_sandbox_served_by,
)
from infra.app import EQUITY_CONTEXT_KEY, VENUE_CONTEXT_KEY
from tests.e2e.conftest import REPO_ROOT, local_assembly
from tests.e2e.test_scheduled_functions import Delivery, Rule, Stack

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

API_KEY = "tn5Qk0aVwz9pW3hLrX2mJc8eYbN4sFgD6uTiKoE1qRvHyZlAxBnMjCdSfPgU7hW2"
SECRET = "Yh3nB8vQx1LmZ4kR7pT0wJsE9cF2uGiA6oDyNbVtHrKlMeXqWzPaSd5jU1fCgI8o"
EQUITY = "10000"
DAY = datetime(2021, 10, 28, tzinfo=UTC)
PAIR = "MANA/USDT"
VENUE_SYMBOL = "MANAUSDT"
QUANTITY = Decimal("180")
PER_BAR = Decimal("120")  # the busy testnet matches at most this much per hour bar
COMMISSION = Decimal("0.001")  # Binance's taker commission, taken in the asset a buy receives


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Stack]:
    """A testnet stack deployed from its own synth (the venue mode is a deploy-time context)."""
    if npx_path() is None:
        message = "npx (Node.js) is needed to run cdklocal for the local deployment"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("testnet-stack")
    assembly = local_assembly(
        work / "assembly", {VENUE_CONTEXT_KEY: "testnet", EQUITY_CONTEXT_KEY: EQUITY}
    )
    with moto_server(free_port()) as endpoint:
        deployed = deploy(endpoint, REPO_ROOT, work / "outputs.json", assembly_dir=assembly)
        stack = Stack(deployed, data_dir)
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        # the operator writes the sandbox account's keys into the secret the stack created
        secrets.put_secret_value(
            SecretId=deployed.stack_outputs["ExchangeKeysSecret"],
            SecretString=json.dumps({"api_key": API_KEY, "secret": SECRET}),
        )
        yield stack


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Venue:
    fake: FakeBinance
    redirect: SandboxRedirect


@pytest.fixture
def venue(market: RecordedMarketData) -> Iterator[Venue]:
    """The sandbox account: exactly the capital the stack trades, on the fake Binance."""
    fake = FakeBinance(
        API_KEY,
        SECRET,
        market,
        lambda: datetime.now(UTC),  # the market clock is the (moved) process clock
        balances={"USDT": Decimal(EQUITY)},
        client_timeout_s=2.0,
    )
    fake.symbols[VENUE_SYMBOL] = {  # listed with LTCUSDT's filters (see the module docstring)
        **fake.symbols["LTCUSDT"], "symbol": VENUE_SYMBOL, "baseAsset": "MANA"
    }  # fmt: skip
    fake.warm(VENUE_SYMBOL)
    with serve(fake) as url, binance_sandbox_served_by(url) as redirect:
        yield Venue(fake, redirect)


class Desk:
    """The deployed stack driven the way EventBridge and the scan drive it."""

    def __init__(self, stack: Stack, clock: Any) -> None:
        self.stack = stack
        self.clock = clock
        (self.execution,) = stack.rules_of("ExecutionFunctionName")
        self.orders = DynamoOrderStore(stack.outputs["CSTORDERSTABLE"], stack.dynamodb)
        self.positions = DynamoPositionStore(stack.outputs["CSTPOSITIONSTABLE"], stack.dynamodb)

    def at(self, when: datetime) -> datetime:
        self.clock.move_to(when)
        return when

    def ingest(self, when: datetime, timeframe: str, lookback: int) -> None:
        event = {
            "exchange": "binance",
            "timeframe": timeframe,
            "symbols": [PAIR],
            "initial_lookback_bars": lookback,
        }
        rule = Rule("ingest", "arn:ingest", "cron(2 * * * ? *)",
                    self.stack.outputs["IngestFunctionName"], event)  # fmt: skip
        done = self.stack.deliver(rule, self.at(when))
        assert done.error is None and done.result is not None, done.error
        assert done.result["status"] == "ok", done.result

    def cycle(self, hour: datetime) -> dict[str, Any]:
        """HH:02 the hourly ingest (00:05 the daily one too), HH:10 the execution rule."""
        self.ingest(hour + timedelta(minutes=2), "1h", 72)
        if hour.hour == 0:
            self.ingest(hour + timedelta(minutes=5), "1d", 120)
        done: Delivery = self.stack.deliver(self.execution, self.at(hour + timedelta(minutes=10)))
        assert done.error is None and done.result is not None, done.error
        assert done.result["status"] == "ok", done.result
        report: dict[str, Any] = done.result["report"]
        assert report["risk_level"] == "NORMAL", report
        assert report["balance_drift"] == [], report["balance_drift"]
        return report

    def decide(self, when: datetime) -> str:
        """The scan's decision, recorded as the scan Lambda records it."""
        created = self.at(when)
        intent = OrderIntent(
            "cst-scan-v1", Symbol(PAIR), Side.BUY, Intent.OPEN,
            int((DAY - timedelta(days=1)).timestamp() * 1000),  # the last closed daily bar
            Quantity(QUANTITY), Price.of("0.7571"),
        )  # fmt: skip
        order = Order.new(intent, created_at=created, mode="paper", rank=1,
                          valid_for=timedelta(minutes=120))  # fmt: skip
        assert self.orders.record(order) is True
        return order.client_order_id.value

    def order(self, client_order_id: str) -> dict[str, Any]:
        found = self.orders.get(client_order_id)
        assert found is not None
        return found

    def held(self) -> Decimal:
        position = self.positions.get(PAIR)
        return Decimal(0) if position is None else Decimal(str(position["quantity"]))


@pytest.fixture
def desk(stack: Stack, venue: Venue) -> Iterator[Desk]:
    from cryptosmarttrader.handlers.kill_switch_seed import initial_value

    with time_machine.travel(DAY - timedelta(minutes=30), tick=True) as clock:
        stack.reset(initial_value(datetime.now(UTC)))  # a brand-new stack's tables and lake
        yield Desk(stack, clock)


def _sent(fake: FakeBinance, side: str, kind: str = "MARKET") -> list[dict[str, str]]:
    """The orders of ``kind`` sent alone: MARKET for entries and exits, STOP_LOSS_LIMIT for a
    plain protective stop (the stop of an OCO list is sent with the list, ``_oco_posts``)."""
    return [p for m, path, p in fake.requests
            if (m, path) == ("POST", "/api/v3/order") and p.get("side") == side
            and p.get("type") == kind]  # fmt: skip


def _resting_stops(fake: FakeBinance) -> list[dict[str, Any]]:
    return [o for o in fake.orders() if o["type"] == "STOP_LOSS_LIMIT"
            and o["status"] in ("NEW", "PARTIALLY_FILLED")]  # fmt: skip


def _oco_posts(fake: FakeBinance) -> list[dict[str, str]]:
    return [p for m, path, p in fake.requests if (m, path) == ("POST", "/api/v3/orderList/oco")]


def test_fake_exchange_deployed_execution_trades_decision_to_take_profit_exit(
    desk: Desk, venue: Venue
) -> None:
    fake = venue.fake
    fake.max_fill_per_bar[VENUE_SYMBOL] = PER_BAR
    # Given the stack's first cycle on an empty book, and then the scan's decision at 00:15
    assert desk.cycle(DAY)["dispatched"] == 0
    coid = desk.decide(DAY + timedelta(minutes=15))

    # When the 01:10 execution cycle runs: the decision is sent to the testnet venue
    sent = desk.cycle(DAY + timedelta(hours=1))
    assert sent["dispatched"] == 1, sent
    # Then one signed market order reached the sandbox under the decision's client id
    [buy] = _sent(fake, "BUY")
    assert buy["newClientOrderId"] == coid and buy["type"] == "MARKET"
    assert buy["symbol"] == VENUE_SYMBOL and Decimal(buy["quantity"]) == QUANTITY
    assert set(venue.redirect.sandbox_hosts) == {"testnet.binance.vision"}  # sandbox mode
    order = desk.order(coid)
    assert (order["mode"], order["status"]) == ("testnet", "ACCEPTED"), order
    assert desk.held() == 0  # placed between bars: nothing matched yet

    # When the 02:10 cycle runs after the 02:00 bar matched part of it
    desk.cycle(DAY + timedelta(hours=2))
    [venue_order] = fake.orders(coid)
    assert venue_order["status"] == "PARTIALLY_FILLED"
    assert desk.order(coid)["status"] == "PARTIALLY_FILLED"
    # Then the position holds what reached the account: the part, less Binance's commission
    assert desk.held() == PER_BAR * (1 - COMMISSION) == fake.balances["MANA"]

    # When the 03:10 cycle runs after the 03:00 bar matched the rest
    report = desk.cycle(DAY + timedelta(hours=3))
    assert fake.orders(coid)[0]["status"] == "FILLED" and desk.order(coid)["status"] == "FILLED"
    # Then the position is the whole order, as held on the venue
    assert desk.held() == QUANTITY * (1 - COMMISSION) == fake.balances["MANA"]
    assert report["positions"] == {PAIR: float(QUANTITY * (1 - COMMISSION))}
    entry = Decimal(str(desk.positions.get(PAIR)["average_price"]))  # type: ignore[index]
    assert Decimal("0.7") < entry < Decimal("0.8"), entry
    held = desk.cycle(DAY + timedelta(hours=4))  # a cycle that holds: levels stated
    assert "take profit at" in held["exit_decisions"][PAIR], held["exit_decisions"]
    assert len(_sent(fake, "SELL")) == 0
    # and the venue holds one OCO order list for the whole position: the stop below the entry
    # and the take-profit at twice it
    [stop] = _resting_stops(fake)
    assert Decimal(stop["origQty"]) <= QUANTITY * (1 - COMMISSION) and stop["side"] == "SELL"
    assert Decimal(stop["stopPrice"]) < entry
    # (the list of the part held at 02:10 was cancelled once when the rest filled at 03:00)
    lists = _oco_posts(fake)
    oco = lists[-1]
    assert [Decimal(p["quantity"]) for p in lists] == [
        PER_BAR * (1 - COMMISSION), QUANTITY * (1 - COMMISSION)
    ]  # fmt: skip
    assert [o["listOrderStatus"] for o in fake.order_lists()] == ["ALL_DONE", "EXECUTING"]
    assert oco["belowClientOrderId"] == stop["clientOrderId"]
    take_profit = Decimal(oco["abovePrice"])
    assert 2 * entry <= take_profit < 2 * entry + Decimal("0.01")  # up onto the 0.01 tick
    assert _sent(fake, "SELL", "STOP_LOSS_LIMIT") == []

    # When the recorded Oct 30 09:00 bar (high 1.5739) reaches the take-profit on the venue
    # (the hourly rule would wait for its second confirming daily close), and the next cycle
    # runs after the Oct 31 close
    fake.max_fill_per_bar.pop(VENUE_SYMBOL)
    exit_day = DAY + timedelta(days=4)  # 2021-11-01 00:10
    closed = desk.cycle(exit_day)
    # Then the take-profit leg's fill was booked from the venue's trade and the venue expired
    # the stop: the position is closed, nothing was sold by the cycle
    assert closed["exits_by_rule"] == 0 and _sent(fake, "SELL") == [], closed["exit_decisions"]
    [leg] = fake.orders(oco["aboveClientOrderId"])
    assert (leg["type"], leg["status"]) == ("LIMIT_MAKER", "FILLED")
    assert fake.orders(stop["clientOrderId"])[0]["status"] == "EXPIRED"
    booked = desk.order(oco["aboveClientOrderId"])
    assert booked["status"] == "FILLED" and Decimal(str(booked["average_price"])) == take_profit
    assert desk.held() == 0 and fake.balances["MANA"] == 0
    assert closed["positions"] == {}
    assert closed["equity"] > float(EQUITY) * 1.01, closed
    # one buy, one list: nothing sent twice; nothing placed again once the position was closed
    desk.cycle(exit_day + timedelta(hours=1))
    assert len(_sent(fake, "BUY")) == 1 and _sent(fake, "SELL") == []
    assert _oco_posts(fake) == lists
    assert _resting_stops(fake) == []


def test_fake_exchange_deployed_execution_crash_between_send_and_record_reconciles_once(
    desk: Desk, venue: Venue, stack: Stack
) -> None:
    fake = venue.fake
    coid = desk.decide(DAY + timedelta(minutes=15))
    # Given the 01:10 cycle killed right after the venue accepted the order, before the ledger
    # recorded its answer (the Lambda runtime's kill: nothing after it runs)
    desk.ingest(DAY + timedelta(hours=1, minutes=2), "1h", 72)
    desk.ingest(DAY + timedelta(hours=1, minutes=5), "1d", 120)
    venue.redirect.crash_after_next("POST", "/api/v3/order")
    with pytest.raises(ProcessKilled):
        stack.deliver(desk.execution, desk.at(DAY + timedelta(hours=1, minutes=10)))
    assert fake.posts() == 1 and len(fake.orders(coid)) == 1
    assert desk.order(coid)["status"] == "SUBMITTED"  # sent, its answer never recorded
    stack.warm.discard(stack.outputs["ExecutionFunctionName"])  # a new execution environment

    # When the next scheduled cycle runs (02:10, after the 02:00 bar filled the order)
    report = desk.cycle(DAY + timedelta(hours=2))
    # Then the order was found by its client id and booked once: nothing was sent again
    assert (
        len(_sent(fake, "BUY")) == 1
        and fake.posts() - len(_sent(fake, "SELL", "STOP_LOSS_LIMIT")) == 1
    )
    assert [o["clientOrderId"] for o in fake.orders() if o["type"] == "MARKET"] == [coid]
    assert fake.orders(coid)[0]["status"] == "FILLED"
    assert [o["client_order_id"] for o in desk.orders.list_orders()
            if o.get("intent") != "protect"] == [coid]  # fmt: skip
    assert desk.order(coid)["status"] == "FILLED"
    assert desk.held() == QUANTITY * (1 - COMMISSION) == fake.balances["MANA"]
    assert report["dispatched"] == 0
    # and the next cycle finds nothing to do on the venue either
    stops = len(_sent(fake, "SELL", "STOP_LOSS_LIMIT"))
    desk.cycle(DAY + timedelta(hours=3))
    assert len(_sent(fake, "BUY")) == 1 and _sent(fake, "SELL") == []
    assert len(_sent(fake, "SELL", "STOP_LOSS_LIMIT")) == stops and len(_resting_stops(fake)) <= 1
