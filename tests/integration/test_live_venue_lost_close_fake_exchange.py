"""A close whose request never reached the venue (no answer, nothing booked) against the local
fake Binance: the position it was to close in the hours after."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import Intent, OrderStatus
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, close, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


def test_live_venue_a_close_lost_in_flight_leaves_the_position_neither_closed_nor_protected(
    rig: Rig,
) -> None:
    # Given a held position protected by a stop on the venue
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    rig.clock.advance(timedelta(hours=1, minutes=30))
    # and a close (the exit rule's, a flatten) whose request never reached the venue: Binance
    # executes no signed request older than its recvWindow, so it can never land later
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_before_booking")
    lost = close(rig.service())
    assert lost.status == OrderStatus.SUBMITTED.value, lost
    # (every signed request carries the window the venue enforces: the capabilities' one)
    assert {p.get("recvWindow") for p in rig.sent("POST")} == {"10000"}
    assert not [o for o in rig.fake.orders() if o["side"] == "SELL" and o["type"] == "MARKET"]
    # When the next three hourly cycles reconcile, decide the exit again and protect
    notes = []
    for _ in range(3):
        rig.clock.advance(timedelta(hours=1))
        service = rig.service()
        service.reconcile()
        # (the cycle decides an exit only for a position still held)
        held_now = Decimal(str(rig.position().get("quantity", 0)))
        closed = close(service).reason if held_now > 0 else "nothing held"
        notes.append((closed, service.protect_positions({BTC.value: STOP})))
    # Then the position was sold, or at least a sell rests on the venue to protect it
    held = Decimal(str(rig.position().get("quantity", 0)))
    working = [
        o for o in rig.fake.orders() if o["side"] == "SELL" and o["status"] in {"NEW", "FILLED"}
    ]
    assert held == 0 or working, f"3 h later {held} BTC held, no sell at the venue: {notes}"


def test_live_venue_a_stop_lost_in_flight_is_not_reported_as_protecting_for_hours(
    rig: Rig,
) -> None:
    # Given a held position whose protective stop request never reached the venue
    entry(rig.service())
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_before_booking")
    rig.service().protect_positions({BTC.value: STOP})
    # When the next three hourly cycles reconcile and protect the position
    notes = []
    for _ in range(3):
        rig.clock.advance(timedelta(hours=1))
        service = rig.service()
        service.reconcile()
        notes.append(service.protect_positions({BTC.value: STOP})[BTC.value])
    # Then a stop rests on the venue, or the position is not reported as protected
    resting = [o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert resting or not notes[-1].startswith("protected by stop"), notes


def test_live_venue_a_close_refused_by_the_rate_limit_whose_lookup_is_refused_too_is_retried(
    rig: Rig,
) -> None:
    # Given a held position, and a close the venue refuses with a 429 whose lookup by client ID
    # is rate-limited too (every retry of it): its outcome is unknown, left SUBMITTED
    entry(rig.service())
    rig.fake.fail_next("POST", "/api/v3/order", "rate_limit")
    for _ in range(3):  # the rig's read retry policy: three attempts
        rig.fake.fail_next("GET", "/api/v3/order", "rate_limit")
    unknown = close(rig.service())
    assert unknown.status == OrderStatus.SUBMITTED.value and "lookup failed" in unknown.reason
    # When the next cycle reconciles (the venue can no longer execute that request) and the
    # exit rule decides the close again
    rig.clock.advance(timedelta(hours=1))
    service = rig.service()
    assert service.reconcile().expired == 1
    again = close(service)
    # Then the close is sent once more under the next attempt's client ID, and the position sold
    assert again.status == OrderStatus.FILLED.value, again
    assert again.client_order_id != unknown.client_order_id
    assert Decimal(str(rig.position()["quantity"])) == 0
    closes = {str(o["client_order_id"]): o["status"] for o in rig.orders(Intent.CLOSE)}
    assert closes == {
        unknown.client_order_id: OrderStatus.EXPIRED.value,
        again.client_order_id: OrderStatus.FILLED.value,
    }
    assert len([o for o in rig.fake.orders() if o["side"] == "SELL"]) == 1
