"""DynamoDB calls and time of one execution reconcile with nothing to do, over a long ledger.

Builds an embedded DynamoDB (moto, in-process) holding ``--orders`` finished orders whose fills
are in the positions (what months of hourly trading leave), then measures in the same process:

* reference — the read pattern of the reconcile before the open-orders index: a full Scan of
  the orders table, then per finished order a consistent read of the order and one of its
  position (to check that its fill was applied);
* now — ``ExecutionService.reconcile`` as the execution Lambda wires it: one Query of the
  open-orders index and one read of the positions.

Calls are counted with botocore ``before-call`` hooks. moto's absolute times are far above
DynamoDB's; the ratio is the point. Pass: the calls of a reconcile do not grow with the ledger.

    uv run python bench/bench_reconcile.py [--orders 1600]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    MIGRATIONS_PK,
    OPEN_INDEX_MIGRATION,
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
    to_item,
)
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus
from cryptosmarttrader.settings import AwsResources, TradingSettings
from cryptosmarttrader.wiring import trading_cycle
from cst_devtools.local_aws import DUMMY_CREDENTIALS, ensure_resources

NOW = datetime(2022, 6, 1, 12, 10, tzinfo=UTC)
SYMBOLS = [f"COIN{i}/USDT" for i in range(20)]


class Calls:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()

    def __enter__(self) -> Calls:
        self.client.meta.events.register("before-call.dynamodb", self._count)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.meta.events.unregister("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_kwargs: object) -> None:
        self.calls[model.name] += 1


def write_history(clients: AwsClients, n: int) -> None:
    res = clients.resources
    applied: dict[str, dict[str, Decimal]] = {s: {} for s in SYMBOLS}
    items = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        coid = f"{i:032x}"
        at = (NOW - timedelta(hours=n - i)).isoformat()
        order = {
            "client_order_id": coid, "symbol": symbol, "side": "buy" if i % 2 == 0 else "sell",
            "intent": "open", "order_type": "market", "quantity": Decimal("1.5"),
            "filled": Decimal("1.5"), "average_price": Decimal("10"), "fee": Decimal("0.015"),
            "reference_price": Decimal("10"), "strategy": "history",
            "signal_bar_ms": 1_600_000_000_000 + i, "status": "FILLED", "mode": "paper",
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        applied[symbol][coid] = Decimal("1.5")
        items.append({"PutRequest": {"Item": to_item(order)}})
    for start in range(0, len(items), 25):
        clients.dynamodb.batch_write_item(
            RequestItems={res.orders_table: items[start : start + 25]}
        )  # type: ignore[dict-item]
    state = DynamoStateStore(res.state_table, clients.dynamodb)
    state.put(MIGRATIONS_PK, OPEN_INDEX_MIGRATION, {"indexed": 0, "at": NOW})
    for symbol in SYMBOLS:
        position = {
            "symbol": symbol, "quantity": Decimal(0), "cost": Decimal(0), "notional": Decimal(0),
            "applied_fills": applied[symbol], "version": 1, "updated_at": NOW,
        }  # fmt: skip
        clients.dynamodb.put_item(TableName=res.positions_table, Item=to_item(position))


def reference_reconcile(clients: AwsClients) -> None:
    """The previous reconcile's reads with nothing to do (see the module docstring)."""
    res = clients.resources
    orders = DynamoOrderStore(res.orders_table, clients.dynamodb)
    positions = DynamoPositionStore(res.positions_table, clients.dynamodb)
    for order in orders.list_orders():
        if OrderStatus(str(order["status"])) in TERMINAL_STATUSES:
            stored = orders.get(str(order["client_order_id"])) or order
            pos = positions.get(str(stored["symbol"])) or {}
            assert str(stored["client_order_id"]) in pos.get("applied_fills", {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1600)
    args = parser.parse_args()
    if not 1 <= args.orders <= 20_000:
        parser.error("--orders must be in 1..20000")
    os.environ.update(DUMMY_CREDENTIALS)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients, now=NOW)
        write_history(clients, args.orders)
        with Calls(clients.dynamodb) as ref:
            t0 = time.perf_counter()
            reference_reconcile(clients)
            ref_s = time.perf_counter() - t0
        cycle = trading_cycle(
            None,  # type: ignore[arg-type]  # nothing to do: no bar is read
            FixedClock(NOW),
            clients,
            clients.resources,
            TradingSettings(),
            InMemoryMetrics(),
        )
        with Calls(clients.dynamodb) as now:
            t0 = time.perf_counter()
            counts = cycle.execution.reconcile()
            now_s = time.perf_counter() - t0
    assert set(counts.values()) == {0}, counts
    ref_n, now_n = sum(ref.calls.values()), sum(now.calls.values())
    print(f"ledger: {args.orders} finished orders, fills applied; reconcile with nothing to do")
    print(
        f"reference (full Scan + 2 reads per order): {ref_n:6d} calls {dict(ref.calls)}  {ref_s:8.2f} s"
    )
    print(
        f"now (open-orders index):                   {now_n:6d} calls {dict(now.calls)}  {now_s:8.2f} s"
    )
    print(f"ratio: {ref_n / now_n:.0f}x fewer calls, {ref_s / max(now_s, 1e-9):.0f}x faster")
    ok = now_n <= 3
    print("PASS" if ok else "FAIL", "- calls of a reconcile independent of the ledger's length")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
