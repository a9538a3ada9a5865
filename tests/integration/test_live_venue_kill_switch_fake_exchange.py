"""The kill-switch's cancel sweep against the local fake Binance, its open-orders index lagging.

The sweep cancels what this run holds open (its own writes laid over the eventually
consistent index) and reads each order by key before its conditional write: a protective stop
the same cycle's reconcile just found resting, or another worker moved on, is cancelled on the
venue; a write that lost to a fresher status is retried from that status, never dropped.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.exchange import OrderStateUnknownError, RetryableExchangeError
from cryptosmarttrader.domain.order_changes import StatusChange
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from tests.support import live_venue
from tests.support.live_venue import (
    BTC,
    EQUITY,
    QUOTE,
    STOP,
    LaggingIndex,
    Rig,
    entry,
    lagging,
    metric,
    stop_triggered_on_a_thin_book,
)

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


class _BookedAnswerLost:
    """The venue books the stop; the answer and the immediate lookup are both lost."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue

    def create_stop_order(self, *args: Any) -> Any:
        self._venue.create_stop_order(*args)
        raise OrderStateUnknownError("binance", "create_order", "read timeout", "x")

    def fetch_order_by_client_id(self, *args: Any) -> Any:
        raise RetryableExchangeError("binance", "fetch_order", "read timeout")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


class _IndexHoldsTheInsert(LaggingIndex):
    """An index that replicated an order's NEW insert, not its move to SUBMITTED."""

    def update_status(self, key: str, change: StatusChange) -> bool:
        if change.expected is OrderStatus.NEW and change.new is OrderStatus.SUBMITTED:
            self.freeze()
        return self._ledger.update_status(key, change)  # type: ignore[no-any-return]


def _resting_stops(rig: Rig) -> list[str]:
    return [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]


def _stop_left_submitted(rig: Rig) -> None:
    entry(rig.service())
    note = rig.service(_BookedAnswerLost(rig.venue)).protect_positions({BTC.value: STOP})
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.SUBMITTED.value, note
    assert _resting_stops(rig) == ["NEW"]


def test_live_venue_kill_switch_cancels_a_stop_the_same_reconcile_just_found_resting(
    rig: Rig,
) -> None:
    _stop_left_submitted(rig)
    # Given the kill-switch turned on, and the next cycle's index lagging its own writes
    rig.switch(True)
    rig.clock.advance(timedelta(minutes=10))
    service, index = lagging(rig)
    index.freeze()
    # When the cycle reconciles (finds the stop resting, then cancels everything: switch on)
    service.reconcile()
    # Then the stop is cancelled on the venue, and settled CANCELED in the ledger
    assert _resting_stops(rig) == ["CANCELED"], rig.orders(Intent.PROTECT)
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert metric(rig, "ProtectiveStopsCancelled") == 1
    assert metric(rig, "OrdersCancelledByKillSwitch") == 1


def test_live_venue_kill_switch_cancels_a_stop_another_worker_moved_since_the_index_read_it(
    rig: Rig,
) -> None:
    _stop_left_submitted(rig)
    rig.clock.advance(timedelta(minutes=10))
    # Given a run whose index still shows the stop SUBMITTED, while another worker's reconcile
    # has found it resting (ACCEPTED) since
    service, index = lagging(rig)
    index.freeze()
    rig.service().reconcile()
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.ACCEPTED.value
    # When the kill-switch turns on and the run's next decision meets it
    rig.switch(True)
    rig.clock.advance(timedelta(seconds=10))
    intent = OrderIntent("after-switch", BTC, Side.BUY, Intent.OPEN, 1_652_144_400_000,
                         Quantity.of("0.01"), Price.of("31400"))  # fmt: skip
    result = service.submit(intent, equity=EQUITY, quote=QUOTE)
    # Then nothing is sent, and the sweep cancels the stop from its fresh status
    assert result.status == "rejected" and result.rule == "kill_switch", result
    assert _resting_stops(rig) == ["CANCELED"], rig.orders(Intent.PROTECT)
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value


def test_live_venue_kill_switch_never_drops_a_stop_the_index_still_shows_new(rig: Rig) -> None:
    entry(rig.service())
    # Given a run whose index replicated the stop's NEW insert but not what followed
    service = rig.service()
    index = _IndexHoldsTheInsert(service.orders)
    service.orders = index
    note = service.protect_positions({BTC.value: STOP})
    assert "ACCEPTED" in note[BTC.value], note
    assert [o["status"] for o in index.list_open() if o["intent"] == Intent.PROTECT.value] == [
        OrderStatus.NEW.value
    ]
    # When the kill-switch turns on and the same run reconciles
    rig.switch(True)
    rig.clock.advance(timedelta(minutes=1))
    service.reconcile()
    # Then the stop it placed is cancelled on the venue, not forgotten as a NEW one that lost
    assert _resting_stops(rig) == ["CANCELED"], rig.orders(Intent.PROTECT)
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert metric(rig, "ProtectiveStopsCancelled") == 1


class _LandsLate:
    """The stop's create is lost on the way (nothing booked, no answer) and reaches the venue
    later, when ``land`` is called: within the venue's receive window, after a cancel."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self._sent: tuple[Any, ...] | None = None

    def create_stop_order(self, *args: Any) -> Any:
        self._sent = args
        raise OrderStateUnknownError("binance", "create_order", "read timeout", "x")

    def land(self) -> None:
        assert self._sent is not None
        self._venue.create_stop_order(*self._sent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


def test_live_venue_a_stop_not_found_right_after_the_kill_switch_cancel_is_cancelled_when_it_lands(
    rig: Rig,
) -> None:
    entry(rig.service())
    late = _LandsLate(rig.venue)
    note = rig.service(late).protect_positions({BTC.value: STOP})
    assert "left SUBMITTED" in note[BTC.value], note
    # Given the kill-switch on moments after the stop was sent: the venue does not show it yet
    rig.switch(True)
    rig.service().reconcile()
    (stop,) = rig.orders(Intent.PROTECT)
    # Then it is not settled CANCELED on that absence: it stays CANCEL_PENDING
    assert stop["status"] == OrderStatus.CANCEL_PENDING.value
    # When the create lands after the cancel, and the next cycle runs
    late.land()
    assert _resting_stops(rig) == ["NEW"]
    rig.clock.advance(timedelta(minutes=1))
    rig.service().reconcile()
    # Then the stop is cancelled on the venue and in the ledger
    assert _resting_stops(rig) == ["CANCELED"], rig.orders(Intent.PROTECT)
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_a_cancelled_stop_that_never_lands_is_settled_after_the_grace_switch_off(
    rig: Rig,
) -> None:
    entry(rig.service())
    rig.service(_LandsLate(rig.venue)).protect_positions({BTC.value: STOP})
    rig.switch(True)
    rig.service().reconcile()
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCEL_PENDING.value
    # When the switch is turned off: never confirmed by the venue, it is not settled on an
    # absence the venue's lookup may still lag behind (the 2-minute grace is not enough)
    rig.switch(False)
    rig.clock.advance(timedelta(minutes=3))
    rig.service().reconcile()
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCEL_PENDING.value
    # and once the venue can no longer execute it (its request window plus the query lag)
    settle_after, _ = rig.service().absent_settle_after()
    rig.clock.advance(settle_after - timedelta(minutes=3))
    rig.service().reconcile()
    # Then reconcile settles it CANCELED: never left pending for good
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert _resting_stops(rig) == []


def test_live_venue_a_cancel_pending_stop_settled_after_the_grace_counts_as_cancelled_once(
    rig: Rig,
) -> None:
    # Given a stop whose create never lands, asked to be cancelled by the kill-switch
    entry(rig.service())
    rig.service(_LandsLate(rig.venue)).protect_positions({BTC.value: STOP})
    rig.switch(True)
    rig.service().reconcile()
    assert metric(rig, "ProtectiveStopsCancelled") == 0  # not settled yet: not counted
    # When reconcile settles it CANCELED once the venue can no longer execute it (its request
    # window plus the query lag; never confirmed by the venue), and runs again
    rig.clock.advance(rig.service().absent_settle_after()[0])
    rig.service().reconcile()
    rig.service().reconcile()
    # Then it counts as a protective stop cancelled, like a cancel the venue confirmed, once
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert metric(rig, "ProtectiveStopsCancelled") == 1


class _LookupLostOnce:
    """The venue cancels the stop; the sweep's lookup right after is lost (a read timeout)."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue
        self._cancelled = False
        self._lost = False

    def cancel_order(self, *args: Any) -> Any:
        self._cancelled = True
        return self._venue.cancel_order(*args)

    def fetch_order_by_client_id(self, *args: Any) -> Any:
        if self._cancelled and not self._lost:
            self._lost = True
            raise RetryableExchangeError("binance", "fetch_order", "read timeout")
        return self._venue.fetch_order_by_client_id(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


def test_live_venue_a_stop_the_reconcile_finds_cancelled_after_the_sweep_counts_once(
    rig: Rig,
) -> None:
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    # Given the kill-switch's cancel done at the venue, its lookup lost: left CANCEL_PENDING
    rig.switch(True)
    rig.service(_LookupLostOnce(rig.venue)).reconcile()
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCEL_PENDING.value
    assert _resting_stops(rig) == ["CANCELED"]
    # When the next cycles' reconcile reads the venue's answer
    rig.clock.advance(timedelta(minutes=1))
    rig.service().reconcile()
    rig.service().reconcile()
    # Then the stop is CANCELED in the ledger and counted once
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    assert metric(rig, "ProtectiveStopsCancelled") == 1


def test_live_venue_kill_switch_keeps_the_stop_of_a_remainder_the_flatten_cannot_sell(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the stop triggered by the 14:00 bar on a thin book: it sold all but a remainder
    # worth less than Binance's minimum notional (5 USDT), and still rests for that remainder
    rest = stop_triggered_on_a_thin_book(rig, "0.02985")
    assert rest == Decimal("0.00012")
    refusal = rig.venue.market_sell_refusal(BTC, Quantity(rest))
    assert refusal is not None and "minimum notional" in refusal  # the flatten cannot sell it
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.PARTIALLY_FILLED.value
    # and a decision recorded but not sent yet
    decision = OrderIntent("other", BTC, Side.BUY, Intent.OPEN, 1_652_191_200_000,
                           Quantity.of("0.01"), Price.of("31000"))  # fmt: skip
    service = rig.service()
    assert service.orders.record(Order.new(decision, created_at=rig.clock.now(), mode="testnet"))
    # When the kill-switch sweep runs (directly, then as the cycles' reconcile runs it)
    rig.switch(True)
    with caplog.at_level(logging.WARNING, logger="cryptosmarttrader.services.execution"):
        report = service.cancel_open_orders("kill-switch on: operator test")
    rig.service().reconcile()
    # Then the decision is cancelled as before, the stop is kept: reported, logged, still
    # resting on the venue and in the ledger (no cancel sent for it)
    assert report.cancelled == 1
    assert rig.service().orders.get(decision.client_order_id.value)["status"] == "CANCELED"  # type: ignore[index]
    assert list(report.kept) == [stop["client_order_id"]]
    assert "minimum notional" in report.kept[stop["client_order_id"]]
    assert stop["client_order_id"] in caplog.text and "keeps protective order" in caplog.text
    assert rig.sent("DELETE") == []
    assert _resting_stops(rig) == ["PARTIALLY_FILLED"]
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.PARTIALLY_FILLED.value
    assert metric(rig, "ProtectiveStopsCancelled") == 0
    # and the next bar sells the remainder through it, booked once: nothing left unprotected
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    assert Decimal(str(rig.position()["quantity"])) == 0
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.FILLED.value


def test_live_venue_kill_switch_still_cancels_the_stop_of_a_position_the_flatten_can_sell(
    rig: Rig,
) -> None:
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    rig.switch(True)
    report = rig.service().cancel_open_orders("kill-switch on: operator test")
    assert report.cancelled == 1 and report.kept == {}
    assert _resting_stops(rig) == ["CANCELED"]


def test_live_venue_kill_switch_names_the_open_orders_it_could_not_read(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a stop resting for a held position, and an open order of ETH whose stored fill
    # cannot be true (it may rest on the venue: the sweep cannot tell, nor cancel it)
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    assert rig.stores.orders.put_new(
        {"client_order_id": "e" * 32, "symbol": "ETH/USDT", "side": "buy", "intent": "open",
         "order_type": "market", "quantity": Decimal("1"), "reference_price": Decimal("100"),
         "strategy": "scan", "signal_bar_ms": 1_700_000_000_000, "status": "ACCEPTED",
         "created_at": rig.clock.now().isoformat(), "filled": Decimal("1E+100")}
    )  # fmt: skip
    rig.switch(True)
    # When the kill-switch sweep runs
    with caplog.at_level(logging.ERROR):
        report = rig.service().cancel_open_orders("kill-switch on: operator test")
    # Then every readable order is cancelled and the unreadable one is named (key, coin, why)
    assert report.cancelled == 1 and _resting_stops(rig) == ["CANCELED"]
    (named,) = report.unreadable
    assert named.startswith(f"record {'e' * 32!r} of ETH/USDT unreadable: ValueError: filled")
    # and logged as an order that may still rest on the venue
    assert any("may still rest on the venue" in r.getMessage() for r in caplog.records)
    # and every later sweep names it again until the record is repaired
    assert rig.service().cancel_open_orders("again").unreadable == (named,)


def test_live_venue_kill_switch_keeps_the_stop_of_an_unsellable_remainder_while_the_ticker_fails(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stop resting for a remainder worth less than Binance's minimum notional
    rest = stop_triggered_on_a_thin_book(rig, "0.02985")
    refusal = rig.venue.market_sell_refusal(BTC, Quantity(rest))
    assert refusal is not None and "minimum notional" in refusal  # the flatten cannot sell it
    assert _resting_stops(rig) == ["PARTIALLY_FILLED"]

    # When the kill-switch sweep runs while the venue's ticker cannot be read (a read timeout)
    def unreadable(*_args: Any) -> Any:
        raise RetryableExchangeError("binance", "fetch_tickers", "read timeout")

    monkeypatch.setattr(rig.venue, "fetch_tickers", unreadable)
    rig.switch(True)
    report = rig.service().cancel_open_orders("kill-switch on: operator test")
    monkeypatch.undo()
    # Then the remainder's only exit still rests on the venue (the flatten cannot sell it
    # whether or not this cycle could read the price), the report saying how it was judged
    assert _resting_stops(rig) == ["PARTIALLY_FILLED"], rig.orders(Intent.PROTECT)
    (why,) = report.kept.values()
    # (a stop that triggered gives no price to judge at: the market may be below its limit,
    # so the sell is kept in doubt)
    assert "the last price cannot be read" in why and "cannot be sized" in why, why


def test_live_venue_market_sell_refusal_is_judged_at_the_given_price_while_the_ticker_fails(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the venue's ticker that cannot be read (its market rules can)
    rig.venue.market(BTC)

    def unreadable(*_args: Any) -> Any:
        raise RetryableExchangeError("binance", "fetch_tickers", "read timeout")

    monkeypatch.setattr(rig.venue, "fetch_tickers", unreadable)
    price = Price(Decimal("30000"))
    # Then a sale worth the minimum notional at the given price is taken, a smaller one refused
    # with the price it was judged at, and without a price the sale is refused in doubt
    assert rig.venue.market_sell_refusal(BTC, Quantity(Decimal("0.03")), price) is None
    small = rig.venue.market_sell_refusal(BTC, Quantity(Decimal("0.0001")), price)
    assert small is not None and "minimum notional" in small and "judged at 30000" in small
    unsized = rig.venue.market_sell_refusal(BTC, Quantity(Decimal("0.03")))
    assert unsized is not None and "cannot be sized" in unsized


def test_live_venue_kill_switch_sweeps_the_others_when_a_stopped_position_cannot_be_read(
    rig: Rig,
) -> None:
    # Given a BTC position with its stop resting, its position record then damaged (below zero)
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    positions = rig.service().positions
    stored = positions.get(BTC.value)
    assert stored is not None
    assert positions.upsert({**stored, "quantity": Decimal(-1)}, int(stored["version"]))
    # and an ETH decision recorded but not sent yet
    decision = OrderIntent("other", Symbol("ETH/USDT"), Side.BUY, Intent.OPEN,
                           1_652_191_200_000, Quantity.of("0.1"), Price.of("2000"))  # fmt: skip
    service = rig.service()
    assert service.orders.record(Order.new(decision, created_at=rig.clock.now(), mode="testnet"))
    # When the kill-switch sweep runs
    rig.switch(True)
    report = service.cancel_open_orders("kill-switch on: operator test")
    # Then the decision is cancelled; the stop, the only exit of a position that cannot be
    # read (the flatten cannot sell it), is kept and reported with why
    assert report.cancelled == 1
    assert service.orders.get(decision.client_order_id.value)["status"] == "CANCELED"  # type: ignore[index]
    (stop,) = rig.orders(Intent.PROTECT)
    assert list(report.kept) == [stop["client_order_id"]]
    assert "cannot be read" in report.kept[stop["client_order_id"]]
    assert _resting_stops(rig) == ["NEW"]  # still resting on the venue, no cancel sent
