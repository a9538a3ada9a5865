"""The go-live rollback's order step on a testnet / live venue, against the local fake Binance.

A rollback from canary cancels at the venue through the execution service's sweep
(``GoLiveService.cancel_open_orders`` with a ``venue_sweep``): a resting entry is cancelled on
the venue and settled CANCELED on its answer; the protective stop of a held position stays
resting (the position keeps its exit on the venue); a cancel whose answer is lost leaves the
order in doubt (CANCEL_PENDING, never CANCELED in the ledger) until the reconcile reads the
venue. The result names what was cancelled, kept and left in doubt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cryptosmarttrader.domain.exchange import OrderStateUnknownError
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.risk import MarketQuote
from cryptosmarttrader.domain.types import Price, Quantity, Side
from cryptosmarttrader.services.golive import Failure, GoLiveService
from tests.support import live_venue
from tests.support.live_venue import BTC, EQUITY, QUOTE, STOP, Rig, entry

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig

RUN = "canary-run"
BREACH = Failure.model_validate({"Error": "CanarySloBreach", "Cause": "uptime 0.9 < 0.995"})


class _CancelAnswerLost:
    """The venue cancels the order; the answer and the lookup after it are both lost."""

    def __init__(self, venue: Any) -> None:
        self._venue = venue

    def cancel_order(self, *args: Any) -> Any:
        self._venue.cancel_order(*args)
        raise OrderStateUnknownError("binance", "cancel_order", "read timeout", "x")

    def fetch_order_by_client_id(self, *args: Any) -> Any:
        raise OrderStateUnknownError("binance", "fetch_order", "read timeout", "x")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


def _golive(rig: Rig, exchange: Any = None) -> GoLiveService:
    return GoLiveService(
        store=rig.stores.state,
        orders=rig.stores.orders,
        kill_switch=rig.stores.switch,
        clock=rig.clock,
        venue_sweep=lambda: rig.service(exchange),
    )


def _held_with_stop_and_resting_entry(rig: Rig) -> tuple[str, str]:
    """A canary position (0.03 BTC bought at the 10:00 open) with its stop resting, and at
    10:30 a second market entry resting on the venue until the 11:00 bar opens. Returns the
    client order IDs of the stop and of the resting entry."""
    entry(rig.service())
    note = rig.service().protect_positions({BTC.value: STOP})
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.ACCEPTED.value, note
    rig.clock.advance(timedelta(minutes=30))
    intent = OrderIntent("canary", BTC, Side.BUY, Intent.OPEN, 1_652_176_800_000,
                         Quantity.of("0.01"), Price.of("31400"))  # fmt: skip
    fresh = MarketQuote(rig.clock.now() - timedelta(minutes=1), QUOTE.volume_24h_quote)
    result = rig.service().submit(intent, equity=EQUITY, quote=fresh)
    assert result.sent, result.reason
    resting = [o for o in rig.orders(Intent.OPEN) if o["status"] == OrderStatus.ACCEPTED.value]
    (second,) = resting
    assert _venue_status(rig, second["client_order_id"]) == "NEW"
    return stop["client_order_id"], second["client_order_id"]


def _venue_status(rig: Rig, coid: str) -> str:
    (order,) = rig.fake.orders(coid)
    return str(order["status"])


def _ledger_status(rig: Rig, coid: str) -> str:
    (order,) = [o for o in rig.orders() if o["client_order_id"] == coid]
    return str(order["status"])


def test_golive_rollback_cancels_a_resting_entry_at_the_venue_and_keeps_the_stop(
    rig: Rig,
) -> None:
    stop, second = _held_with_stop_and_resting_entry(rig)
    rig.clock.advance(timedelta(minutes=5))
    # When the canary is rolled back (kill-switch, orders, version, record)
    run = _golive(rig).rollback(RUN, BREACH)
    orders = run["rollback_steps"]["orders"]
    # Then the resting entry is cancelled on the venue, and CANCELED in the ledger on its answer
    assert _venue_status(rig, second) == "CANCELED"
    assert _ledger_status(rig, second) == OrderStatus.CANCELED.value
    # and the held position's stop still rests on the venue, as the ledger says
    assert _venue_status(rig, stop) == "NEW"
    assert _ledger_status(rig, stop) == OrderStatus.ACCEPTED.value
    assert rig.position()["quantity"] > 0
    # and the step's result names each: cancelled, kept (with why), nothing in doubt
    assert orders["venue"] == "testnet"
    assert orders["canceled"] == [second]
    assert list(orders["kept"]) == [stop]
    assert orders["kept"][stop].startswith("protects the 0.02997 held")
    assert orders["unprotected"] == {}
    assert orders["in_doubt"] == {}
    assert orders["unreadable"] == []
    assert run["status"] == "ROLLED_BACK"


def test_golive_rollback_names_a_held_position_without_a_protective_sell(rig: Rig) -> None:
    # Given a canary position whose protective stop was never placed
    entry(rig.service())
    assert rig.orders(Intent.PROTECT) == []
    assert rig.position()["quantity"] > 0
    rig.clock.advance(timedelta(minutes=5))
    # When the canary is rolled back
    orders = _golive(rig).rollback(RUN, BREACH)["rollback_steps"]["orders"]
    # Then nothing is kept for it, and the step's result names the position as unprotected
    assert orders["kept"] == {}
    assert list(orders["unprotected"]) == [BTC.value]
    assert "no protective sell on the venue" in orders["unprotected"][BTC.value]


def test_golive_rollback_leaves_an_order_whose_cancel_answer_is_lost_in_doubt(rig: Rig) -> None:
    stop, second = _held_with_stop_and_resting_entry(rig)
    rig.clock.advance(timedelta(minutes=5))
    # When the rollback's order step runs and the venue's answer to the cancel is lost
    orders = _golive(rig, _CancelAnswerLost(rig.venue)).cancel_open_orders(RUN, BREACH)
    # Then the venue did cancel it, but the ledger never records CANCELED on no answer
    assert _venue_status(rig, second) == "CANCELED"
    assert _ledger_status(rig, second) == OrderStatus.CANCEL_PENDING.value
    assert orders["canceled"] == []
    assert list(orders["in_doubt"]) == [second]
    assert orders["in_doubt"][second].startswith("CANCEL_PENDING")
    assert list(orders["kept"]) == [stop]
    # and the next reconcile settles it on what the venue shows
    rig.clock.advance(timedelta(minutes=1))
    rig.service().reconcile()
    assert _ledger_status(rig, second) == OrderStatus.CANCELED.value
    assert _ledger_status(rig, stop) == OrderStatus.ACCEPTED.value


def test_golive_rollback_is_idempotent_on_the_venue(rig: Rig) -> None:
    stop, second = _held_with_stop_and_resting_entry(rig)
    golive = _golive(rig)
    first = golive.cancel_open_orders(RUN, BREACH)
    # When the step is retried (the state machine retries a compensation task)
    rig.clock.advance(timedelta(seconds=2))
    again = golive.cancel_open_orders(RUN, BREACH)
    # Then nothing more is cancelled, and the stop is still kept
    assert first["canceled"] == [second]
    assert again["canceled"] == []
    assert list(again["kept"]) == [stop]
    assert len(rig.sent("DELETE")) == 1
    assert _venue_status(rig, stop) == "NEW"


def test_golive_rollback_switch_keeps_the_stop_through_the_next_cycles_sweep(rig: Rig) -> None:
    stop, second = _held_with_stop_and_resting_entry(rig)
    _golive(rig).rollback(RUN, BREACH)
    # When the next hourly reconcile meets the kill-switch the rollback engaged
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    # Then its sweep keeps the held position's stop resting, as the rollback did
    assert _venue_status(rig, stop) == "NEW"
    assert _ledger_status(rig, stop) == OrderStatus.ACCEPTED.value
    assert _ledger_status(rig, second) == OrderStatus.CANCELED.value
    # and once an operator holds the switch for another reason, the sweep cancels it as ever
    rig.switch(True)
    rig.clock.advance(timedelta(minutes=1))
    rig.service().reconcile()
    assert _venue_status(rig, stop) == "CANCELED"
    assert _ledger_status(rig, stop) == OrderStatus.CANCELED.value


def test_golive_rollback_keeps_an_operator_s_kill_switch_and_its_sweep_cancels_the_stop(
    rig: Rig,
) -> None:
    stop, _ = _held_with_stop_and_resting_entry(rig)
    # Given an operator who engaged the kill-switch for their own reason (docs/golive.md: the
    # sweep then cancels every order, stops included) before the next cycle ran
    rig.switch(True)
    rig.clock.advance(timedelta(minutes=5))
    # When a go-live run is rolled back meanwhile
    run = _golive(rig).rollback(RUN, BREACH)
    # Then its order step cancels the stop too (the switch holds for the operator's reason)
    assert run["rollback_steps"]["orders"]["kept"] == {}
    assert _venue_status(rig, stop) == "CANCELED"
    assert run["rollback_steps"]["kill_switch"]["reason"] == "operator test"
    # and after the next hourly reconcile
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    # the switch still holds for the operator's reason, by the operator (as the alarm
    # function re-affirms a switch already on), and the stop stays cancelled as asked
    status = rig.stores.switch.status()
    assert (status.on, status.reason, status.actor) == (True, "operator test", "operator")
    assert _venue_status(rig, stop) == "CANCELED"
    assert _ledger_status(rig, stop) == OrderStatus.CANCELED.value


def test_golive_rollback_switch_keeps_the_stop_when_a_decision_meets_it(rig: Rig) -> None:
    stop, second = _held_with_stop_and_resting_entry(rig)
    _golive(rig).rollback(RUN, BREACH)
    # When the next scan's decision reaches the execution service while the rollback's switch
    # holds (its submit sweeps the open orders before it refuses)
    rig.clock.advance(timedelta(hours=1))
    intent = OrderIntent("canary", BTC, Side.BUY, Intent.OPEN, 1_652_184_000_000,
                         Quantity.of("0.01"), Price.of("31400"))  # fmt: skip
    fresh = MarketQuote(rig.clock.now() - timedelta(minutes=1), QUOTE.volume_24h_quote)
    result = rig.service().submit(intent, equity=EQUITY, quote=fresh)
    # Then the decision is refused, and the held position's stop still rests on the venue
    assert (result.status, result.rule) == ("rejected", "kill_switch")
    assert _venue_status(rig, stop) == "NEW"
    assert _ledger_status(rig, stop) == OrderStatus.ACCEPTED.value
    assert _ledger_status(rig, second) == OrderStatus.CANCELED.value
