"""In-memory fakes of the order, position, state and kill-switch ports, for tests about logic rather than AWS.

Each fake keeps the contract of its DynamoDB adapter (``adapters/dynamodb_store.py``): the same
exactly-once insert, guarded status moves along the state-transition table, open-orders index
and optimistic position versions, and values stored as DynamoDB would return them (numbers as
``Decimal``, times as ISO strings, ``None`` dropped). ``tests/integration/test_store_contract.py``
runs one suite of assertions against both, so a fake cannot drift from its adapter.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptosmarttrader.adapters.dynamodb_store import (
    from_item,
    order_record,
    position_from_record,
    position_record,
    to_item,
)
from cryptosmarttrader.adapters.killswitch_value import KillSwitchStatus
from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus, transition

__all__ = [
    "InMemoryKillSwitch",
    "InMemoryOrderLedger",
    "InMemoryPositionLedger",
    "InMemoryStateStore",
]


def _stored(data: Mapping[str, Any]) -> dict[str, Any]:
    """What DynamoDB would hand back for ``data`` (the adapter's exact conversion)."""
    return from_item(to_item(data))


class InMemoryOrderLedger:
    """Orders keyed by client order ID (the ``OrderLedger`` / ``OrderStore`` ports)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._indexed: set[str] = set()
        self._lock = threading.Lock()

    def put_new(self, order: Mapping[str, Any]) -> bool:
        coid = order.get("client_order_id")
        if not isinstance(coid, str) or not coid:
            raise ValueError("order needs a non-empty string client_order_id")
        try:
            status = OrderStatus(str(order.get("status")))
        except ValueError as exc:
            raise ValueError(f"order {coid} has no valid status: {order.get('status')!r}") from exc
        created = order.get("created_at")
        history = [{"status": status.value, "at": created}] if created is not None else []
        row = _stored({**order, "status": status.value, "history": history})
        with self._lock:
            if coid in self._rows:
                return False
            self._rows[coid] = row
            if status not in TERMINAL_STATUSES:
                self._indexed.add(coid)
        return True

    def record(self, order: Order) -> dict[str, Any] | None:
        stored = order_record(order)
        return stored if self.put_new(stored) else None

    def get(self, client_order_id: str) -> dict[str, Any] | None:
        row = self._rows.get(client_order_id)
        return None if row is None else copy.deepcopy(row)

    def list_orders(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(self._rows[k]) for k in sorted(self._rows)]

    def list_open(self, symbol: str | None = None) -> list[dict[str, Any]]:
        keys = sorted(self._indexed, key=lambda k: (str(self._rows[k].get("symbol", "")), k))
        return [
            copy.deepcopy(self._rows[k])
            for k in keys
            if symbol is None or self._rows[k].get("symbol") == symbol
        ]

    def update_status(
        self,
        client_order_id: str,
        expected: OrderStatus,
        new: OrderStatus,
        *,
        at: datetime | None = None,
        fields: Mapping[str, Any] | None = None,
        settle: bool | None = None,
    ) -> bool:
        transition(expected, new)
        if settle is None:
            filled = Decimal(str((fields or {}).get("filled", 0)))
            settle = new in TERMINAL_STATUSES and filled <= 0
        if settle and new not in TERMINAL_STATUSES:
            raise ValueError(f"only a terminal order leaves the open index, not {new}")
        extra = dict(fields or {})
        if at is not None:
            extra["updated_at"] = at
        for name in extra:
            if name in {"client_order_id", "status", "history"}:
                raise ValueError(f"field {name!r} cannot be set through update_status")
        with self._lock:
            row = self._rows.get(client_order_id)
            if row is None or row.get("status") != expected.value:
                return False
            step = {"status": new.value, "at": at} if at is not None else {"status": new.value}
            row.update(_stored({**extra, "status": new.value}))
            row["history"] = [*row.get("history", []), _stored(step)]
            if settle:
                self._indexed.discard(client_order_id)
        return True

    def note(self, client_order_id: str, expected: OrderStatus, fields: Mapping[str, Any]) -> bool:
        if not fields:
            raise ValueError("note needs at least one field")
        for name in fields:
            if name in {"client_order_id", "status"}:
                raise ValueError(f"field {name!r} cannot be set through note")
        with self._lock:
            row = self._rows.get(client_order_id)
            if row is None or row.get("status") != expected.value:
                return False
            row.update(_stored(fields))
        return True

    def settle(self, client_order_id: str) -> bool:
        with self._lock:
            row = self._rows.get(client_order_id)
            if row is None or OrderStatus(str(row["status"])) not in TERMINAL_STATUSES:
                return False
            self._indexed.discard(client_order_id)
        return True

    def backfill_open_index(self) -> int:
        return 0  # every order is indexed on insert


class InMemoryPositionLedger:
    """Positions keyed by symbol with an optimistic version (the ``PositionLedger`` port)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_all(self) -> dict[str, dict[str, Any]]:
        return {k: copy.deepcopy(v) for k, v in sorted(self._rows.items())}

    def get(self, symbol: str) -> dict[str, Any] | None:
        row = self._rows.get(symbol)
        return None if row is None else copy.deepcopy(row)

    def upsert(self, position: Mapping[str, Any], expected_version: int | None) -> bool:
        symbol = position.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ValueError("position needs a non-empty string symbol")
        with self._lock:
            stored = self._rows.get(symbol)
            if expected_version is None and stored is not None:
                return False
            if expected_version is not None and (
                stored is None or int(stored["version"]) != expected_version
            ):
                return False
            version = 1 if expected_version is None else expected_version + 1
            self._rows[symbol] = _stored({**position, "version": version})
        return True

    def delete(self, symbol: str, expected_version: int) -> bool:
        with self._lock:
            stored = self._rows.get(symbol)
            if stored is None or int(stored["version"]) != expected_version:
                return False
            del self._rows[symbol]
        return True

    def load(self, symbol: str) -> tuple[Position | None, int | None]:
        stored = self.get(symbol)
        if stored is None:
            return None, None
        return position_from_record(stored), int(stored["version"])

    def save(
        self, position: Position, expected_version: int | None, at: datetime
    ) -> dict[str, Any] | None:
        record = position_record(position, at)
        if not self.upsert(record, expected_version):
            return None
        return {**record, "version": 1 if expected_version is None else expected_version + 1}


class InMemoryStateStore:
    """Small (pk, sk) records (the ``StateStore`` ports of the risk state, go-live, ingest)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None:
        if "pk" in item or "sk" in item:
            raise ValueError("item must not carry its own pk/sk")
        self._items[(pk, sk)] = _stored(item)

    def put_new(self, pk: str, sk: str, item: Mapping[str, Any]) -> bool:
        with self._lock:
            if (pk, sk) in self._items:
                return False
            self.put(pk, sk, item)
        return True

    def put_if(self, pk: str, sk: str, item: Mapping[str, Any], field: str, expected: str) -> bool:
        with self._lock:
            if self._items.get((pk, sk), {}).get(field) != expected:
                return False
            self.put(pk, sk, item)
        return True

    def put_versioned(
        self, pk: str, sk: str, item: Mapping[str, Any], expected_version: int
    ) -> bool:
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")
        with self._lock:
            stored = self._items.get((pk, sk), {}).get("version")
            if (stored is None and expected_version != 0) or (
                stored is not None and int(stored) != expected_version
            ):
                return False
            self.put(pk, sk, {**item, "version": expected_version + 1})
        return True

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._items.get((pk, sk))
        return None if item is None else copy.deepcopy(item)

    def query(self, pk: str, sk_between: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        return [
            {**copy.deepcopy(item), "sk": sk}
            for (p, sk), item in sorted(self._items.items())
            if p == pk and (sk_between is None or sk_between[0] <= sk <= sk_between[1])
        ]


class InMemoryKillSwitch:
    """The kill-switch parameter (``KillSwitch`` / ``KillSwitchControl``), off until set."""

    def __init__(self, at: datetime) -> None:
        self._status = KillSwitchStatus(on=False, reason="local default", actor="test", at=at)

    def status(self) -> KillSwitchStatus:
        return self._status

    def is_on(self) -> bool:
        return self._status.on

    def set(self, on: bool, reason: str, actor: str) -> KillSwitchStatus:
        self._status = KillSwitchStatus(on=on, reason=reason, actor=actor, at=self._status.at)
        return self._status

    def invalidate(self) -> None:
        """Nothing is cached here."""
