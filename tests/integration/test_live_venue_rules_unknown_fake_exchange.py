"""Orders not sent because the venue's market rules cannot be read (a cold start's markets load
that timed out), against the local fake Binance: not placed (never REJECTED), counted as one
exchange error, and the next cycle places them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.exchange import Market, RetryableExchangeError
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.services.execution import RULES_UNKNOWN
from tests.support import live_venue
from tests.support.live_venue import BTC, EQUITY, QUOTE, STOP, Rig, close, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


def _readable_once(rig: Rig) -> Callable[[Symbol], Market]:
    """The venue's rules, read once (the dust check), then unreadable (the order's sizing)."""
    real, calls = rig.venue.market, []

    def rules(symbol: Symbol) -> Market:
        calls.append(symbol)
        if len(calls) > 1:
            raise RetryableExchangeError("binance", "fetch_markets", "read timeout")
        return real(symbol)

    return rules


def _unreadable(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    def timeout() -> Any:
        raise RetryableExchangeError("binance", "fetch_markets", "read timeout")

    monkeypatch.setattr(rig.venue, "_markets", {})
    monkeypatch.setattr(rig.venue, "fetch_markets", timeout)


def test_live_venue_a_close_while_the_rules_cannot_be_read_spends_no_attempt(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a position of 0.03 BTC, and the venue's rules unreadable (dust or not: unknown)
    entry(rig.service())
    errors = live_venue.metric(rig, "ExchangeErrors")
    _unreadable(rig, monkeypatch)
    # When the exit rule closes it
    first = close(rig.service())
    # Then nothing is recorded or sent (no close attempt spent, not called dust), one error
    assert first.status == RULES_UNKNOWN and not first.sent, first
    assert "rules are unknown" in first.reason, first.reason
    assert rig.orders(Intent.CLOSE) == []
    assert live_venue.metric(rig, "ExchangeErrors") == errors + 1
    # and on the next cycle, the rules readable again, the close sells the position
    monkeypatch.undo()
    rig.clock.advance(timedelta(hours=1))
    again = close(rig.service())
    assert again.status == OrderStatus.FILLED.value, again
    assert Decimal(str(rig.position()["quantity"])) == 0


def test_live_venue_an_entry_not_sent_while_the_rules_cannot_be_read_is_not_placed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the venue's rules unreadable
    _unreadable(rig, monkeypatch)
    # When an entry is submitted
    service = rig.service()
    intent = OrderIntent("protective-test", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                         Quantity.of("0.03"), Price.of("31400"))  # fmt: skip
    result = service.submit(intent, equity=EQUITY, quote=QUOTE)
    # Then it is settled EXPIRED with the reason (nothing sent), not REJECTED by the venue
    assert result.status == OrderStatus.EXPIRED.value, result
    (order,) = rig.orders(Intent.OPEN)
    assert order["status"] == OrderStatus.EXPIRED.value
    assert "nothing sent" in str(order.get("expire_reason")), order
    assert rig.sent("POST") == []
    assert live_venue.metric(rig, "ExchangeErrors") == 1
    assert live_venue.metric(rig, "OrdersRejectedByExchange") == 0


def test_live_venue_a_stop_whose_rules_turn_unreadable_is_not_placed_then_placed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a position, the venue's rules read for the dust check, unreadable when the stop is
    # sized
    entry(rig.service())
    monkeypatch.setattr(rig.venue, "market", _readable_once(rig))
    first = rig.service().protect_positions({BTC.value: STOP})[BTC.value]
    # Then the stop is not placed (EXPIRED, nothing sent), never REJECTED, one error counted
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.EXPIRED.value, first
    assert "nothing sent" in str(stop.get("expire_reason")), stop
    assert rig.sent("POST", "STOP_LOSS_LIMIT") == []
    assert live_venue.metric(rig, "ExchangeErrors") == 1
    # and the next cycle, the rules readable, places the next attempt
    monkeypatch.undo()
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    note = rig.service().protect_positions({BTC.value: STOP})[BTC.value]
    resting = [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert resting == ["NEW"], f"first cycle: {first}; next cycle: {note}"


def test_live_venue_an_oco_list_whose_rules_turn_unreadable_is_not_placed_then_placed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a position, its take-profit above the mark, the rules unreadable at the list's sizing
    entry(rig.service())
    stops, tps, marks = (
        {BTC.value: STOP},
        {BTC.value: Decimal("33000")},
        {BTC.value: Decimal("31400")},
    )
    monkeypatch.setattr(rig.venue, "market", _readable_once(rig))
    first = rig.service().protect_positions(stops, tps, marks)[BTC.value]
    # Then neither leg is placed nor REJECTED (nothing sent)
    assert first.startswith("OCO list") and "rules are unknown" in first, first
    statuses = {o["status"] for o in rig.orders(Intent.PROTECT)}
    assert OrderStatus.REJECTED.value not in statuses, first
    assert rig.fake.orders() and not [
        o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"
    ], first
    # and the next cycle places a stop
    monkeypatch.undo()
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    note = rig.service().protect_positions(stops, tps, marks)[BTC.value]
    resting = [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert resting == ["NEW"], f"first cycle: {first}; next cycle: {note}"
