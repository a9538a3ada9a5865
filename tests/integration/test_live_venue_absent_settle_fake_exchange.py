"""Orders absent at the venue by client ID, settled as not placed, against the local fake
Binance: the venue's lookup by client ID lagging behind its matching engine within the query
lag the execution service allows for."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import OrderStateUnknownError, RetryableExchangeError
from cryptosmarttrader.domain.orders import Intent, OrderStatus
from tests.support import live_venue
from tests.support.live_venue import BTC, Rig, close, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


class _LaggingLookup:
    """The venue, its lookup by client ID not showing ``hidden`` orders yet (a query lag
    shorter than the service's ``absent_query_lag``); everything else answered as is."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self.hidden: set[str] = set()
        self.hide_all = False

    def fetch_order_by_client_id(self, symbol: Any, coid: Any) -> Any:
        if self.hide_all or coid.value in self.hidden:
            return None
        return self._venue.fetch_order_by_client_id(symbol, coid)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


def test_live_venue_a_lost_close_swept_by_the_kill_switch_within_the_query_lag_keeps_its_fill(
    rig: Rig,
) -> None:
    # Given a position of 0.03 BTC and its close booked (filled) by the venue, the answer lost,
    # the venue's lookup by client ID lagging (within the 5 minutes the service allows for)
    entry(rig.service())
    lag = _LaggingLookup(rig.venue)
    service = rig.service(lag)
    window, _ = service.absent_settle_after()
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_after_booking")
    held = Decimal(str(rig.position()["quantity"]))
    # the close's client ID is only known once recorded: hide every lookup until then
    lag.hide_all = True
    result = close(service)
    assert result.status == OrderStatus.SUBMITTED.value, result
    (closing,) = rig.orders(Intent.CLOSE)
    lag.hidden.add(str(closing["client_order_id"]))
    lag.hide_all = False
    venue_side = [o["status"] for o in rig.fake.orders(str(closing["client_order_id"]))]
    assert venue_side == ["FILLED"], venue_side
    # When the operator turns the kill-switch on 3 minutes later (still inside the request
    # window plus the query lag: an absent SUBMITTED order is still waited for)
    assert isinstance(rig.clock, FixedClock)
    rig.clock.advance(timedelta(minutes=3))
    assert timedelta(minutes=3) < window
    rig.switch(True)
    rig.service(lag).reconcile()
    # and the venue's lookup catches up a minute later, the next cycles reconcile
    rig.clock.advance(timedelta(minutes=1))
    lag.hidden.clear()
    rig.switch(False)
    rig.service(lag).reconcile()
    rig.clock.advance(timedelta(minutes=10))
    rig.service(lag).reconcile()
    # Then the close the venue filled reaches the position (nothing is left held)
    (after,) = rig.orders(Intent.CLOSE)
    position = rig.position()
    assert Decimal(str(position["quantity"])) < held, (
        f"close {after['client_order_id']} filled at the venue is {after['status']} in the "
        f"ledger and the position still holds {position['quantity']} BTC"
    )


class _StopBookedAnswerLost(_LaggingLookup):
    """The venue books the stop, the answer is lost and the stop's client ID stays hidden from
    the lookup (the adapter's cancel by client ID, which looks it up first, sends nothing)."""

    def create_stop_order(self, *args: Any) -> Any:
        placed = self._venue.create_stop_order(*args)
        self.hidden.add(str(placed.client_order_id))
        raise OrderStateUnknownError("binance", "create_order", "read timeout", "x")

    def cancel_order(self, symbol: Any, coid: Any) -> None:
        if coid.value in self.hidden:
            return None  # the adapter's lookup finds nothing: no cancel is sent
        return self._venue.cancel_order(symbol, coid)  # type: ignore[no-any-return]


def test_live_venue_a_lost_stop_released_by_a_close_within_the_query_lag_is_not_booked_cancelled(
    rig: Rig,
) -> None:
    # Given a position and its protective stop booked by the venue, the answer lost and the
    # venue's lookup by client ID lagging (within the 5 minutes the service allows for)
    entry(rig.service())
    lag = _StopBookedAnswerLost(rig.venue)
    rig.service(lag).protect_positions({BTC.value: live_venue.STOP})
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.SUBMITTED.value
    assert [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"] == ["NEW"]
    # When the exit rule closes the position 3 minutes later (an absent SUBMITTED order is
    # still waited for: inside its request window plus the query lag)
    rig.clock.advance(timedelta(minutes=3))
    result = close(rig.service(lag))
    # the close waits for the stop (never a second sell over the holding): nothing is sent
    assert result.rule == "protective_pending", result
    assert not rig.orders(Intent.CLOSE)
    assert [o["side"] for o in rig.fake.orders()].count("SELL") == 1
    # and the lookup catches up a minute later, the next cycle reconciles
    rig.clock.advance(timedelta(minutes=1))
    lag.hidden.clear()
    rig.service(lag).reconcile()
    # Then the ledger does not call CANCELED a stop that rests on the venue
    venue_side = [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    (stop,) = rig.orders(Intent.PROTECT)
    assert not (stop["status"] == OrderStatus.CANCELED.value and venue_side == ["NEW"]), (
        f"stop {stop['client_order_id']} CANCELED in the ledger, {venue_side} on the venue; "
        f"the close: {result.status} ({result.reason})"
    )


def test_live_venue_a_stop_not_sent_while_the_venue_rules_cannot_be_read_is_placed_next_cycle(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a position, and a cold start whose read of the venue's market rules times out
    entry(rig.service())

    def unreadable() -> Any:
        raise RetryableExchangeError("binance", "fetch_markets", "read timeout")

    monkeypatch.setattr(rig.venue, "_markets", {})
    monkeypatch.setattr(rig.venue, "fetch_markets", unreadable)
    first = rig.service().protect_positions({BTC.value: live_venue.STOP})[BTC.value]
    assert rig.fake.orders() and not [
        o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"
    ], first
    # When the rules can be read again, on the next cycle
    monkeypatch.undo()
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    note = rig.service().protect_positions({BTC.value: live_venue.STOP})[BTC.value]
    # Then the position gets its stop (nothing was ever sent: the venue refused nothing)
    resting = [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert resting == ["NEW"], f"first cycle: {first}; next cycle: {note}"


def test_live_venue_a_lost_close_within_the_query_lag_keeps_its_fill_without_the_kill_switch(
    rig: Rig,
) -> None:
    # The same lost close and lagging lookup as above, the kill-switch left off: the order is
    # waited for (request window plus query lag) and its fill booked once the venue shows it
    entry(rig.service())
    lag = _LaggingLookup(rig.venue)
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_after_booking")
    held = Decimal(str(rig.position()["quantity"]))
    lag.hide_all = True
    assert close(rig.service(lag)).status == OrderStatus.SUBMITTED.value
    (closing,) = rig.orders(Intent.CLOSE)
    lag.hidden.add(str(closing["client_order_id"]))
    lag.hide_all = False
    rig.clock.advance(timedelta(minutes=3))
    rig.service(lag).reconcile()
    rig.clock.advance(timedelta(minutes=1))
    lag.hidden.clear()
    rig.service(lag).reconcile()
    rig.clock.advance(timedelta(minutes=10))
    rig.service(lag).reconcile()
    (after,) = rig.orders(Intent.CLOSE)
    assert after["status"] == OrderStatus.FILLED.value
    assert Decimal(str(rig.position()["quantity"])) < held
