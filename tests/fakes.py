"""In-memory fakes of the store-like ports, for tests about logic rather than AWS.

Each fake keeps the contract of its AWS adapter: the orders, positions and state records of
``adapters/dynamodb_store.py`` (the same exactly-once insert, guarded status moves along the
state-transition table, open-orders index, optimistic versions and conditional writes, values
stored as DynamoDB would return them: numbers as ``Decimal``, times as ISO strings, ``None``
dropped), the scan's signals (``adapters/dynamodb_signals.py``: reports stored as JSON, the
newest as-of is the latest), the audit trail (``adapters/audit.py``: validated, sanitized,
append-only entries, newest first) and the kill-switch (``adapters/ssm_killswitch.py``: checked
reason and actor, the write's time from the clock).
``tests/integration/test_store_contract.py`` runs one suite of assertions against each fake and
its adapter on moto, so a fake cannot drift from its adapter.

Ports without a fake here, and what stands in for them: the venues (``Exchange``,
``OrderGateway``, ``ProtectiveGateway``, ``OrderListGateway``, ``MarketRulesGateway``,
``BalanceSource``, ``SpotVenue``, ``VenueSweep`` and its ``SweepOutcome``,
``PerpetualVenue``, ``WithdrawalVenue``) are the paper venue (``adapters/paper_exchange.py``) and the fake Binance
of the live-venue tests; the market data ports (``MarketData``, ``AgentData``, ``CandleSource``,
``RecordedCandles``, ``BarSource``, ``MarketCapSource``, ``SentimentSource``) are the recorded
real data (``adapters/recorded_data.py``, ``recorded_venue.py``), never invented prices; the
paper venue's ``PaperBook`` has its in-memory book in production code (``InMemoryPaperBook``);
``Metrics`` and ``SliRecorder`` are ``adapters/emf_metrics.InMemoryMetrics`` and
``InMemorySlis``; ``RiskLevelSource`` and ``RiskReader`` are the ``RiskStateService`` itself over
``InMemoryStateStore`` and ``InMemoryKillSwitch``; ``Progress`` is any callable
(``services.progress.no_progress``); the value shapes ``KillSwitchState``,
``KillSwitchValue`` and ``AuditRecord`` are the adapters' own values (stored records,
``KillSwitchStatus``, ``AuditEntry``), which these fakes return; the model ports
(``Predictor``, ``Ranker`` and their trainers ``PredictorTrainer``, ``RankerTrainer``) are the
real fitted models; the lake stores, the model registry, SageMaker, SNS, CloudWatch and the
health probes (``LakeStore``, ``MarketCapStore``, ``FundingStore``, ``SentimentStore``,
``WithdrawalStore``, ``ModelRegistry``, ``RegistryReader``, ``TrainingJobs``,
``ModelDeployer``, ``Notifier``, ``MetricReader``, ``HealthProbe``) are exercised by their
adapters on moto, since what their tests check is the stored layout or the AWS call itself.
``tests/unit/test_ports_layout.py`` fails on a port this module does not name.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptosmarttrader.adapters.audit import AppendOnlyAuditTrail
from cryptosmarttrader.adapters.dynamodb_store import (
    facts_record,
    from_item,
    history_step,
    order_record,
    position_from_record,
    position_record,
    read_open_orders,
    read_positions,
    recorded_order_from_record,
    status_change_record,
    to_item,
)
from cryptosmarttrader.adapters.killswitch_value import KillSwitchStatus
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.book import OpenOrders, PositionBook, RecordedOrder
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.killswitch import MAX_ACTOR_CHARS, MAX_REASON_CHARS, check_text
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus

__all__ = [
    "InMemoryAuditTrail",
    "InMemoryKillSwitch",
    "InMemoryOrderLedger",
    "InMemoryPositionLedger",
    "InMemorySignalStore",
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

    def record(self, order: Order) -> bool:
        return self.put_new(order_record(order))

    def get(self, client_order_id: str) -> dict[str, Any] | None:
        row = self._rows.get(client_order_id)
        return None if row is None else copy.deepcopy(row)

    def find(self, client_order_id: str) -> RecordedOrder | None:
        row = self._rows.get(client_order_id)
        return None if row is None else recorded_order_from_record(row)

    def open_orders(self, symbol: str | None = None) -> OpenOrders:
        return read_open_orders(self.list_open(symbol))

    def all_orders(self) -> OpenOrders:
        """Every order of the ledger as aggregates (a full read); the records that could not be
        read are left out and named in ``.unreadable``."""
        return read_open_orders(self.list_orders())

    def list_orders(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(self._rows[k]) for k in sorted(self._rows)]

    def list_open(self, symbol: str | None = None) -> list[dict[str, Any]]:
        keys = sorted(self._indexed, key=lambda k: (str(self._rows[k].get("symbol", "")), k))
        return [
            copy.deepcopy(self._rows[k])
            for k in keys
            if symbol is None or self._rows[k].get("symbol") == symbol
        ]

    def update_status(self, client_order_id: str, change: StatusChange) -> bool:
        with self._lock:
            row = self._rows.get(client_order_id)
            if row is None or row.get("status") != change.expected.value:
                return False
            row.update(_stored(status_change_record(change)))
            row["history"] = [*row.get("history", []), _stored(history_step(change))]
            if change.settles:
                self._indexed.discard(client_order_id)
        return True

    def note(self, client_order_id: str, expected: OrderStatus, facts: OrderFacts) -> bool:
        if facts.empty:
            raise ValueError("note needs at least one fact")
        with self._lock:
            row = self._rows.get(client_order_id)
            if row is None or row.get("status") != expected.value:
                return False
            row.update(_stored(facts_record(facts)))
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
    """Positions keyed by symbol with an optimistic version (the ``PositionLedger`` and
    ``PositionStore`` ports)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get_all(self) -> dict[str, dict[str, Any]]:
        return {k: copy.deepcopy(v) for k, v in sorted(self._rows.items())}

    def load_all(self) -> PositionBook:
        return read_positions(dict(sorted(self._rows.items())))

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

    def save(self, position: Position, expected_version: int | None, at: datetime) -> bool:
        return self.upsert(position_record(position, at), expected_version)


class InMemoryStateStore:
    """Small (pk, sk) records: the ``StateStore``, ``StateRecords``, ``StateReader`` and
    ``ConditionalStateStore`` ports (the risk state, go-live, ingest, the paper venue's book)."""

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
    """The kill-switch parameter (``KillSwitch`` / ``KillSwitchControl``), off until set.

    Like ``SsmKillSwitch``: a reason or actor that ``check_text`` refuses raises and writes
    nothing, and a write is timed by the clock (``at`` when the writer keeps a time); without a
    clock every write keeps the construction time."""

    def __init__(self, at: datetime, clock: Clock | None = None) -> None:
        self._clock = clock
        self._status = KillSwitchStatus(on=False, reason="local default", actor="test", at=at)

    def status(self) -> KillSwitchStatus:
        return self._status

    def is_on(self) -> bool:
        return self._status.on

    def set(
        self, on: bool, reason: str, actor: str, *, at: datetime | None = None
    ) -> KillSwitchStatus:
        when = at or (self._clock.now() if self._clock is not None else self._status.at)
        self._status = KillSwitchStatus(
            on=on,
            reason=check_text("reason", reason, MAX_REASON_CHARS),
            actor=check_text("actor", actor, MAX_ACTOR_CHARS),
            at=when,
        )
        return self._status

    def invalidate(self) -> None:
        """Nothing is cached here."""


class InMemorySignalStore:
    """The scan's published reports (``SignalStore`` / ``SignalReader`` / ``SignalHistory``),
    kept as the JSON the DynamoDB store writes, so readers get what it would give back."""

    def __init__(self) -> None:
        self._reports: dict[str, str] = {}
        self._latest: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def save(self, asof_iso: str, report: Mapping[str, Any]) -> None:
        body = jsonout.dumps(report, sort_keys=True)
        with self._lock:
            self._reports[asof_iso] = body
            if self._latest is None or self._latest[0] <= asof_iso:
                self._latest = (asof_iso, body)

    def latest(self) -> dict[str, Any] | None:
        return None if self._latest is None else dict(json.loads(self._latest[1]))

    def at(self, asof_iso: str) -> dict[str, Any] | None:
        body = self._reports.get(asof_iso)
        return None if body is None else dict(json.loads(body))

    def between(self, start_iso: str, end_iso: str) -> list[dict[str, Any]]:
        return [
            dict(json.loads(body))
            for asof, body in sorted(self._reports.items())
            if start_iso <= asof <= end_iso
        ]


class InMemoryAuditTrail(AppendOnlyAuditTrail):
    """The append-only audit trail (``AuditTrail`` / ``AuditReader``) with its items in a dict:
    entries are shaped, stored and read back by ``AppendOnlyAuditTrail``, as in
    ``DynamoAuditTrail``; one item per (time, request id)."""

    def __init__(self) -> None:
        self._items: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def _put_new(self, sort_key: str, item: Mapping[str, Any]) -> bool:
        with self._lock:
            if sort_key in self._items:
                return False
            self._items[sort_key] = copy.deepcopy(item)
            return True

    def _newest(self, limit: int) -> list[Mapping[str, Any]]:
        with self._lock:
            return [self._items[k] for k in sorted(self._items, reverse=True)[:limit]]
