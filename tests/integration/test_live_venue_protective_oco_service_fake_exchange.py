"""The protective OCO order list of the ExecutionService on Binance, through real ccxt against
the local fake Binance (signatures verified), the stores on the in-memory fakes.

A held position with a take-profit price gets one OCO list (a ``LIMIT_MAKER`` take-profit and
the ``STOP_LOSS_LIMIT`` stop, both legs recorded in the orders ledger before the list is sent):
placed once per position state, cancelled once by its list client ID before a close, a resize
or by the kill-switch; a leg the venue filled on the recorded candles is booked from its trades
and the position is closed, never sold again.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.orders import (
    Intent,
    OrderStatus,
    protective_key,
    protective_list_ids,
)
from cryptosmarttrader.services.execution import CLOSED_AT_VENUE, ExecutionService
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, close, entry, metric

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


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


def test_live_venue_fake_exchange_one_oco_list_per_position_state_recorded_before_it_is_sent(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
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
    assert metric(rig, "ProtectiveStopsPlaced") == 1 and metric(rig, "TakeProfitsPlaced") == 1


def test_live_venue_fake_exchange_take_profit_leg_filled_closes_the_position_never_sold_again(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    _protect(service)
    # When the 12:00 bar (high 32311.22) has closed and the exit rule's close comes after it
    rig.clock.advance(timedelta(hours=3, minutes=5))
    result = close(rig.service())
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
    assert metric(rig, "TakeProfitsTriggered") == 1
    assert metric(rig, "ProtectiveStopsTriggered") == 0


def test_live_venue_fake_exchange_stop_leg_filled_expires_the_take_profit(rig: Rig) -> None:
    service = rig.service()
    entry(service)
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
    assert metric(rig, "ProtectiveStopsTriggered") == 1
    assert metric(rig, "TakeProfitsTriggered") == 0


def test_live_venue_fake_exchange_a_growing_position_gets_its_list_replaced_exactly_once(
    rig: Rig,
) -> None:
    # Given a slow venue: the entry fills 0.02 on the 10:00 bar, the rest on the 11:00 bar
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    service = rig.service()
    entry(service)
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
    assert metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_fake_exchange_a_close_cancels_the_list_once_then_sells_once(rig: Rig) -> None:
    service = rig.service()
    entry(service)
    _protect(service)
    rig.clock.advance(timedelta(hours=1, minutes=30))  # 11:30: the list still rests
    first = close(service)
    second = close(service)
    third = close(rig.service())
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
    assert metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_fake_exchange_kill_switch_cancels_the_list_once(rig: Rig) -> None:
    service = rig.service()
    entry(service)
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
    assert metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_fake_exchange_list_timeout_is_found_by_list_id_never_resent(rig: Rig) -> None:
    service = rig.service()
    entry(service)
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
    entry(service)
    rig.fake.fail_next("POST", OCO, "rate_limit")
    note = _protect(service)
    assert "EXPIRED" in note and "not placed" in note
    _protect(rig.service())
    _protect(rig.service())
    posts = _oco_posts(rig)
    assert len(posts) == 2 and posts[0]["listClientOrderId"] != posts[1]["listClientOrderId"]
    assert len(rig.fake.order_lists()) == 1
    statuses = sorted(o["status"] for o in rig.orders(Intent.PROTECT))
    # the rate-limited attempt's plain stop is recorded cancelled, never sent: the next
    # attempt is a list again
    assert statuses == ["ACCEPTED", "ACCEPTED", "CANCELED", "EXPIRED", "EXPIRED"]
    assert not rig.sent("POST", "STOP_LOSS_LIMIT") and not rig.sent("POST", "LIMIT")


def test_live_venue_fake_exchange_a_price_past_the_take_profit_falls_back_to_the_stop(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
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
    entry(service)
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
    # the first list's working take-profit leg was cancelled once, by its own client ID (Binance
    # reads a list ALL_DONE once a leg executed: the list itself is not cancelled), and the
    # rest got one new protection, once, for what is left: never a second sell of what was sold
    first, *others = _oco_posts(rig)
    assert _list_deletes(rig) == []
    leg_cancels = [
        p for m, path, p in rig.fake.requests if (m, path) == ("DELETE", "/api/v3/order")
    ]
    assert [p["origClientOrderId"] for p in leg_cancels] == [first["aboveClientOrderId"]]
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
    assert _list_deletes(rig) == []


def test_live_venue_fake_exchange_a_lost_list_whose_lookup_fails_counts_one_exchange_error(
    rig: Rig,
) -> None:
    # Given a held position, and a list create whose answer is lost (nothing booked) and whose
    # lookup by client ID is then refused by the rate limit
    service = rig.service()
    entry(service)
    before = service.consecutive_exchange_errors
    rig.fake.fail_next("POST", OCO, "timeout_before_booking")
    for _ in range(10):  # more 429s than the read's retries
        rig.fake.fail_next("GET", "/api/v3/orderList", "rate_limit")
    note = _protect(service)
    # Then the list is left SUBMITTED for reconcile, never resent, and the one failed
    # operation (the create and its lookup) counts one exchange error, not two
    assert "lookup failed" in note and "not resent" in note, note
    assert service.consecutive_exchange_errors == before + 1
    assert metric(rig, "ExchangeErrors") == 1
    assert len(_oco_posts(rig)) == 1


def test_live_venue_fake_exchange_one_positions_protective_error_never_stops_the_others(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a held position, and another symbol whose protective step fails with an error
    # nobody foresaw (a damaged record, a venue answer no adapter maps)
    service = rig.service()
    entry(service)
    real = service._protect

    def failing(symbol: str, *args: Any, **kwargs: Any) -> str:
        if symbol == "AAA/USDT":
            raise RuntimeError("damaged record\nsecond line")
        return real(symbol, *args, **kwargs)

    monkeypatch.setattr(service, "_protect", failing)
    notes = service.protect_positions({"AAA/USDT": STOP, BTC.value: STOP}, {BTC.value: TP})
    # Then that symbol's failure is reported and counted, and BTC still gets its list
    assert notes["AAA/USDT"].startswith("protective step failed (RuntimeError: damaged record)")
    assert metric(rig, "PositionExitErrors") == 1
    assert "OCO list" in notes[BTC.value] and len(_oco_posts(rig)) == 1
