"""The protective OCO order list of the ExecutionService on Binance, through real ccxt against
the local fake Binance (signatures verified) and moto DynamoDB.

A held position with a take-profit price gets one OCO list (a ``LIMIT_MAKER`` take-profit and
the ``STOP_LOSS_LIMIT`` stop, both legs recorded in the orders ledger before the list is sent):
placed once per position state, cancelled once by its list client ID before a close, a resize
or by the kill-switch; a leg the venue filled on the recorded candles is booked from its trades
and the position is closed, never sold again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ccxt
import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, ccxt_client
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
)
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import RetryPolicy
from cryptosmarttrader.domain.orders import (
    Intent,
    OrderIntent,
    OrderStatus,
    protective_key,
    protective_list_ids,
)
from cryptosmarttrader.domain.risk import MarketQuote
from cryptosmarttrader.domain.types import Money, Price, Quantity, Side, Symbol
from cryptosmarttrader.domain.venue import VenueMode
from cryptosmarttrader.services.execution import CLOSED_AT_VENUE, ExecutionService
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.local_aws import ensure_resources

pytestmark = pytest.mark.realdata

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW = datetime(2022, 5, 10, 10, 0, tzinfo=UTC)  # the 10:00 BTC/USDT bar opens at 31397.68
BTC = Symbol("BTC/USDT")
# the first recorded bar whose low reaches 31000 is the 14:00 bar (open 31815.76, low
# 30819.98): a stop at 31000 triggers there, known once that bar closed at 15:00
STOP = Decimal("31000.004")
QUOTE = MarketQuote(NOW - timedelta(minutes=1), Decimal("500000000"))
EQUITY = Money(Decimal("100000"))


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Rig:
    fake: FakeBinance
    clock: FixedClock
    venue: CcxtVenue
    clients: AwsClients
    metrics: InMemoryMetrics

    def service(self, exchange: Any = None) -> ExecutionService:
        """A fresh service over the same tables and venue: what a restart builds."""
        res, ddb = self.clients.resources, self.clients.dynamodb
        switch = SsmKillSwitch(res.kill_switch_param, self.clients.ssm, self.clock)
        risk = RiskStateService(DynamoStateStore(res.state_table, ddb), switch, self.clock)
        return ExecutionService(
            orders=DynamoOrderStore(res.orders_table, ddb),
            positions=DynamoPositionStore(res.positions_table, ddb),
            kill_switch=switch,
            risk=risk,
            exchange=exchange or self.venue,
            clock=self.clock,
            metrics=self.metrics,
            mode=VenueMode.TESTNET.value,
        )

    def switch(self, on: bool) -> None:
        res = self.clients.resources
        SsmKillSwitch(res.kill_switch_param, self.clients.ssm, self.clock).set(
            on, "operator test" if on else "resolved", "operator"
        )

    def orders(self, intent: Intent | None = None) -> list[dict[str, Any]]:
        res = self.clients.resources
        every = DynamoOrderStore(res.orders_table, self.clients.dynamodb).list_orders()
        return [o for o in every if intent is None or o["intent"] == intent.value]

    def position(self) -> dict[str, Any]:
        res = self.clients.resources
        found = DynamoPositionStore(res.positions_table, self.clients.dynamodb).get(BTC.value)
        return found or {}

    def sent(self, method: str, kind: str | None = None) -> list[dict[str, str]]:
        return [
            p
            for m, path, p in self.fake.requests
            if m == method and path == "/api/v3/order" and (kind is None or p.get("type") == kind)
        ]


def _local_only(client: ccxt.Exchange) -> ccxt.Exchange:
    fetch = client.fetch

    def guarded(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        assert urlparse(url).hostname == "127.0.0.1", f"ccxt tried to reach {url}"
        return fetch(url, method, headers, body)

    client.fetch = guarded
    return client


@pytest.fixture
def rig(market: RecordedMarketData, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clock = FixedClock(NOW)
    fake = FakeBinance(
        API_KEY,
        SECRET,
        market,
        clock.now,
        balances={"USDT": Decimal("10000"), "BTC": Decimal("0")},
        client_timeout_s=0.5,
    )
    fake.warm("BTCUSDT")
    with serve(fake) as url, mock_aws():
        creds = {"apiKey": API_KEY, "secret": SECRET}
        client = ccxt_client("binance", VenueMode.TESTNET, creds, api_base_url=url, timeout_ms=500)
        venue = CcxtVenue(
            _local_only(client),
            clock,
            VenueMode.TESTNET,
            RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
            sleep=lambda _s: None,
        )
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients, now=NOW)
        yield Rig(fake, clock, venue, clients, InMemoryMetrics())


def _entry(service: ExecutionService, qty: str = "0.03") -> None:
    intent = OrderIntent("protective-test", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                         Quantity.of(qty), Price.of("31400"))  # fmt: skip
    result = service.submit(intent, equity=EQUITY, quote=QUOTE)
    assert result.sent, result.reason


def _close(service: ExecutionService, strategy: str = "exit-rule") -> Any:
    held = Decimal(str(service.positions.get(BTC.value)["quantity"]))  # type: ignore[index]
    intent = OrderIntent(strategy, BTC, Side.SELL, Intent.CLOSE, 1_652_180_400_000,
                         Quantity(held), Price.of("31300"))  # fmt: skip
    fresh = MarketQuote(service.clock.now() - timedelta(minutes=1), QUOTE.volume_24h_quote)
    return service.submit(intent, equity=EQUITY, quote=fresh)


def _metric(rig: Rig, name: str) -> float:
    return rig.metrics.total(name)


TP = Decimal("32300")  # the 12:00 bar's high is 32311.22 (its low 31518.17 above the stop)
TP_FAR = Decimal("62795.36")  # never reached on these days: the stop leg acts first
OCO = "/api/v3/orderList/oco"


def _oco_posts(rig: Rig) -> list[dict[str, str]]:
    return [p for m, path, p in rig.fake.requests if (m, path) == ("POST", OCO)]


def _list_deletes(rig: Rig) -> list[dict[str, str]]:
    return [p for m, path, p in rig.fake.requests if (m, path) == ("DELETE", "/api/v3/orderList")]


def _legs(rig: Rig) -> list[dict[str, Any]]:
    return sorted(rig.orders(Intent.PROTECT), key=lambda o: (o["created_at"], o["order_type"]))


def _protect(service: ExecutionService, take_profit: Decimal = TP) -> str:
    return service.protect_positions({BTC.value: STOP}, {BTC.value: take_profit})[BTC.value]


def _entry(service: ExecutionService, qty: str = "0.03") -> None:
    intent = OrderIntent("protective-test", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                         Quantity.of(qty), Price.of("31400"))  # fmt: skip
    result = service.submit(intent, equity=EQUITY, quote=QUOTE)
    assert result.sent, result.reason


def _close(service: ExecutionService) -> Any:
    held = Decimal(str(service.positions.get(BTC.value)["quantity"]))  # type: ignore[index]
    intent = OrderIntent("exit-rule", BTC, Side.SELL, Intent.CLOSE, 1_652_180_400_000,
                         Quantity(held), Price.of("31300"))  # fmt: skip
    fresh = MarketQuote(service.clock.now() - timedelta(minutes=1), QUOTE.volume_24h_quote)
    return service.submit(intent, equity=EQUITY, quote=fresh)


def test_live_venue_fake_exchange_one_oco_list_per_position_state_recorded_before_it_is_sent(
    rig: Rig,
) -> None:
    service = rig.service()
    _entry(service)
    held = Decimal(str(rig.position()["quantity"]))
    # When the protective step runs, again, and after a restart
    first = _protect(service)
    again = _protect(service)
    restarted = _protect(rig.service())
    # Then one list left, its IDs derived from the position state
    (sent,) = _oco_posts(rig)
    ids = protective_list_ids(BTC, protective_key(str(rig.position()["opened_by"]), held, 0))
    assert sent["listClientOrderId"] == ids.list_id.value
    assert sent["aboveClientOrderId"] == ids.above.value
    assert sent["belowClientOrderId"] == ids.below.value
    assert sent["quantity"] == "0.02997" and sent["abovePrice"] == "32300"
    assert sent["belowStopPrice"] == "31000.00" and sent["belowPrice"] == "29450.00"
    assert "OCO list" in first and "protected by stop" in again and "protected" in restarted
    # both legs are orders of the ledger, naming their list
    legs = {o["order_type"]: o for o in rig.orders(Intent.PROTECT)}
    assert legs["limit_maker"]["client_order_id"] == ids.above.value
    assert legs["stop_loss_limit"]["client_order_id"] == ids.below.value
    assert {o["list_client_order_id"] for o in legs.values()} == {ids.list_id.value}
    assert {o["status"] for o in legs.values()} == {OrderStatus.ACCEPTED.value}
    # the venue locks the holding once for both legs
    assert rig.venue.fetch_balances()["BTC"] == held
    assert _metric(rig, "ProtectiveStopsPlaced") == 1 and _metric(rig, "TakeProfitsPlaced") == 1


def test_live_venue_fake_exchange_take_profit_leg_filled_closes_the_position_never_sold_again(
    rig: Rig,
) -> None:
    service = rig.service()
    _entry(service)
    _protect(service)
    # When the 12:00 bar (high 32311.22) has closed and the exit rule's close comes after it
    rig.clock.advance(timedelta(hours=3, minutes=5))
    result = _close(rig.service())
    # Then the take-profit's fill was booked from the venue's trade (the real commission),
    # the venue expired the stop, and nothing was sold again
    assert result.status == CLOSED_AT_VENUE and not result.sent
    assert [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"] == []
    assert _list_deletes(rig) == []  # a finished list is not cancelled
    stop, take_profit = sorted(_legs(rig), key=lambda o: o["order_type"] != "stop_loss_limit")
    assert take_profit["status"] == OrderStatus.FILLED.value
    assert Decimal(str(take_profit["average_price"])) == TP
    fee = (Decimal("0.02997") * TP * Decimal("0.001")).quantize(Decimal("0.00000001"))
    assert Decimal(str(take_profit["fee"])) == fee
    assert stop["status"] == OrderStatus.EXPIRED.value
    assert Decimal(str(rig.position()["quantity"])) == 0
    assert rig.fake.balances["BTC"] == 0
    # and later cycles place nothing more
    later = rig.service()
    later.reconcile()
    assert _protect(later) == "no position held"
    assert len(_oco_posts(rig)) == 1
    assert _metric(rig, "TakeProfitsTriggered") == 1
    assert _metric(rig, "ProtectiveStopsTriggered") == 0


def test_live_venue_fake_exchange_stop_leg_filled_expires_the_take_profit(rig: Rig) -> None:
    service = rig.service()
    _entry(service)
    _protect(service, TP_FAR)
    # When the 14:00 bar (low 30819.98) has closed: the reconcile books the venue's fill
    rig.clock.advance(timedelta(hours=5))
    rig.service().reconcile()
    stop, take_profit = sorted(_legs(rig), key=lambda o: o["order_type"] != "stop_loss_limit")
    assert stop["status"] == OrderStatus.FILLED.value
    assert Decimal(str(stop["average_price"])) == Decimal("31000")
    assert take_profit["status"] == OrderStatus.EXPIRED.value  # cancelled by the venue
    (raw,) = rig.fake.order_lists()
    assert raw["listOrderStatus"] == "ALL_DONE"
    assert Decimal(str(rig.position()["quantity"])) == 0
    assert _metric(rig, "ProtectiveStopsTriggered") == 1
    assert _metric(rig, "TakeProfitsTriggered") == 0


def test_live_venue_fake_exchange_a_growing_position_gets_its_list_replaced_exactly_once(
    rig: Rig,
) -> None:
    # Given a slow venue: the entry fills 0.02 on the 10:00 bar, the rest on the 11:00 bar
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    service = rig.service()
    _entry(service)
    _protect(service)
    # When the 11:00 bar fills the rest and the next cycles reconcile and protect (twice)
    rig.clock.advance(timedelta(hours=1))
    later = rig.service()
    later.reconcile()
    _protect(later)
    _protect(rig.service())
    # Then the old list was cancelled once (by its list ID) and one list for the whole holding
    # placed once
    posts = _oco_posts(rig)
    assert [p["quantity"] for p in posts] == ["0.01998", "0.02997"]
    (cancel,) = _list_deletes(rig)
    assert cancel["listClientOrderId"] == posts[0]["listClientOrderId"]
    statuses = sorted(o["status"] for o in rig.orders(Intent.PROTECT))
    assert statuses == ["ACCEPTED", "ACCEPTED", "CANCELED", "CANCELED"]
    assert _metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_fake_exchange_a_close_cancels_the_list_once_then_sells_once(rig: Rig) -> None:
    service = rig.service()
    _entry(service)
    _protect(service)
    rig.clock.advance(timedelta(hours=1, minutes=30))  # 11:30: the list still rests
    first = _close(service)
    second = _close(service)
    third = _close(rig.service())
    assert first.sent and not second.sent and not third.sent
    (cancel,) = _list_deletes(rig)
    assert cancel["listClientOrderId"] == _oco_posts(rig)[0]["listClientOrderId"]
    sells = [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]
    assert len(sells) == 1 and sells[0]["quantity"] == "0.02997"
    paths = [(m, p) for m, p, _ in rig.fake.requests if m != "GET"]
    assert paths == [
        ("POST", "/api/v3/order"), ("POST", OCO), ("DELETE", "/api/v3/orderList"),
        ("POST", "/api/v3/order"),
    ]  # fmt: skip
    assert {o["status"] for o in rig.orders(Intent.PROTECT)} == {OrderStatus.CANCELED.value}
    assert "being closed" in _protect(rig.service())
    assert _metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_fake_exchange_kill_switch_cancels_the_list_once(rig: Rig) -> None:
    service = rig.service()
    _entry(service)
    _protect(service)
    rig.switch(True)
    rig.clock.advance(timedelta(minutes=20))
    rig.service().reconcile()
    rig.service().reconcile()  # a restarted run: nothing more sent
    (cancel,) = _list_deletes(rig)
    assert cancel["symbol"] == "BTCUSDT"
    assert {o["status"] for o in rig.orders(Intent.PROTECT)} == {OrderStatus.CANCELED.value}
    assert {o["status"] for o in rig.fake.order_lists()[0]["orderReports"]} == {"CANCELED"}
    assert "kill-switch" in _protect(rig.service())
    assert _metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_fake_exchange_list_timeout_is_found_by_list_id_never_resent(rig: Rig) -> None:
    service = rig.service()
    _entry(service)
    rig.fake.fail_next("POST", OCO, "timeout_after_booking")
    note = _protect(service)
    assert "ACCEPTED" in note, note
    lookups = [p for m, path, p in rig.fake.requests if (m, path) == ("GET", "/api/v3/orderList")]
    assert lookups and "origClientOrderId" in lookups[0]
    _protect(service)
    rig.service().reconcile()
    _protect(rig.service())
    assert len(_oco_posts(rig)) == 1 and len(rig.fake.order_lists()) == 1
    assert {o["status"] for o in rig.orders(Intent.PROTECT)} == {OrderStatus.ACCEPTED.value}


def test_live_venue_fake_exchange_list_refused_by_the_rate_limit_is_placed_next_cycle_once(
    rig: Rig,
) -> None:
    service = rig.service()
    _entry(service)
    rig.fake.fail_next("POST", OCO, "rate_limit")
    note = _protect(service)
    assert "EXPIRED" in note and "not placed" in note
    _protect(rig.service())
    _protect(rig.service())
    posts = _oco_posts(rig)
    assert len(posts) == 2 and posts[0]["listClientOrderId"] != posts[1]["listClientOrderId"]
    assert len(rig.fake.order_lists()) == 1
    statuses = sorted(o["status"] for o in rig.orders(Intent.PROTECT))
    assert statuses == ["ACCEPTED", "ACCEPTED", "EXPIRED", "EXPIRED"]


def test_live_venue_fake_exchange_a_price_past_the_take_profit_falls_back_to_the_stop(
    rig: Rig,
) -> None:
    service = rig.service()
    _entry(service)
    # the take-profit (31390) is below the last price (31397.68): Binance refuses the list
    note = _protect(service, Decimal("31390"))
    assert "OCO list not placed" in note and "protective stop" in note, note
    (stop,) = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert stop["stopPrice"] == "31000"
    _protect(rig.service(), Decimal("31390"))
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1 and len(_oco_posts(rig)) == 1
    assert rig.fake.order_lists() == []


def test_live_venue_fake_exchange_take_profit_partly_filled_the_rest_protected_once_never_resold(
    rig: Rig,
) -> None:
    # Given a held position with its list, and a slow venue from then on: the take-profit
    # leg sells 0.01 on the 12:00 bar (high 32311.22), the rest of it still resting
    service = rig.service()
    _entry(service)
    held = Decimal(str(rig.position()["quantity"]))
    _protect(service)
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.01")
    # When the 12:00 bar has closed and the next cycles reconcile and protect (twice, and
    # after a restart)
    rig.clock.advance(timedelta(hours=3, minutes=5))
    later = rig.service()
    later.reconcile()
    _protect(later)
    _protect(later)
    _protect(rig.service())
    # Then the partial fill was booked from the venue's trade: the position is what is left
    sold = Decimal("0.01")
    rest = held - sold
    assert Decimal(str(rig.position()["quantity"])) == rest
    assert rig.fake.balances["BTC"] == rest
    # the first list was cancelled once (its take-profit leg with it), and the rest got one
    # new protection, once, for what is left: never a second sell of what was sold
    first, *others = _oco_posts(rig)
    (cancel,) = _list_deletes(rig)
    assert cancel["listClientOrderId"] == first["listClientOrderId"]
    stops = rig.sent("POST", "STOP_LOSS_LIMIT")
    new = [p["quantity"] for p in others] + [p["quantity"] for p in stops]
    assert new == [f"{rest:f}"], (others, stops)
    (renewed,) = others  # the price is below the take-profit again: a new list, not a stop
    assert renewed["listClientOrderId"] != first["listClientOrderId"] and stops == []
    assert [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"] == []
    # the ledger: the partly filled take-profit leg is closed with what it sold, its stop
    # expired by the venue, the new protection accepted
    old = [o for o in rig.orders(Intent.PROTECT)
           if o.get("list_client_order_id") == first["listClientOrderId"]]  # fmt: skip
    by_type = {o["order_type"]: o for o in old}
    assert Decimal(str(by_type["limit_maker"]["filled"])) == sold
    assert by_type["limit_maker"]["status"] == OrderStatus.CANCELED.value
    assert by_type["stop_loss_limit"]["status"] == OrderStatus.EXPIRED.value
    # what the venue locks for the new protection is exactly what the account holds
    assert rig.venue.fetch_balances()["BTC"] == rest
    assert len(_list_deletes(rig)) == 1
