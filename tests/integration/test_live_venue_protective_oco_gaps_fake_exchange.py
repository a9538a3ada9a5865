"""Protective OCO lists on Binance: the rest of a partly filled take-profit and a list refused
for its take-profit leg alone, through real ccxt against the local fake Binance."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.orders import Intent, OrderStatus
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, close, entry, metric

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig

TP = Decimal("32300")  # the 12:00 bar's high is 32311.22 (its low 31518.17 above the stop)
OCO = "/api/v3/orderList/oco"


def _protect(rig: Rig, take_profit: Decimal = TP) -> str:
    service = rig.service()
    return service.protect_positions({BTC.value: STOP}, {BTC.value: take_profit})[BTC.value]


def _resting_sells(rig: Rig) -> list[dict[str, object]]:
    return [
        o
        for o in rig.fake.orders()
        if o["side"] == "SELL" and o["status"] in {"NEW", "PARTIALLY_FILLED"}
    ]


def test_the_rest_of_a_partly_filled_take_profit_is_never_left_without_a_resting_sell(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    _protect(rig)
    # Given a thin book: the take-profit leg sells 0.02 of its 0.02997 on the 12:00 bar, and the
    # venue expires the list's stop as that leg starts to fill
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    rig.clock.advance(timedelta(hours=3, minutes=5))  # 13:05: the 12:00 bar closed
    # When one cycle runs: the reconcile books the partial fill, the protective step follows
    cycle = rig.service()
    cycle.reconcile()
    note = cycle.protect_positions({BTC.value: STOP}, {BTC.value: TP})[BTC.value]
    held = Decimal(str(rig.position()["quantity"]))
    assert held > 0, "the rest is still held"
    # Then (docs/venues.md: "the rest is never left without a stop") something rests on the
    # venue for what is still held after the cycle
    assert _resting_sells(rig), f"nothing rests on the venue for the {held} held: {note}"


def test_a_list_refused_for_its_take_profit_leg_alone_still_leaves_a_stop(rig: Rig) -> None:
    service = rig.service()
    entry(service)
    # Given Binance refusing the list for its LIMIT_MAKER leg (-2010 "Order would immediately
    # match and take.": the best bid reached the take-profit; likewise PERCENT_PRICE_BY_SIDE on
    # the take-profit or MAX_NUM_ORDERS): the stop leg alone was acceptable
    rig.fake.best_bid["BTCUSDT"] = TP
    # When the protective step runs
    first = _protect(rig)
    # Then the plain stop rests at once (the same cycle), the list's legs are settled as not
    # placed (EXPIRED, never REJECTED: that would end the position state's stops)
    stops = [o for o in _resting_sells(rig) if o["type"] == "STOP_LOSS_LIMIT"]
    legs = {o["client_order_id"]: o["status"] for o in rig.orders(Intent.PROTECT)}
    assert len(stops) == 1 and stops[0]["orderListId"] == -1, (first, legs)
    assert "Order would immediately match and take" in first, first
    assert OrderStatus.REJECTED.value not in legs.values(), legs
    assert sorted(legs.values()).count(OrderStatus.EXPIRED.value) == 2, legs
    assert metric(rig, "OrdersRejectedByExchange") == 1  # one refusal: the list, not each leg
    # and the following cycles keep that stop (nothing refused, nothing placed again)
    del rig.fake.best_bid["BTCUSDT"]
    second = _protect(rig)
    assert second.startswith("protected by stop"), second
    assert len([o for o in _resting_sells(rig) if o["type"] == "STOP_LOSS_LIMIT"]) == 1


def test_a_price_through_the_stop_spends_one_attempt_per_cycle_as_the_plain_stop_does(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    # Given the price already through the stop (last 31397.68 below a stop at 35000): Binance
    # refuses the list (price relation) and the plain stop ("would trigger immediately")
    high_stop = Decimal("35000")
    notes = [
        rig.service().protect_positions({BTC.value: high_stop}, {BTC.value: Decimal("40000")})[
            BTC.value
        ]
        for _ in range(9)
    ]
    # Then after nine hourly cycles the position state still has attempts left (sixteen, one a
    # cycle for the plain stop): it is not given up on as "refused" after eight hours
    assert "the venue refused it" not in notes[-1], notes


def test_a_close_cancels_a_triggered_stop_leg_once_its_list_reads_all_done(rig: Rig) -> None:
    """Binance's OCO is over once one leg executed (the glossary: "if one of the orders execute,
    the other is automatically expired"): its list reads ALL_DONE while the triggered stop leg
    still works as a limit sell. The fake reads its lists as Binance's do."""
    service = rig.service()
    entry(service)
    _protect(rig, Decimal("62795.36"))  # a take-profit never reached: the stop acts
    # Given the stop leg triggered on the 14:00 bar and sold only part (a thin book): the venue
    # expired the take-profit, the rest of the stop still works as a limit sell
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.01")
    rig.clock.advance(timedelta(hours=5, minutes=5))  # 15:05
    rig.service().reconcile()
    working = [o for o in _resting_sells(rig) if o["type"] == "STOP_LOSS_LIMIT"]
    assert working and Decimal(str(working[0]["executedQty"])) > 0, rig.fake.orders()
    stop_leg = working[0]["clientOrderId"]
    # When the exit rule closes what is left
    result = close(rig.service())
    # Then the working stop leg is cancelled at the venue and the rest sold (or the close is
    # told why), not left pending for ever with nothing cancelled
    deletes = [p for m, path, p in rig.fake.requests if m == "DELETE"]
    assert deletes, f"nothing was cancelled at the venue: {result}"
    lists = rig.fake.order_lists()
    assert lists and lists[-1]["listOrderStatus"] == "ALL_DONE"
    assert [p.get("origClientOrderId") for p in deletes] == [stop_leg], deletes
    assert result.status != "rejected", result
    assert rig.fake.orders(stop_leg)[0]["status"] == "CANCELED"
