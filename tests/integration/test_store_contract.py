"""One contract per store-like port, run against its AWS adapter on moto and against its
in-memory fake (``tests/fakes.py``): the fakes the logic tests use behave as the adapters the
Lambdas use. Orders and positions (DynamoDB), state records with their conditional writes
(DynamoDB), the scan's signals (DynamoDB), the audit trail (DynamoDB) and the kill-switch (SSM).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.adapters.audit import (
    AppendOnlyAuditTrail,
    DuplicateAuditEntryError,
    DynamoAuditTrail,
)
from cryptosmarttrader.adapters.dynamodb_items import to_item
from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
    order_from_record,
    position_record,
)
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.aggregates import Fill, Order, Position
from cryptosmarttrader.domain.book import (
    ANY_SYMBOL,
    RecordedOrder,
    StatusStep,
    blocked_symbols,
    book_exposure,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import (
    IllegalTransitionError,
    Intent,
    OrderIntent,
    OrderStatus,
    protective_key,
    protective_list_ids,
)
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    OrderType,
    Price,
    Quantity,
    Side,
    Symbol,
)
from tests.fakes import (
    InMemoryAuditTrail,
    InMemoryKillSwitch,
    InMemoryOrderLedger,
    InMemoryPositionLedger,
    InMemorySignalStore,
    InMemoryStateStore,
)
from tests.support.aws import moto_stack

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BTC = Symbol("BTC/USDT")
ETH = Symbol("ETH/USDT")


@dataclass
class Stores:
    orders: Any
    positions: Any


@pytest.fixture(params=["dynamodb", "in-memory"])
def stores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    if request.param == "in-memory":
        yield Stores(InMemoryOrderLedger(), InMemoryPositionLedger())
        return
    with moto_stack(monkeypatch, now=T0) as clients:
        res = clients.resources
        yield Stores(
            DynamoOrderStore(res.orders_table, clients.dynamodb),
            DynamoPositionStore(res.positions_table, clients.dynamodb),
        )


def _order(bar_ms: int = 1_709_251_200_000, side: Side = Side.BUY, **extra: Any) -> Order:
    intent = OrderIntent(
        "contract", BTC, side, Intent.OPEN, bar_ms, Quantity.of("0.123456789"), Price.of("43210.12")
    )
    return Order.new(intent, created_at=T0, mode="paper", **extra)


def test_an_order_is_recorded_exactly_once_in_the_one_schema(stores: Stores) -> None:
    # Given a NEW order sized by the RiskGuard and valid for two hours
    order = _order(quantity=Quantity.of("0.1"), valid_for=timedelta(hours=2), rank=3)
    # When it is recorded twice
    first = stores.orders.record(order)
    second = stores.orders.record(order)
    # Then only the first insert wrote, and the stored record maps back to the same aggregate
    assert first is True and second is False
    stored = stores.orders.get(order.client_order_id.value)
    assert stored is not None
    assert order_from_record(stored) == order
    assert stored["quantity"] == Decimal("0.1")
    assert stored["decision_quantity"] == Decimal("0.123456789")
    assert stored["notional"] == Decimal("0.1") * Decimal("43210.12")
    assert stored["valid_until"] == (T0 + timedelta(hours=2)).isoformat()
    assert [o["client_order_id"] for o in stores.orders.list_orders()] == [
        order.client_order_id.value
    ]


def test_live_venue_oco_legs_are_recorded_with_their_list_id_in_the_one_schema(
    stores: Stores,
) -> None:
    # Given the two legs of a protective OCO order list (a take-profit and a stop)
    key = protective_key("entry-coid", Decimal("0.5"), 0)
    ids = protective_list_ids(BTC, key)
    legs = [
        Order(
            client_order_id=coid,
            symbol=BTC,
            side=Side.SELL,
            intent=Intent.PROTECT,
            strategy="protective-stop",
            signal_bar_ms=1_709_251_200_000,
            quantity=Quantity.of("0.5"),
            reference_price=Price.of(price),
            created_at=T0,
            mode="testnet",
            order_type=kind,
            position_key=key,
            list_client_order_id=ids.list_id,
        )
        for coid, kind, price in (
            (ids.below, OrderType.STOP_LOSS_LIMIT, "40000"),
            (ids.above, OrderType.LIMIT_MAKER, "48000"),
        )
    ]
    # When each is recorded (twice: a retry)
    assert all(stores.orders.record(leg) is True for leg in legs)
    assert all(stores.orders.record(leg) is False for leg in legs)
    # Then each maps back to its aggregate, both carrying the list's client ID
    for leg in legs:
        stored = stores.orders.get(leg.client_order_id.value)
        assert stored is not None and order_from_record(stored) == leg
        assert stored["list_client_order_id"] == ids.list_id.value
    # and only a protective order may be a leg of a list
    with pytest.raises(DomainError):
        replace(_order(), list_client_order_id=ids.list_id)


def test_status_moves_are_guarded_and_follow_the_transition_table(stores: Stores) -> None:
    order = _order()
    stores.orders.record(order)
    coid = order.client_order_id.value
    # When the order is moved from a status it is not in, nothing is written
    accept = StatusChange(OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, T0)
    assert not stores.orders.update_status(coid, accept)
    # and an illegal move cannot even be built
    with pytest.raises(IllegalTransitionError):
        order.move(OrderStatus.FILLED, at=T0)
    # and a missing order is not created by a move
    send = order.move(OrderStatus.SUBMITTED, at=T0, facts=OrderFacts(submitted_at=T0))
    assert not stores.orders.update_status("f" * 32, send)
    assert stores.orders.get("f" * 32) is None
    # Then a legal move from the stored status is written once, with its history
    assert stores.orders.update_status(coid, send)
    assert not stores.orders.update_status(coid, send)
    stored = stores.orders.get(coid)
    assert stored["status"] == OrderStatus.SUBMITTED.value
    assert stored["submitted_at"] == T0.isoformat()
    assert [h["status"] for h in stored["history"]] == ["NEW", "SUBMITTED"]


def test_the_open_index_keeps_a_filled_order_until_it_is_settled(stores: Stores) -> None:
    buy, other = _order(), _order(bar_ms=1_709_337_600_000)
    stores.orders.record(buy)
    stores.orders.record(other)
    b, o = buy.client_order_id.value, other.client_order_id.value
    assert {x["client_order_id"] for x in stores.orders.list_open()} == {b, o}
    assert {x["client_order_id"] for x in stores.orders.list_open("ETH/USDT")} == set()
    # When one is cancelled unsent and the other fills
    assert stores.orders.update_status(o, other.move(OrderStatus.CANCELED, at=T0))
    stores.orders.update_status(b, buy.move(OrderStatus.SUBMITTED, at=T0))
    assert not stores.orders.settle(b)  # not terminal: stays indexed
    fill = OrderFacts(filled=Decimal("0.1"), average_price=Price.of("43000"))
    stores.orders.update_status(
        b, StatusChange(OrderStatus.SUBMITTED, OrderStatus.FILLED, T0, fill)
    )
    # Then the cancelled one left the index, the filled one stays until its fill is settled
    assert [x["client_order_id"] for x in stores.orders.list_open(BTC.value)] == [b]
    assert stores.orders.settle(b)
    assert stores.orders.list_open() == []
    # and a note is written only while the status is the expected one
    schedule = OrderFacts(absent_lookups=1, next_lookup_at=T0 + timedelta(minutes=5))
    assert not stores.orders.note(b, OrderStatus.SUBMITTED, schedule)
    assert stores.orders.note(b, OrderStatus.FILLED, schedule)
    noted = stores.orders.get(b)
    assert (noted["absent_lookups"], noted["next_lookup_at"]) == (
        Decimal(1),
        (T0 + timedelta(minutes=5)).isoformat(),
    )
    with pytest.raises(ValueError, match="at least one fact"):
        stores.orders.note(b, OrderStatus.FILLED, OrderFacts())


def test_a_terminal_move_without_a_fill_settles_unless_told_otherwise(
    stores: Stores,
) -> None:
    # Given two sent orders
    first, second = _order(), _order(bar_ms=1_709_337_600_000)
    for order in (first, second):
        stores.orders.record(order)
        stores.orders.update_status(
            order.client_order_id.value, order.move(OrderStatus.SUBMITTED, at=T0)
        )
    f, s = first.client_order_id.value, second.client_order_id.value
    # When one expires with a zero fill (the default: settled) and the other is rejected
    # with settle=False (kept for the cycle)
    expire = StatusChange(
        OrderStatus.SUBMITTED, OrderStatus.EXPIRED, T0, OrderFacts(filled=Decimal(0))
    )
    keep = StatusChange(OrderStatus.SUBMITTED, OrderStatus.REJECTED, T0, settle=False)
    assert stores.orders.update_status(f, expire)
    assert stores.orders.update_status(s, keep)
    # Then only the second is still indexed
    assert [x["client_order_id"] for x in stores.orders.list_open()] == [s]


def test_typed_moves_write_the_attributes_the_orders_table_has_always_held(
    stores: Stores,
) -> None:
    """Records written before the moves were typed must read back as written now: the same
    attribute names and representation (numbers as Decimal, times as ISO strings)."""
    # Given a recorded order
    order = _order()
    assert stores.orders.record(order) is True
    created = stores.orders.get(order.client_order_id.value)
    assert created is not None
    coid = order.client_order_id.value
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    # When it is sent (resized, with a stop), noted as not yet shown, then filled by the venue
    sent = OrderFacts(
        quantity=Quantity.of("0.05"),
        submitted_at=t1,
        mode="testnet",
        stop_price=Price.of("40000"),
        limit_price=Price.of("39960"),
    )
    assert stores.orders.update_status(coid, order.move(OrderStatus.SUBMITTED, at=t1, facts=sent))
    schedule = OrderFacts(absent_lookups=2, next_lookup_at=t3)
    assert stores.orders.note(coid, OrderStatus.SUBMITTED, schedule)
    venue = OrderFacts(
        exchange_order_id="8912",
        filled=Decimal("0.05"),
        average_price=Price.of("43211.5"),
        fee=Decimal("0.0432115"),
        filled_at=t2,
    )
    filled = StatusChange(OrderStatus.SUBMITTED, OrderStatus.FILLED, t2, venue)
    assert stores.orders.update_status(coid, filled)
    # Then the record holds exactly what the untyped writes stored for the same order
    assert stores.orders.get(coid) == {
        **{k: v for k, v in created.items() if v is not None},
        "quantity": Decimal("0.05"),
        "submitted_at": t1.isoformat(),
        "mode": "testnet",
        "stop_price": Decimal("40000"),
        "limit_price": Decimal("39960"),
        "absent_lookups": Decimal(2),
        "next_lookup_at": t3.isoformat(),
        "exchange_order_id": "8912",
        "filled": Decimal("0.05"),
        "average_price": Decimal("43211.5"),
        "fee": Decimal("0.0432115"),
        "filled_at": t2.isoformat(),
        "status": "FILLED",
        "updated_at": t2.isoformat(),
        "history": [
            {"status": "NEW", "at": T0.isoformat()},
            {"status": "SUBMITTED", "at": t1.isoformat()},
            {"status": "FILLED", "at": t2.isoformat()},
        ],
    }
    # and a cancel's reasons land under their own names
    other = _order(bar_ms=1_709_337_600_000)
    stores.orders.record(other)
    why = OrderFacts(cancel_reason="kill-switch on", canceled_by="ops")
    assert stores.orders.update_status(
        other.client_order_id.value, other.move(OrderStatus.CANCELED, at=t3, facts=why)
    )
    cancelled = stores.orders.get(other.client_order_id.value)
    assert (cancelled["cancel_reason"], cancelled["canceled_by"], cancelled["updated_at"]) == (
        "kill-switch on",
        "ops",
        t3.isoformat(),
    )


def test_recorded_orders_read_back_as_the_aggregate_with_its_facts(stores: Stores) -> None:
    """The services read orders as :class:`RecordedOrder` values, never as records: what the
    ledger hands back after each write is what :meth:`RecordedOrder.after` / ``noted`` say the
    write did (the execution service keeps its own writes in its book that way)."""
    # Given a recorded order, as the services see it
    order = _order()
    stores.orders.record(order)
    coid = order.client_order_id.value
    recorded = stores.orders.find(coid)
    assert recorded == RecordedOrder(order)
    assert stores.orders.open_orders() == [recorded]
    assert stores.orders.open_orders(ETH.value) == []
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    # When it is sent resized, noted as not shown yet, then filled
    sent = order.move(
        OrderStatus.SUBMITTED,
        at=t1,
        facts=OrderFacts(quantity=Quantity.of("0.05"), submitted_at=t1, mode="testnet",
                         stop_price=Price.of("40000"), limit_price=Price.of("39960")),
    )  # fmt: skip
    assert stores.orders.update_status(coid, sent)
    assert stores.orders.find(coid) == recorded.after(sent)
    schedule = OrderFacts(absent_lookups=2, next_lookup_at=t3)
    assert stores.orders.note(coid, OrderStatus.SUBMITTED, schedule)
    assert stores.orders.find(coid) == recorded.after(sent).noted(schedule)
    venue = OrderFacts(exchange_order_id="8912", filled=Decimal("0.05"),
                       average_price=Price.of("43211.5"), fee=Decimal("0"), filled_at=t2)  # fmt: skip
    filled = StatusChange(OrderStatus.SUBMITTED, OrderStatus.FILLED, t2, venue)
    assert stores.orders.update_status(coid, filled)
    # Then each read is the aggregate with its facts: the size sent and the venue on the order
    after = stores.orders.find(coid)
    assert after == recorded.after(sent).noted(schedule).after(filled)
    assert after is not None
    assert (after.quantity, after.order.mode, after.status) == (
        Decimal("0.05"), "testnet", OrderStatus.FILLED,
    )  # fmt: skip
    assert (after.filled, after.unfilled, after.sent_at) == (Decimal("0.05"), 0, t1)
    assert after.facts.quantity is None and after.facts.mode is None
    # and it stays in the open index, filled, until its fill is settled
    assert [o.key for o in stores.orders.open_orders(BTC.value)] == [coid]
    assert stores.orders.settle(coid)
    assert stores.orders.open_orders() == []
    assert stores.orders.find("f" * 32) is None


def test_an_order_recorded_without_a_reference_price_is_valued_at_its_notional(
    stores: Stores,
) -> None:
    # Given a buy recorded (by an early scan) with its notional and no reference price
    stores.orders.put_new(
        {"client_order_id": "e" * 32, "symbol": BTC.value, "side": "buy", "intent": "open",
         "strategy": "s", "signal_bar_ms": 1, "status": "NEW", "quantity": Decimal(20),
         "notional": Decimal(824), "created_at": T0.isoformat()}
    )  # fmt: skip
    # When it is read as the services see it
    recorded = stores.orders.find("e" * 32)
    # Then its reference price is its notional per unit, and it counts as that exposure
    assert recorded is not None
    assert recorded.order.reference_price == Price.of("41.2")
    assert book_exposure({}, stores.orders.open_orders()) == {BTC.value: Decimal("824.0")}


def test_positions_are_versioned_and_map_to_the_aggregate(stores: Stores) -> None:
    # Given an empty book
    assert stores.positions.load(BTC.value) == (None, None)
    buy = Fill(ClientOrderId("a" * 32), Side.BUY, Decimal("2"), Price.of("100"), T0)
    opened = Position(BTC).apply(buy).position
    # When a position is saved new, then again as new (a concurrent writer)
    assert stores.positions.save(opened, None, T0) is True
    assert (stores.positions.get(BTC.value) or {}).get("version") == 1
    assert stores.positions.save(opened, None, T0) is False
    # Then it loads back as the same aggregate at version 1
    loaded, version = stores.positions.load(BTC.value)
    assert (loaded, version) == (opened, 1)
    # and a sell applied on it is written only against that version
    sell = Fill(ClientOrderId("b" * 32), Side.SELL, Decimal("0.5"), Price.of("120"), T0)
    after = loaded.apply(sell).position
    assert stores.positions.save(after, 0, T0) is False
    assert stores.positions.save(after, 1, T0) is True
    record = stores.positions.get(BTC.value)
    assert (record["quantity"], record["cost"], record["realized_pnl"]) == (
        Decimal("1.5"),
        Decimal("150"),
        Decimal("10"),
    )
    assert record["average_price"] == Decimal("100")
    assert record["opened_by"] == "a" * 32
    assert set(stores.positions.get_all()) == {BTC.value}
    assert stores.positions.load_all() == {BTC.value: after}


def test_a_damaged_opening_time_never_blocks_the_fills_of_its_position(stores: Stores) -> None:
    # Given a position record whose opening time cannot be read
    stores.positions.upsert(
        {"symbol": BTC.value, "quantity": Decimal("1"), "cost": Decimal("100"),
         "opened_by": "a" * 32, "opened_at": "last tuesday"}, None
    )  # fmt: skip
    # When it is loaded and a sell fill applied
    loaded, version = stores.positions.load(BTC.value)
    assert loaded is not None and loaded.opened_at is None
    sell = Fill(ClientOrderId("b" * 32), Side.SELL, Decimal("0.5"), Price.of("150"), T0)
    # Then the fill is applied and saved (the time stays unknown, reported so by the exit rule)
    assert stores.positions.save(loaded.apply(sell).position, version, T0) is True
    assert stores.positions.get(BTC.value)["quantity"] == Decimal("0.5")


def _damaged(coid: str, symbol: str, **changes: Any) -> dict[str, Any]:
    """An order record as an earlier version or a hand edit may have left it."""
    record = {
        "client_order_id": coid, "symbol": symbol, "side": "buy", "intent": "open",
        "order_type": "market", "quantity": Decimal("1"), "reference_price": Decimal("100"),
        "strategy": "old", "signal_bar_ms": 1_709_251_200_000, "status": "SUBMITTED",
        "created_at": T0.isoformat(),
    }  # fmt: skip
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


@pytest.mark.parametrize(
    "damage",
    [
        {"strategy": None},  # written before the attribute existed
        {"signal_bar_ms": None},
        {"average_price": Decimal("0"), "filled": Decimal("0")},
        {"fee": Decimal("-0.1")},
        {"created_at": "2024-03-01T12:00:00"},  # not UTC-aware
        {"submitted_at": "2024-03-01T12:00:00"},
        {"reference_price": None},  # and no notional either
        {"quantity": Decimal("0")},
        # a fill that cannot be true: never valued (1E+100 on 1 would drive the equity)
        {"filled": Decimal("1E+100"), "average_price": Decimal("100")},
        {"filled": Decimal("1.000000001"), "average_price": Decimal("100")},
        {"filled": Decimal("-1")},
        {"filled": Decimal("1"), "average_price": "NaN"},
        {"filled": Decimal("1"), "average_price": "Infinity"},
        {"filled": Decimal("1"), "average_price": Decimal("-5")},
        {"filled": Decimal("1"), "average_price": Decimal("100"), "fee": "NaN"},
        {"filled": Decimal("1"), "average_price": Decimal("100"), "fee": "-Infinity"},
    ],
)
def test_a_damaged_order_record_is_reported_with_its_coin_and_never_hides_the_others(
    stores: Stores, damage: dict[str, Any]
) -> None:
    # Given a sound order on BTC and a damaged one on ETH in the open-orders index
    sound = _order()
    stores.orders.record(sound)
    assert stores.orders.put_new(_damaged("e" * 32, ETH.value, **damage))
    # When the book reads the open orders
    read = stores.orders.open_orders()
    # Then the sound order is read, the damaged one is reported with its coin and a reason
    assert [o.key for o in read] == [sound.client_order_id.value]
    assert [(u.key, u.symbol) for u in read.unreadable] == [("e" * 32, ETH.value)]
    assert read.unreadable[0].reason
    assert set(blocked_symbols(read)) == {ETH.value}
    # and the damaged record itself is kept as it was (nothing is lost)
    assert stores.orders.get("e" * 32) is not None
    # and a read of the sound coin alone is not affected
    assert stores.orders.open_orders(BTC.value).unreadable == ()


def test_an_order_filled_exactly_to_its_quantity_is_read(stores: Stores) -> None:
    # Given an order record whose cumulative fill is the whole size sent (the exact bound)
    assert stores.orders.put_new(
        _damaged("f" * 32, BTC.value, filled=Decimal("1"), average_price=Decimal("100"),
                 fee=Decimal("0.1"), status="PARTIALLY_FILLED")
    )  # fmt: skip
    # When the book reads it
    read = stores.orders.open_orders()
    # Then it is read with its fill, nothing reported
    assert [(o.key, o.filled, o.unfilled) for o in read] == [("f" * 32, Decimal(1), Decimal(0))]
    assert read.unreadable == ()
    found = stores.orders.find("f" * 32)
    assert found is not None and found.filled == Decimal(1)


def test_every_order_is_read_as_the_aggregate_and_a_damaged_one_is_named(
    stores: Stores,
) -> None:
    # Given an open order, a filled one (out of the open-orders index) and a damaged record
    resting = _order()
    filled = _order(bar_ms=1_709_254_800_000)
    stores.orders.record(resting)
    stores.orders.record(filled)
    fill = OrderFacts(filled=Decimal("0.123456789"), average_price=Price.of("43000"),
                      fee=Decimal("0.05"), filled_at=T0 + timedelta(minutes=5))  # fmt: skip
    for change in (
        filled.move(OrderStatus.SUBMITTED, at=T0),
        filled.moved_to(OrderStatus.SUBMITTED).move(OrderStatus.FILLED, at=T0, facts=fill),
    ):
        assert stores.orders.update_status(filled.client_order_id.value, change)
    assert stores.orders.settle(filled.client_order_id.value)
    assert stores.orders.put_new(_damaged("e" * 32, ETH.value, fee=Decimal("-0.1")))
    # When the whole ledger is read
    every = stores.orders.all_orders()
    # Then the open and the terminal order come back as aggregates with their facts
    by_key = {o.key: o for o in every}
    assert set(by_key) == {resting.client_order_id.value, filled.client_order_id.value}
    assert by_key[resting.client_order_id.value].status is OrderStatus.NEW
    done = by_key[filled.client_order_id.value]
    assert done.status is OrderStatus.FILLED
    assert (done.filled, done.facts.average_price, done.facts.fee) == (
        Decimal("0.123456789"), Price.of("43000"), Decimal("0.05"),
    )  # fmt: skip
    assert done.facts.filled_at == T0 + timedelta(minutes=5)
    # and the damaged record is left out and named with its coin and why
    assert [(u.key, u.symbol) for u in every.unreadable] == [("e" * 32, ETH.value)]
    assert "fee" in every.unreadable[0].reason
    # while the open-orders index holds the open order only (the filled one was settled)
    assert [o.key for o in stores.orders.open_orders(BTC.value)] == [resting.client_order_id.value]


def test_a_damaged_position_record_is_reported_never_read_as_holding_nothing(
    stores: Stores,
) -> None:
    # Given a sound BTC position and an ETH position recorded below zero
    fill = Fill(ClientOrderId("a" * 32), Side.BUY, Decimal("1"), Price.of("100"), T0)
    assert stores.positions.save(Position(BTC).apply(fill).position, None, T0) is True
    stores.positions.upsert(
        {"symbol": ETH.value, "quantity": Decimal("-1"), "cost": Decimal("0")}, None
    )
    # When every position is read
    book = stores.positions.load_all()
    # Then BTC is read, ETH is reported unreadable (its coin blocked), not absent
    assert set(book) == {BTC.value}
    assert [u.symbol for u in book.unreadable] == [ETH.value]
    assert "below zero" in book.unreadable[0].reason
    assert set(blocked_symbols(book)) == {ETH.value}


@pytest.mark.parametrize(
    "damage",
    [
        {"cost": "NaN"},  # a hand edit or a string where a number belongs
        {"cost": "Infinity"},
        {"quantity": "Infinity"},
        {"realized_pnl": "-Infinity"},
        {"oversold": "NaN"},
        {"applied_fills": {"a" * 32: "NaN"}},
        {"quantity": None},  # every version wrote the holding: without it, it is unknown
        {"cost": None},  # held without a cost basis: its exposure is unknown, never zero
    ],
)
def test_a_position_record_with_an_unknown_or_non_finite_amount_is_reported_not_read(
    stores: Stores, damage: dict[str, Any]
) -> None:
    # Given an ETH position record whose holding or money cannot be read as a finite amount
    record = {"symbol": ETH.value, "quantity": Decimal("1"), "cost": Decimal("100"), **damage}
    stores.positions.upsert({k: v for k, v in record.items() if v is not None}, None)
    # When every position is read
    book = stores.positions.load_all()
    # Then it is left out and named, its coin blocked (never valued as NaN, infinite or zero)
    assert set(book) == set()
    assert [u.symbol for u in book.unreadable] == [ETH.value]
    assert set(blocked_symbols(book)) == {ETH.value}


@pytest.mark.parametrize("symbol", ["ETH USDT", "ETH/USDT/X", "", None])
def test_an_order_record_whose_coin_cannot_be_read_blocks_every_coin(
    stores: Stores, symbol: str | None
) -> None:
    # Given an open order record whose symbol is not a symbol (a hand edit) or is missing
    record = _damaged("e" * 32, ETH.value)
    if symbol is None:
        del record["symbol"]
    else:
        record["symbol"] = symbol
    assert stores.orders.put_new(record)
    # When the book reads the open orders
    read = stores.orders.open_orders()
    # Then it is named under every coin (its coin is unknown), not under the unreadable text
    assert [(u.key, u.symbol) for u in read.unreadable] == [("e" * 32, ANY_SYMBOL)]
    assert set(blocked_symbols(read)) == {ANY_SYMBOL}


def test_an_order_filled_in_parts_is_valued_across_loads_and_an_old_record_stays_readable(
    stores: Stores,
) -> None:
    # Given a buy reported 1 filled at 100, saved
    first = Fill(ClientOrderId("a" * 32), Side.BUY, Decimal("1"), Price.of("100"), T0)
    assert stores.positions.save(Position(BTC).apply(first).position, None, T0) is True
    # When it is loaded and the order reported 2 filled at an average of 110
    loaded, version = stores.positions.load(BTC.value)
    assert loaded is not None
    second = Fill(ClientOrderId("a" * 32), Side.BUY, Decimal("2"), Price.of("110"), T0)
    assert stores.positions.save(loaded.apply(second).position, version, T0) is True
    # Then the second unit is booked at the 120 it traded for
    assert stores.positions.get(BTC.value)["cost"] == Decimal("220")
    # and a record written without the applied values still loads and applies
    stores.positions.upsert(
        {"symbol": ETH.value, "quantity": Decimal("1"), "cost": Decimal("100"),
         "applied_fills": {"c" * 32: Decimal("1")}}, None
    )  # fmt: skip
    old, old_version = stores.positions.load(ETH.value)
    assert old is not None and old.applied_costs == {}
    more = Fill(ClientOrderId("c" * 32), Side.BUY, Decimal("2"), Price.of("110"), T0)
    assert stores.positions.save(old.apply(more).position, old_version, T0) is True
    assert stores.positions.get(ETH.value)["cost"] == Decimal("210")


# ------------------------------------------------------------------ state, signals, audit, switch


def test_all_orders_views_read_every_order_with_its_history_and_last_write(
    stores: Stores,
) -> None:
    """The reports (the API's positions, the dashboard's orders) read the whole ledger as
    aggregates: terminal orders too, each with the status history and last write the ledger
    logged, and a position with when it was last written."""
    # Given an order filled (NEW -> SUBMITTED -> FILLED), one still NEW, and a damaged one
    filled, waiting = _order(), _order(bar_ms=1_709_337_600_000)
    stores.orders.record(filled)
    stores.orders.record(waiting)
    assert stores.orders.put_new(_damaged("e" * 32, ETH.value, strategy=None))
    coid = filled.client_order_id.value
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    assert stores.orders.update_status(coid, filled.move(OrderStatus.SUBMITTED, at=t1))
    venue = OrderFacts(filled=Decimal("0.123456789"), average_price=Price.of("43211.5"),
                       fee=Decimal("0.5"), filled_at=t2)  # fmt: skip
    assert stores.orders.update_status(
        coid, StatusChange(OrderStatus.SUBMITTED, OrderStatus.FILLED, t2, venue)
    )
    # When the whole ledger is read
    ledger = stores.orders.all_orders()
    # Then both sound orders are read (the filled one too), the damaged one named
    by_key = {o.key: o for o in ledger}
    assert set(by_key) == {coid, waiting.client_order_id.value}
    assert [(u.key, u.symbol) for u in ledger.unreadable] == [("e" * 32, ETH.value)]
    # and each carries the ledger's log: every status entered with its time, the last write
    done = by_key[coid]
    assert done.history == (
        StatusStep("NEW", T0), StatusStep("SUBMITTED", t1), StatusStep("FILLED", t2)
    )  # fmt: skip
    assert done.updated_at == t2
    assert (done.facts.fee, done.facts.filled_at) == (Decimal("0.5"), t2)
    fresh = by_key[waiting.client_order_id.value]
    assert (fresh.history, fresh.updated_at) == ((StatusStep("NEW", T0),), None)
    # and the book's own view of a move logs it the same way
    assert RecordedOrder(filled).after(filled.move(OrderStatus.SUBMITTED, at=t1)).history == (
        StatusStep("SUBMITTED", t1),
    )
    # and a position reads back with when it was written
    buy = Fill(ClientOrderId("a" * 32), Side.BUY, Decimal("1"), Price.of("100"), T0)
    assert stores.positions.save(Position(BTC).apply(buy).position, None, t2) is True
    assert stores.positions.load_all()[BTC.value].updated_at == t2
    assert stores.positions.load(BTC.value)[0].updated_at == t2


def test_a_logged_time_that_cannot_be_read_never_makes_its_record_unreadable(
    stores: Stores,
) -> None:
    # Given an order whose history and last write carry times that cannot be read
    assert stores.orders.put_new(_damaged("e" * 32, ETH.value, updated_at="yesterday"))
    # When it is read
    (read,) = stores.orders.all_orders()
    # Then it is read, the unreadable times unknown (None), never a reason to leave it out
    assert read.updated_at is None
    assert read.history == (StatusStep("SUBMITTED", T0),)


@dataclass
class Records:
    state: Any
    signals: Any
    audit: Any
    switch: Any
    clock: FixedClock


@pytest.fixture(params=["aws", "in-memory"])
def records(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Records]:
    clock = FixedClock(T0)
    if request.param == "in-memory":
        yield Records(
            InMemoryStateStore(),
            InMemorySignalStore(),
            InMemoryAuditTrail(),
            InMemoryKillSwitch(T0, clock),
            clock,
        )
        return
    with moto_stack(monkeypatch, now=T0) as clients:
        res = clients.resources
        state = DynamoStateStore(res.state_table, clients.dynamodb)
        yield Records(
            state,
            DynamoSignalStore(DynamoStateStore(res.state_table, clients.dynamodb)),
            DynamoAuditTrail(res.state_table, clients.dynamodb),
            SsmKillSwitch(res.kill_switch_param, clients.ssm, clock, cache_seconds=0),
            clock,
        )


def test_state_records_come_back_as_dynamodb_stores_them(records: Records) -> None:
    state = records.state
    assert state.get("ingest#watermark", "binance|1h|BTC/USDT") is None
    # When a record with a Decimal, a time, a nested map and a None is written
    state.put(
        "ingest#watermark",
        "binance|1h|BTC/USDT",
        {"last_ts": 1_709_251_200_000, "rate": Decimal("0.125"), "at": T0, "note": None,
         "by": {"rows": 24, "tags": ["a", "b"]}},
    )  # fmt: skip
    # Then it reads back with numbers as Decimal, the time as ISO text and the None dropped
    assert state.get("ingest#watermark", "binance|1h|BTC/USDT") == {
        "last_ts": Decimal("1709251200000"),
        "rate": Decimal("0.125"),
        "at": T0.isoformat(),
        "by": {"rows": Decimal("24"), "tags": ["a", "b"]},
    }
    # and an item that carries its own key is refused
    with pytest.raises(ValueError, match="pk/sk"):
        state.put("p", "s", {"pk": "other"})


def test_conditional_writes_write_only_when_their_condition_holds(records: Records) -> None:
    state = records.state
    # put_new: once
    assert state.put_new("paper-venue", "o1", {"status": "NEW"})
    assert not state.put_new("paper-venue", "o1", {"status": "FILLED"})
    assert state.get("paper-venue", "o1") == {"status": "NEW"}
    # put_if: only while the stored field is the expected one (and never on a missing item)
    assert not state.put_if("paper-venue", "o1", {"status": "FILLED"}, "status", "ACCEPTED")
    assert not state.put_if("paper-venue", "o2", {"status": "FILLED"}, "status", "NEW")
    assert state.put_if("paper-venue", "o1", {"status": "FILLED"}, "status", "NEW")
    assert state.get("paper-venue", "o1") == {"status": "FILLED"}
    assert state.get("paper-venue", "o2") is None
    # put_versioned: 0 means absent, each write moves the version by one, a stale one loses
    assert state.put_versioned("risk", "current", {"level": "NORMAL"}, 0)
    assert not state.put_versioned("risk", "current", {"level": "SHUTDOWN"}, 0)
    assert state.put_versioned("risk", "current", {"level": "DEFENSIVE"}, 1)
    assert state.get("risk", "current") == {"level": "DEFENSIVE", "version": Decimal("2")}
    with pytest.raises(ValueError, match="expected_version"):
        state.put_versioned("risk", "current", {"level": "NORMAL"}, -1)


def test_a_query_lists_one_partition_in_key_order_with_each_sort_key(records: Records) -> None:
    state = records.state
    for sk in ("transition#2024-03-02", "current", "transition#2024-03-01"):
        state.put("risk", sk, {"n": 1})
    state.put("other", "current", {"n": 2})
    assert [i["sk"] for i in state.query("risk")] == [
        "current",
        "transition#2024-03-01",
        "transition#2024-03-02",
    ]
    assert all("pk" not in i for i in state.query("risk"))
    between = state.query("risk", sk_between=("transition#2024-03-01", "transition#2024-03-01"))
    assert between == [{"n": Decimal("1"), "sk": "transition#2024-03-01"}]
    assert state.query("nobody") == []


def test_signals_keep_each_report_and_the_newest_as_latest(records: Records) -> None:
    signals = records.signals
    assert signals.latest() is None
    report = {"asof": "2024-03-02", "rows": [{"symbol": "BTC/USDT", "p": 0.1 + 0.2}], "n": 1}
    older = {"asof": "2024-03-01", "rows": [], "n": 0}
    # When a report is saved, then an older one (a replay) after it
    signals.save("2024-03-02", report)
    signals.save("2024-03-01", older)
    # Then the newest as-of stays the latest, floats round-trip exactly, each date is kept
    assert signals.latest() == report
    assert signals.latest()["rows"][0]["p"] == 0.1 + 0.2
    assert signals.at("2024-03-01") == older
    assert signals.at("2024-02-29") is None
    assert signals.between("2024-02-01", "2024-03-01") == [older]
    assert signals.between("2024-03-01", "2024-03-02") == [older, report]


def test_the_audit_trail_is_append_only_sanitized_and_newest_first(records: Records) -> None:
    audit = records.audit
    first = audit.record(
        actor="iam:alice", action="killswitch.on", at=T0, request_id="r-1",
        correlation_id="c-1", details={"reason": "drill", "api_key": "s3cr3t", "n": 2},
    )  # fmt: skip
    audit.record(actor="iam:bob", action="killswitch.off", at=T0 + timedelta(minutes=1),
                 request_id="r-2")  # fmt: skip
    # A second entry with the same time and request id is refused, nothing is overwritten
    with pytest.raises(DuplicateAuditEntryError):
        audit.record(actor="iam:mallory", action="killswitch.off", at=T0, request_id="r-1")
    # and an entry outside its bounds is refused before it is written
    with pytest.raises(ValueError):
        audit.record(actor="", action="killswitch.on", at=T0, request_id="r-3")
    recent = audit.recent()
    assert [(e.actor, e.request_id) for e in recent] == [("iam:bob", "r-2"), ("iam:alice", "r-1")]
    assert recent[1].sort_key == first.sort_key == f"{T0.isoformat()}#r-1"
    assert recent[1].details["reason"] == "drill"
    assert recent[1].details["api_key"] != "s3cr3t"
    assert recent[1].details["n"] == Decimal("2")
    assert recent[1].correlation_id == "c-1"
    assert [e.request_id for e in audit.recent(limit=1)] == ["r-2"]
    with pytest.raises(ValueError, match="limit"):
        audit.recent(limit=0)


def test_the_audit_fake_only_stores_items_the_adapter_s_code_shapes() -> None:
    # The in-memory trail and the DynamoDB one share the code that shapes, encodes and reads
    # back an entry: neither may answer record/recent with its own
    for trail in (InMemoryAuditTrail, DynamoAuditTrail):
        assert issubclass(trail, AppendOnlyAuditTrail)
        assert {"record", "recent"}.isdisjoint(vars(trail))


def test_the_kill_switch_is_off_until_set_and_refuses_unprintable_text(records: Records) -> None:
    switch = records.switch
    assert (switch.is_on(), switch.status().known) == (False, True)
    # When an operator turns it on, an hour later
    records.clock.advance(timedelta(hours=1))
    written = switch.set(True, "  exchange incident ", "alice")
    # Then it reads back on, with the stripped reason, the actor and the write's time
    status = switch.status()
    assert switch.is_on() and status.on and status.known
    assert (status.reason, status.actor, status.at) == ("exchange incident", "alice",
                                                        T0 + timedelta(hours=1))  # fmt: skip
    assert (written.reason, written.at) == (status.reason, status.at)
    # and a reason with a control character is refused, leaving the switch as it was
    with pytest.raises(ValueError, match="control"):
        switch.set(False, "resume\x1b[2J", "mallory")
    assert switch.status().on and switch.status().actor == "alice"
    # while a writer re-affirming a value may keep its time
    kept = switch.set(True, "exchange incident", "alice", at=T0)
    assert switch.status().at == kept.at == T0


DYNAMODB_ITEM_LIMIT = 400 * 1024


def _value_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value ("Item sizes and formats"): strings their
    UTF-8 length, numbers 1 byte per two significant digits plus 1, lists and maps 3 bytes plus
    1 per element (and each map key's length)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = str(raw).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in raw.items())
    raise AssertionError(f"unexpected attribute type {kind}")


def _item_size(position: Position) -> int:
    item = to_item({**position_record(position, T0), "version": 12345})
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def test_a_position_of_thousands_of_orders_stays_well_under_the_item_limit(
    stores: Stores,
) -> None:
    # Given 6000 orders in one coin, one every 2 hours (500 days), with venue-like quantities
    pos = Position(BTC)
    for n in range(6000):
        side = Side.BUY if n % 2 == 0 else Side.SELL
        at = T0 + n * timedelta(hours=2)
        fill = Fill(
            ClientOrderId(f"{n:032x}"), side, Decimal("0.00123457"), Price.of("43210.12"), at
        )
        pos = pos.apply(fill).position
    # Then its item is well under DynamoDB's 400 KB (every order kept would not fit)
    assert _item_size(pos) < DYNAMODB_ITEM_LIMIT // 4
    unpruned = replace(
        pos,
        applied_fills={f"{n:032x}": Decimal("0.00123457") for n in range(6000)},
        applied_costs={f"{n:032x}": Decimal("53.3466698") for n in range(6000)},
        applied_times={},
        pruned_fills=(),
    )
    assert _item_size(unpruned) > DYNAMODB_ITEM_LIMIT
    # When it is saved and loaded again
    assert stores.positions.save(pos, None, T0) is True
    loaded, _ = stores.positions.load(BTC.value)
    # Then it is the same position, and a replayed fill of a pruned order changes nothing
    assert loaded == pos
    for n in (0, 5000):
        at = T0 + n * timedelta(hours=2)
        fill = Fill(
            ClientOrderId(f"{n:032x}"), Side.BUY, Decimal("0.00123457"), Price.of("43210.12"), at
        )
        assert not loaded.apply(fill).changed
