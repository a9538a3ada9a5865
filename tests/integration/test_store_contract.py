"""One contract for the order and position ports, run against the DynamoDB adapters on moto and
against the in-memory fakes (``tests/fakes.py``): the fakes the logic tests use behave as the
adapters the Lambdas use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    order_from_record,
)
from cryptosmarttrader.domain.aggregates import Fill, Order, Position
from cryptosmarttrader.domain.orders import (
    IllegalTransitionError,
    Intent,
    OrderIntent,
    OrderStatus,
)
from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from tests.fakes import InMemoryOrderLedger, InMemoryPositionLedger

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BTC = Symbol("BTC/USDT")


@dataclass
class Stores:
    orders: Any
    positions: Any


@pytest.fixture(params=["dynamodb", "in-memory"])
def stores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stores]:
    if request.param == "in-memory":
        yield Stores(InMemoryOrderLedger(), InMemoryPositionLedger())
        return
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients, now=T0)
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
    assert first is not None and second is None
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


def test_status_moves_are_guarded_and_follow_the_transition_table(stores: Stores) -> None:
    order = _order()
    stores.orders.record(order)
    coid = order.client_order_id.value
    # When the order is moved from a status it is not in, nothing is written
    assert not stores.orders.update_status(coid, OrderStatus.SUBMITTED, OrderStatus.ACCEPTED)
    # and an illegal move raises before any write
    with pytest.raises(IllegalTransitionError):
        stores.orders.update_status(coid, OrderStatus.NEW, OrderStatus.FILLED)
    # and a missing order is not created by a move
    assert not stores.orders.update_status("f" * 32, OrderStatus.NEW, OrderStatus.SUBMITTED)
    assert stores.orders.get("f" * 32) is None
    # Then a legal move from the stored status is written once, with its history
    assert stores.orders.update_status(
        coid, OrderStatus.NEW, OrderStatus.SUBMITTED, at=T0, fields={"submitted_at": T0}
    )
    assert not stores.orders.update_status(coid, OrderStatus.NEW, OrderStatus.SUBMITTED)
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
    assert stores.orders.update_status(o, OrderStatus.NEW, OrderStatus.CANCELED)
    stores.orders.update_status(b, OrderStatus.NEW, OrderStatus.SUBMITTED)
    assert not stores.orders.settle(b)  # not terminal: stays indexed
    stores.orders.update_status(
        b, OrderStatus.SUBMITTED, OrderStatus.FILLED, fields={"filled": Decimal("0.1")}
    )
    # Then the cancelled one left the index, the filled one stays until its fill is settled
    assert [x["client_order_id"] for x in stores.orders.list_open(BTC.value)] == [b]
    assert stores.orders.settle(b)
    assert stores.orders.list_open() == []
    # and a note is written only while the status is the expected one
    assert not stores.orders.note(b, OrderStatus.SUBMITTED, {"lookup_at": T0})
    assert stores.orders.note(b, OrderStatus.FILLED, {"lookup_at": T0})


def test_positions_are_versioned_and_map_to_the_aggregate(stores: Stores) -> None:
    # Given an empty book
    assert stores.positions.load(BTC.value) == (None, None)
    buy = Fill(ClientOrderId("a" * 32), Side.BUY, Decimal("2"), Price.of("100"), T0)
    opened = Position(BTC).apply(buy).position
    # When a position is saved new, then again as new (a concurrent writer)
    saved = stores.positions.save(opened, None, T0)
    assert saved is not None and saved["version"] == 1
    assert stores.positions.save(opened, None, T0) is None
    # Then it loads back as the same aggregate at version 1
    loaded, version = stores.positions.load(BTC.value)
    assert (loaded, version) == (opened, 1)
    # and a sell applied on it is written only against that version
    sell = Fill(ClientOrderId("b" * 32), Side.SELL, Decimal("0.5"), Price.of("120"), T0)
    after = loaded.apply(sell).position
    assert stores.positions.save(after, 0, T0) is None
    assert stores.positions.save(after, 1, T0) is not None
    record = stores.positions.get(BTC.value)
    assert (record["quantity"], record["cost"], record["realized_pnl"]) == (
        Decimal("1.5"),
        Decimal("150"),
        Decimal("10"),
    )
    assert record["average_price"] == Decimal("100")
    assert record["opened_by"] == "a" * 32
    assert set(stores.positions.get_all()) == {BTC.value}


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
    assert stores.positions.save(loaded.apply(sell).position, version, T0) is not None
    assert stores.positions.get(BTC.value)["quantity"] == Decimal("0.5")
