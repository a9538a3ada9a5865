"""An order whose cancel the kill-switch sweep asked before it reached the venue, against the
local fake Binance: when it lands late (within the venue's receive window, after the cancel),
the next reconcile sends its cancel again, once, whatever the switch reads by then, and books
whatever filled meanwhile."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.exchange import OrderStateUnknownError
from cryptosmarttrader.domain.orders import Intent, OrderStatus
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


class _LandsLate:
    """The create is lost on the way (nothing booked, no answer) and reaches the venue later,
    when ``land`` is called. Counts the cancels the service sends."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self._sent: tuple[str, tuple[Any, ...]] | None = None
        self.cancels = 0

    def create_order(self, *args: Any) -> Any:
        self._sent = ("create_order", args)
        raise OrderStateUnknownError("binance", "create_order", "read timeout", "x")

    def create_stop_order(self, *args: Any) -> Any:
        self._sent = ("create_stop_order", args)
        raise OrderStateUnknownError("binance", "create_order", "read timeout", "x")

    def cancel_order(self, *args: Any) -> Any:
        self.cancels += 1
        return self._venue.cancel_order(*args)

    def land(self) -> None:
        assert self._sent is not None
        method, args = self._sent
        getattr(self._venue, method)(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


def _venue_orders(rig: Rig, kind: str) -> list[dict[str, Any]]:
    return [o for o in rig.fake.orders() if o["type"] == kind]


def _swept_before_it_landed(rig: Rig, late: _LandsLate) -> dict[str, Any]:
    """The kill-switch sweep ran moments after the order was sent: not at the venue yet, its
    cancel found nothing, and it is left CANCEL_PENDING. Then it lands."""
    rig.switch(True)
    rig.service(late).reconcile()
    (order,) = [o for o in rig.orders() if o["status"] == OrderStatus.CANCEL_PENDING.value]
    late.land()
    return order


def _late_entry(rig: Rig) -> _LandsLate:
    late = _LandsLate(rig.venue)
    entry(rig.service(late))
    (order,) = rig.orders(Intent.OPEN)
    assert order["status"] == OrderStatus.SUBMITTED.value  # the lost create: not found yet
    assert _venue_orders(rig, "MARKET") == []
    return late


def test_live_venue_a_stop_landing_after_the_sweep_is_cancelled_once_the_switch_is_off(
    rig: Rig,
) -> None:
    entry(rig.service())
    late = _LandsLate(rig.venue)
    rig.service(late).protect_positions({BTC.value: STOP})
    _swept_before_it_landed(rig, late)
    assert [o["status"] for o in _venue_orders(rig, "STOP_LOSS_LIMIT")] == ["NEW"]
    # When the switch is turned off and the next cycle reconciles
    rig.switch(False)
    rig.clock.advance(timedelta(minutes=1))
    sent_before = late.cancels
    rig.service(late).reconcile()
    # Then its cancel is sent again, once, and the stop is cancelled on the venue and the ledger
    assert late.cancels - sent_before == 1
    assert [o["status"] for o in _venue_orders(rig, "STOP_LOSS_LIMIT")] == ["CANCELED"]
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value


def test_live_venue_an_entry_landing_after_the_sweep_is_cancelled_and_its_part_filled_booked(
    rig: Rig,
) -> None:
    # Given a venue filling 0.02 BTC per bar, and a 0.03 buy that lands after the sweep:
    # 0.02 fills on the 10:00 bar before the next cycle
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    late = _late_entry(rig)
    _swept_before_it_landed(rig, late)
    assert [o["status"] for o in _venue_orders(rig, "MARKET")] == ["PARTIALLY_FILLED"]
    # When the switch is off and the next cycle reconciles, then the 11:00 bar opens
    rig.switch(False)
    rig.clock.advance(timedelta(minutes=1))
    rig.service(late).reconcile()
    rig.clock.advance(timedelta(hours=1))
    rig.service(late).reconcile()
    # Then the rest was cancelled on the venue (nothing filled on the 11:00 bar)
    (at_venue,) = _venue_orders(rig, "MARKET")
    assert at_venue["status"] == "CANCELED"
    assert Decimal(at_venue["executedQty"]) == Decimal("0.02")
    # and the part filled is booked: the order CANCELED with its fill, the position holds it
    # (what reached the account: the 0.1% commission is paid in BTC)
    (order,) = rig.orders(Intent.OPEN)
    assert order["status"] == OrderStatus.CANCELED.value
    assert Decimal(str(order["filled"])) == Decimal("0.02") * Decimal("0.999")
    assert Decimal(str(rig.position()["quantity"])) == Decimal("0.02") * Decimal("0.999")


def test_live_venue_an_entry_landing_after_the_sweep_and_filled_at_once_is_booked(
    rig: Rig,
) -> None:
    # Given a 0.03 buy that lands after the sweep and fills on the 10:00 bar before any cancel
    late = _late_entry(rig)
    _swept_before_it_landed(rig, late)
    assert [o["status"] for o in _venue_orders(rig, "MARKET")] == ["FILLED"]
    # When the next cycle reconciles (the switch off)
    rig.switch(False)
    rig.clock.advance(timedelta(minutes=1))
    sent_before = late.cancels
    rig.service(late).reconcile()
    # Then its fill is booked (CANCEL_PENDING → FILLED), with no cancel sent for it
    (order,) = rig.orders(Intent.OPEN)
    assert order["status"] == OrderStatus.FILLED.value
    assert Decimal(str(rig.position()["quantity"])) == Decimal("0.03") * Decimal("0.999")
    assert late.cancels == sent_before


@pytest.mark.parametrize("switch_on", [False, True])
def test_live_venue_a_late_order_whose_cancel_fails_gets_one_cancel_per_reconcile(
    rig: Rig, switch_on: bool
) -> None:
    entry(rig.service())
    late = _LandsLate(rig.venue)
    rig.service(late).protect_positions({BTC.value: STOP})
    _swept_before_it_landed(rig, late)
    rig.switch(switch_on)
    # Given the venue refusing the next cancel (429 on every retry of it)
    for _ in range(3):
        rig.fake.fail_next("DELETE", "/api/v3/order", "rate_limit")
    # When the next cycle reconciles (the sweep runs at its end while the switch is on)
    rig.clock.advance(timedelta(minutes=1))
    sent_before = late.cancels
    rig.service(late).reconcile()
    # Then one cancel was sent, and the stop stays CANCEL_PENDING, still resting
    assert late.cancels - sent_before == 1
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCEL_PENDING.value
    assert [o["status"] for o in _venue_orders(rig, "STOP_LOSS_LIMIT")] == ["NEW"]
    # and the cycle after sends it once more, which takes
    rig.clock.advance(timedelta(minutes=5))
    rig.service(late).reconcile()
    assert late.cancels - sent_before == 2
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert [o["status"] for o in _venue_orders(rig, "STOP_LOSS_LIMIT")] == ["CANCELED"]


def test_live_venue_a_late_entry_part_filled_whose_cancel_fails_stays_cancel_pending(
    rig: Rig,
) -> None:
    # Given a 0.03 buy that landed after the sweep and filled 0.02 on the 10:00 bar, the switch
    # off, and the venue refusing the next cancel (429 on every retry of it)
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    late = _late_entry(rig)
    _swept_before_it_landed(rig, late)
    rig.switch(False)
    for _ in range(3):
        rig.fake.fail_next("DELETE", "/api/v3/order", "rate_limit")
    # When the next cycle reconciles
    rig.clock.advance(timedelta(minutes=1))
    rig.service(late).reconcile()
    # Then the part filled is booked and the order is still to be cancelled
    (order,) = rig.orders(Intent.OPEN)
    assert order["status"] == OrderStatus.CANCEL_PENDING.value
    assert Decimal(str(rig.position()["quantity"])) == Decimal("0.02") * Decimal("0.999")
    # and the next cycle (before the 11:00 bar) cancels the rest: nothing more is bought
    rig.clock.advance(timedelta(minutes=5))
    rig.service(late).reconcile()
    rig.clock.advance(timedelta(hours=1))
    rig.service(late).reconcile()
    (at_venue,) = _venue_orders(rig, "MARKET")
    assert at_venue["status"] == "CANCELED"
    (order,) = rig.orders(Intent.OPEN)
    assert order["status"] == OrderStatus.CANCELED.value
    assert Decimal(str(rig.position()["quantity"])) == Decimal("0.02") * Decimal("0.999")
