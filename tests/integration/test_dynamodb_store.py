"""DynamoDB adapters on moto: exactly-once inserts, guarded order/position updates."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_items import to_item
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
    StoreError,
    ensure_open_index,
)
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import IllegalTransitionError, OrderStatus
from cryptosmarttrader.settings import AwsResources
from tests.support.aws import moto_stack

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch, now=T0) as clients:
        yield clients


def _order(coid: str = "a" * 32, **extra: object) -> dict[str, object]:
    return {
        "client_order_id": coid,
        "symbol": "BTC/USDT",
        "side": "buy",
        "quantity": Decimal("0.123456789012345678"),
        "price": Decimal("43210.12"),
        "status": OrderStatus.NEW,
        "created_at": T0,
        **extra,
    }


# ------------------------------------------------------------------ exactly-once insert


def test_exactly_one_of_many_concurrent_inserts_of_one_order_wins(aws: AwsClients) -> None:
    # Given 120 threads ready to record the same decision (one client order ID) at once
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    barrier = threading.Barrier(120)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        won = store.put_new(_order("c" * 32))
        with lock:
            results.append(won)

    # When they all insert
    threads = [threading.Thread(target=worker) for _ in range(120)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly one conditional insert succeeded: no claim table is needed beside it
    assert len(results) == 120
    assert results.count(True) == 1
    assert [o["client_order_id"] for o in store.list_orders()] == ["c" * 32]


def test_errors_other_than_condition_failures_propagate_with_table_and_key(
    aws: AwsClients,
) -> None:
    # Given a store pointed at a table that does not exist
    store = DynamoOrderStore("no-such-table", aws.dynamodb)
    # When an order is recorded, Then the error names the table and the key
    with pytest.raises(
        StoreError, match=r"no-such-table.*'client_order_id': 'k9'.*ResourceNotFound"
    ) as info:
        store.put_new(_order("k9"))
    assert isinstance(info.value.__cause__, ClientError)


def test_order_insert_is_exactly_once_and_keeps_decimals_exact(aws: AwsClients) -> None:
    # Given an order with high-precision Decimal quantity
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    # When it is inserted twice (a retry), the second time with another price
    first = store.put_new(_order())
    second = store.put_new(_order(price=Decimal("1")))
    # Then the retry writes nothing and the stored amounts are the exact Decimals
    assert (first, second) == (True, False)
    got = store.get("a" * 32)
    assert got is not None
    assert got["quantity"] == Decimal("0.123456789012345678")
    assert got["price"] == Decimal("43210.12")
    assert got["status"] == "NEW"
    assert got["created_at"] == T0.isoformat()


def test_float_amounts_are_converted_exactly_via_their_repr(aws: AwsClients) -> None:
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    assert store.put_new(_order(quantity=0.1, price=0.3))
    got = store.get("a" * 32)
    assert got is not None
    assert (got["quantity"], got["price"]) == (Decimal("0.1"), Decimal("0.3"))


def test_non_finite_amounts_are_rejected(aws: AwsClients) -> None:
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    with pytest.raises(ValueError, match="non-finite"):
        store.put_new(_order(price=float("nan")))
    assert store.get("a" * 32) is None


def test_order_needs_a_valid_status(aws: AwsClients) -> None:
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    with pytest.raises(ValueError, match="valid status"):
        store.put_new(_order(status="MAYBE"))


def test_list_orders_pages_through_the_whole_table(aws: AwsClients) -> None:
    # Given more orders than one page of a 1 MB scan would hold
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    pad = "x" * 3000
    for i in range(400):
        assert store.put_new(_order(coid=f"{i:032x}", note=pad))
    # When they are listed, Then every order comes back once, sorted by id
    listed = store.list_orders()
    assert [o["client_order_id"] for o in listed] == [f"{i:032x}" for i in range(400)]


def test_status_update_is_guarded_by_the_stored_status(aws: AwsClients) -> None:
    # Given a NEW order
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    store.put_new(_order())
    # When two workers both try NEW -> SUBMITTED
    first = store.update_status(
        "a" * 32,
        StatusChange(
            OrderStatus.NEW, OrderStatus.SUBMITTED, T0, OrderFacts(exchange_order_id="X1")
        ),
    )
    second = store.update_status("a" * 32, StatusChange(OrderStatus.NEW, OrderStatus.SUBMITTED, T0))
    # Then only the first moves it, with its extra fields
    assert (first, second) == (True, False)
    got = store.get("a" * 32)
    assert got is not None
    assert got["status"] == "SUBMITTED"
    assert got["exchange_order_id"] == "X1"
    assert got["updated_at"] == T0.isoformat()


def test_illegal_transition_raises_before_touching_the_table(aws: AwsClients) -> None:
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    store.put_new(_order(status=OrderStatus.FILLED))
    with pytest.raises(IllegalTransitionError):
        store.update_status("a" * 32, StatusChange(OrderStatus.FILLED, OrderStatus.CANCELED, T0))
    got = store.get("a" * 32)
    assert got is not None
    assert got["status"] == "FILLED"


def test_status_update_of_a_missing_order_writes_nothing(aws: AwsClients) -> None:
    store = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    change = StatusChange(OrderStatus.NEW, OrderStatus.SUBMITTED, T0)
    assert store.update_status("b" * 32, change) is False
    assert store.get("b" * 32) is None


# ------------------------------------------------------------------ positions


def test_position_upsert_uses_an_optimistic_version(aws: AwsClients) -> None:
    # Given a new position
    store = DynamoPositionStore(aws.resources.positions_table, aws.dynamodb)
    assert store.upsert({"symbol": "ETH/USDT", "quantity": Decimal("1.5")}, None)
    # When a stale writer and a current writer both update it
    current = store.upsert({"symbol": "ETH/USDT", "quantity": Decimal("2")}, expected_version=1)
    stale = store.upsert({"symbol": "ETH/USDT", "quantity": Decimal("9")}, expected_version=1)
    duplicate_new = store.upsert({"symbol": "ETH/USDT", "quantity": Decimal("7")}, None)
    # Then only the current writer wins and the version moved to 2
    assert (current, stale, duplicate_new) == (True, False, False)
    assert store.get_all() == {
        "ETH/USDT": {"symbol": "ETH/USDT", "quantity": Decimal("2"), "version": Decimal("2")}
    }


def test_position_delete_is_versioned(aws: AwsClients) -> None:
    store = DynamoPositionStore(aws.resources.positions_table, aws.dynamodb)
    store.upsert({"symbol": "SOL/USDT", "quantity": Decimal("3")}, None)
    assert store.delete("SOL/USDT", expected_version=7) is False
    assert store.delete("SOL/USDT", expected_version=1) is True
    assert store.get("SOL/USDT") is None


# ------------------------------------------------------------------ state


def test_state_put_get_and_query_in_sort_key_order(aws: AwsClients) -> None:
    # Given three items under one partition and one under another
    store = DynamoStateStore(aws.resources.state_table, aws.dynamodb)
    store.put("risk#transitions", "2024-03-01T12:00:02Z", {"level": "DEFENSIVE"})
    store.put("risk#transitions", "2024-03-01T12:00:00Z", {"level": "NORMAL"})
    store.put("risk#transitions", "2024-03-01T12:00:01Z", {"level": "CONSERVATIVE"})
    store.put("watermark", "binance#1d#BTC/USDT", {"last_ts": 1700000000000})
    # When queried
    rows = store.query("risk#transitions")
    # Then they come back in sk order, and get reads one item without its keys
    assert [r["level"] for r in rows] == ["NORMAL", "CONSERVATIVE", "DEFENSIVE"]
    assert rows[0]["sk"] == "2024-03-01T12:00:00Z"
    assert store.get("watermark", "binance#1d#BTC/USDT") == {"last_ts": Decimal(1700000000000)}
    assert store.get("watermark", "nope") is None


def test_state_item_cannot_override_its_keys(aws: AwsClients) -> None:
    store = DynamoStateStore(aws.resources.state_table, aws.dynamodb)
    with pytest.raises(ValueError, match="pk/sk"):
        store.put("a", "b", {"pk": "other"})


def test_clients_follow_region_and_endpoint_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a region and an endpoint (a moto server or LocalStack) in the environment
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    # When clients are built (offline: construction makes no call)
    clients = AwsClients.build(AwsResources())
    # Then every client targets that region and endpoint
    for client in (clients.dynamodb, clients.s3, clients.ssm):
        assert client.meta.region_name == "eu-west-1"
        assert client.meta.endpoint_url == "http://127.0.0.1:4566"


# ------------------------------------------------------------------ open-orders index migration


def _sound(coid: str, status: OrderStatus) -> dict[str, object]:
    return {
        "client_order_id": coid, "symbol": "BTC/USDT", "side": "buy", "intent": "open",
        "strategy": "s", "signal_bar_ms": 1_709_251_200_000, "quantity": Decimal("1"),
        "reference_price": Decimal("100"), "status": status.value, "created_at": T0.isoformat(),
    }  # fmt: skip


@pytest.mark.parametrize("damage", [{"status": "BOGUS"}, {"status": None}])
def test_the_open_index_migration_indexes_a_record_whose_status_cannot_be_read(
    aws: AwsClients, damage: dict[str, object]
) -> None:
    # Given orders recorded by a version without the open-orders index: a NEW one, a FILLED
    # one and one whose status cannot be read (written straight, as that version wrote them)
    res = aws.resources
    damaged = {k: v for k, v in {**_sound("d" * 32, OrderStatus.NEW), **damage}.items() if v}
    for record in (
        _sound("a" * 32, OrderStatus.NEW),
        _sound("f" * 32, OrderStatus.FILLED),
        damaged,
    ):
        aws.dynamodb.put_item(TableName=res.orders_table, Item=to_item(record))
    orders = DynamoOrderStore(res.orders_table, aws.dynamodb)
    state = DynamoStateStore(res.state_table, aws.dynamodb)
    # When the first start of the new version runs the migration
    added = ensure_open_index(orders, state, T0)
    # Then it completes (a damaged record never stops every later cycle), the open order is
    # indexed, the finished one is not, and the damaged one is indexed so that every read of
    # the open orders names it (its coin blocked), never lost from the view
    assert added == 2
    read = orders.open_orders()
    assert [o.key for o in read] == ["a" * 32]
    assert [u.key for u in read.unreadable] == ["d" * 32]
    # and it ran once
    assert ensure_open_index(orders, state, T0) == 0
