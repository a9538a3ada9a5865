"""What an hourly cycle costs in DynamoDB calls once the ledger has a history.

Calls are counted with botocore event hooks on the cycle's own DynamoDB client (every API call
the adapters make, retries excluded), on moto, with a ledger of 1,600 finished orders whose
fills are in the positions: what months of hourly trading leave behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    MIGRATIONS_PK,
    OPEN_INDEX_MIGRATION,
    DynamoOrderStore,
    DynamoStateStore,
    to_item,
)
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.services.execution import ExecutionService, ReconcileReport
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import trading_cycle
from tests.support.aws import moto_stack

NOW = datetime(2022, 6, 1, 12, 10, tzinfo=UTC)
HISTORY = 1_600
SYMBOLS = [f"COIN{i}/USDT" for i in range(20)]


class DynamoCalls:
    """Counts every DynamoDB API call of one client, per operation (``before-call`` hook)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()

    def __enter__(self) -> DynamoCalls:
        self.client.meta.events.register("before-call.dynamodb", self._count)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.meta.events.unregister("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_kwargs: object) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch, now=NOW) as aws:
        yield aws


def write_history(clients: AwsClients, n: int) -> None:
    """``n`` filled round trips (a buy then its sell), fills applied: every position is flat."""
    res = clients.resources
    applied: dict[str, dict[str, Decimal]] = {s: {} for s in SYMBOLS}
    items = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        coid = f"{i:032x}"
        at = NOW - timedelta(hours=n - i)
        order = {
            "client_order_id": coid, "symbol": symbol, "side": "buy" if i % 2 == 0 else "sell",
            "intent": "open" if i % 2 == 0 else "close", "order_type": "market",
            "quantity": Decimal("1.5"), "filled": Decimal("1.5"), "average_price": Decimal("10"),
            "fee": Decimal("0.015"), "reference_price": Decimal("10"), "strategy": "history",
            "signal_bar_ms": 1_600_000_000_000 + i, "status": "FILLED", "mode": "paper",
            "created_at": at.isoformat(), "updated_at": at.isoformat(),
        }  # fmt: skip
        applied[symbol][coid] = Decimal("1.5")
        items.append({"PutRequest": {"Item": to_item(order)}})
    for start in range(0, len(items), 25):
        clients.dynamodb.batch_write_item(
            RequestItems={res.orders_table: items[start : start + 25]}  # type: ignore[dict-item]
        )
    # written by this version: finished orders were never indexed, no backfill scan is due
    state = DynamoStateStore(res.state_table, clients.dynamodb)
    state.put(MIGRATIONS_PK, OPEN_INDEX_MIGRATION, {"indexed": 0, "at": NOW})
    for symbol in SYMBOLS:
        position = {
            "symbol": symbol, "quantity": Decimal(0), "cost": Decimal(0), "notional": Decimal(0),
            "applied_fills": applied[symbol], "version": 1, "updated_at": NOW,
        }  # fmt: skip
        clients.dynamodb.put_item(TableName=res.positions_table, Item=to_item(position))


def _service(clients: AwsClients) -> ExecutionService:
    class NoBars:  # reconcile with nothing to do never reads a bar
        def ohlcv(self, *_args: object) -> Any:
            raise AssertionError("no bar needed")

        def daily_universe(self, *_args: object) -> Any:
            raise AssertionError("no bar needed")

    cycle = trading_cycle(
        NoBars(), FixedClock(NOW), clients, clients.resources, TradingSettings(), InMemoryMetrics()
    )
    return cycle.execution


def test_reconcile_with_a_long_history_and_nothing_to_do_reads_only_the_open_index(
    clients: AwsClients,
) -> None:
    # Given 1,600 finished orders whose fills are in the positions
    write_history(clients, HISTORY)
    service = _service(clients)

    # When a cycle reconciles
    with DynamoCalls(clients.dynamodb) as calls:
        counts = service.reconcile()

    # Then nothing was done, with one Query of the open orders and one read of the positions:
    # no finished order is read again (the reconcile used to cost 2 reads per historical order)
    assert counts == ReconcileReport()
    # (the GetItem is the one-time index migration's marker, read on the first start)
    assert calls.calls == {"GetItem": 1, "Query": 1, "Scan": 1}, calls.calls


def test_exposure_and_the_kill_switch_sweep_do_not_grow_with_the_history(
    clients: AwsClients,
) -> None:
    # Given the same history
    write_history(clients, HISTORY)
    service = _service(clients)
    service.reconcile()

    # When exposure is asked for several decisions and the kill-switch sweep runs
    with DynamoCalls(clients.dynamodb) as calls:
        for _ in range(10):
            service.exposure()
        service.cancel_open_orders("drill")

    # Then the exposure comes from the book read once (no Scan per decision) and the sweep
    # queries the open orders only
    assert calls.calls == {"Query": 1}, calls.calls


def test_the_first_start_indexes_open_orders_recorded_before_the_index(
    clients: AwsClients,
) -> None:
    # Given history plus one order sent by a version without the open-orders index
    write_history(clients, 50)
    clients.dynamodb.delete_item(
        TableName=clients.resources.state_table,
        Key={"pk": {"S": MIGRATIONS_PK}, "sk": {"S": OPEN_INDEX_MIGRATION}},
    )
    legacy = {
        "client_order_id": "f" * 32, "symbol": SYMBOLS[0], "side": "buy", "intent": "open",
        "order_type": "market", "quantity": Decimal("1"), "reference_price": Decimal("10"),
        "strategy": "legacy", "signal_bar_ms": 1_650_000_000_000, "status": "ACCEPTED",
        "mode": "paper", "created_at": NOW.isoformat(),
    }  # fmt: skip
    clients.dynamodb.put_item(TableName=clients.resources.orders_table, Item=to_item(legacy))
    orders = DynamoOrderStore(clients.resources.orders_table, clients.dynamodb)
    assert orders.list_open() == []

    # When the execution service starts (its first reconcile)
    _service(clients).reconcile()

    # Then the legacy order is indexed, once: a second start does not scan again
    assert [o["client_order_id"] for o in orders.list_open()] == ["f" * 32]
    again = _service(clients)
    again.exchange = None  # type: ignore[assignment]
    with DynamoCalls(clients.dynamodb) as calls:
        assert again.prepare is not None
        again.prepare()
    assert "Scan" not in calls.calls
