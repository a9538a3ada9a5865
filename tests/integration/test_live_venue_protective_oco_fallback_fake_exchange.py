"""A position whose protective OCO list Binance refused rests with the plain stop alone: its
take-profit is then enforced by the hourly exit rule, through real ccxt against the local fake
Binance (the stores on the in-memory fakes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.exit_rule import ExitRule
from cryptosmarttrader.domain.orders import MAX_PROTECT_ATTEMPTS, Intent, OrderStatus
from tests.support import live_venue
from tests.support.live_venue import BTC, STOP, Rig, entry, metric

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig

OCO = "/api/v3/orderList/oco"


def test_a_position_left_with_the_plain_stop_has_its_take_profit_taken_by_the_hourly_exit_rule(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a position bought at 20000 (its cost on the ledger) with an exit rule taking profit
    # at +10 % (22000) and stopping at -10 % (18000): BTC trades near 31400, past the take-profit
    rule = ExitRule(take_profit=0.1, stop_loss=0.1)
    entry(rig.service())
    positions = rig.service().positions
    held, version = positions.load(BTC.value)
    assert held is not None
    positions.save(replace(held, cost=held.quantity * Decimal(20000)), version, rig.clock.now())
    # When the first cycle protects it: Binance refuses the list (the price is past its
    # take-profit), the plain stop rests alone
    rig.clock.advance(timedelta(minutes=10))  # 10:10
    first = rig.cycle(market, rule).run()
    assert "OCO list not placed" in first.protective_stops[BTC.value], first.protective_stops
    (plain,) = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert rig.fake.order_lists() == []
    # and the cycle after the second daily close above the take-profit (May 11 and 12) runs
    rig.clock.advance(timedelta(days=2, hours=14))
    assert rig.clock.now() == datetime(2022, 5, 13, 0, 10, tzinfo=UTC)
    later = rig.cycle(market, rule).run()
    # Then the exit rule takes the profit: the plain stop is cancelled once, one sell is sent
    assert later.exits_by_rule == 1, later.exit_decisions
    assert "take_profit" in later.exit_decisions[BTC.value], later.exit_decisions
    deletes = [p["origClientOrderId"] for p in rig.sent("DELETE")]
    assert deletes == [plain["newClientOrderId"]]
    sells = [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]
    assert len(sells) == 1
    # and the venue fills it on the next bar: the position is closed, nothing sold again
    rig.clock.advance(timedelta(hours=1, minutes=5))
    rig.cycle(market, rule).run()
    assert Decimal(str(rig.position().get("quantity", 0))) == 0
    assert len([p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]) == 1
    (stop,) = [o for o in rig.orders(Intent.PROTECT) if o["order_type"] == "stop_loss_limit"
               and o.get("list_client_order_id") is None]  # fmt: skip
    assert stop["status"] == OrderStatus.CANCELED.value


TP = Decimal("32300")  # above the 10:00 open (31397.68); the stop (STOP) is 31000
MARK = Decimal("31397.68")  # the last close the cycle hands over: between the stop and TP


def _protect(rig: Rig, mark: Decimal | None = MARK) -> str:
    marks = {} if mark is None else {BTC.value: mark}
    service = rig.service()
    return service.protect_positions({BTC.value: STOP}, {BTC.value: TP}, marks)[BTC.value]


def _resting_sells(rig: Rig) -> list[dict[str, Any]]:
    return [
        o
        for o in rig.fake.orders()
        if o["side"] == "SELL" and o["status"] in {"NEW", "PARTIALLY_FILLED"}
    ]


def _protection(rig: Rig) -> Decimal:
    """What the resting sells would sell at most: a list's two legs sell its quantity once."""
    lists: dict[int, Decimal] = {}
    plain = Decimal(0)
    for o in _resting_sells(rig):
        rest = Decimal(str(o["origQty"])) - Decimal(str(o["executedQty"]))
        if int(o["orderListId"]) == -1:
            plain += rest
        else:
            lists[int(o["orderListId"])] = max(lists.get(int(o["orderListId"]), Decimal(0)), rest)
    return plain + sum(lists.values(), Decimal(0))


def test_the_list_refused_for_its_take_profit_is_placed_again_once_the_price_is_back_below_it(
    rig: Rig,
) -> None:
    entry(rig.service())
    held = Decimal(str(rig.position()["quantity"]))
    # Given Binance refusing the list (-2010: the best bid reached the take-profit): the plain
    # stop rests alone, and the exit rule is the only one taking the profit
    rig.fake.best_bid["BTCUSDT"] = TP
    first = _protect(rig)
    assert "OCO list not placed" in first, first
    (plain,) = rig.sent("POST", "STOP_LOSS_LIMIT")
    # When the bid is back below the take-profit and the next cycles protect it (the last close
    # between the stop and the take-profit), then again after a restart
    del rig.fake.best_bid["BTCUSDT"]
    notes = [_protect(rig) for _ in range(3)]
    # Then the plain stop was cancelled once, before the list was placed once, in the next
    # attempt of the same position state; the list rests, never beside the plain stop
    assert "cancelled to place the OCO list again" in notes[0], notes
    assert "(ACCEPTED), stop" in notes[0], notes
    assert all(n.startswith("protected by stop") for n in notes[1:]), notes
    cancels = [p for m, path, p in rig.fake.requests if m == "DELETE"]
    assert [p["origClientOrderId"] for p in cancels] == [plain["newClientOrderId"]]
    order = [(m, path) for m, path, _ in rig.fake.requests if m in {"POST", "DELETE"}]
    assert order.index(("DELETE", "/api/v3/order")) < len(order) - 1
    assert order[-1] == ("POST", OCO)  # the list after the cancel
    (placed,) = rig.fake.order_lists()
    assert {o["status"] for o in placed["orderReports"]} == {"NEW"}
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1
    assert _protection(rig) == held
    assert metric(rig, "ProtectiveStopsCancelled") == 1
    assert metric(rig, "TakeProfitsPlaced") == 1


def test_a_list_refused_again_leaves_the_plain_stop_each_cycle_and_its_retries_are_bounded(
    rig: Rig,
) -> None:
    entry(rig.service())
    held = Decimal(str(rig.position()["quantity"]))
    # Given the best bid staying at the take-profit while the last hourly close is below it
    rig.fake.best_bid["BTCUSDT"] = TP
    notes = []
    for _ in range(12):
        notes.append(_protect(rig))
        # Then after every cycle a stop rests for exactly what is held, never more
        assert _protection(rig) == held, notes
    # and the retries stop within the first half of the position state's attempts: the plain
    # stop then keeps resting, the exit rule taking the profit
    lists = [p for m, path, p in rig.fake.requests if (m, path) == ("POST", OCO)]
    assert len(lists) == MAX_PROTECT_ATTEMPTS // 2, notes
    assert notes[-1].startswith("protected by stop"), notes
    assert not any("no protective stop" in n for n in notes), notes
    # without the cycle's last close nothing is retried
    assert _protect(rig, None).startswith("protected by stop")
