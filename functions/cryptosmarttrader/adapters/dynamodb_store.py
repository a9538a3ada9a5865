"""DynamoDB adapters: orders, positions and the generic state table.

The only module that knows DynamoDB's item format. Every write that must not be lost or doubled
is a conditional write; a ``ConditionalCheckFailedException`` is the expected "someone else got
there first" answer and becomes ``False``. Any other error propagates as :class:`StoreError`
naming the table and key.

Money is stored as DynamoDB numbers built from ``Decimal``; a float is converted exactly through
its shortest ``repr`` (``0.1`` → ``Decimal("0.1")``), never through binary expansion, and NaN or
infinity is rejected (the item codec, :mod:`cryptosmarttrader.adapters.dynamodb_items`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.adapters.dynamodb_items import StoreError, from_item, to_item
from cryptosmarttrader.adapters.dynamodb_items import is_condition_failure as _is_condition_failure
from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.book import (
    ANY_SYMBOL,
    OpenOrders,
    PositionBook,
    RecordedOrder,
    StatusStep,
    UnreadableRecord,
    impossible_fill,
)
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, Intent, OrderStatus
from cryptosmarttrader.domain.types import ClientOrderId, OrderType, Price, Quantity, Side, Symbol

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "OPEN_ORDERS_INDEX",
    "OPEN_PK",
    "OPEN_SK",
    "DynamoOrderStore",
    "DynamoPositionStore",
    "DynamoStateStore",
    "StoreError",
    "ensure_open_index",
    "facts_from_record",
    "facts_record",
    "from_item",
    "history_step",
    "order_from_record",
    "order_record",
    "position_from_record",
    "position_record",
    "read_open_orders",
    "read_positions",
    "recorded_order_from_record",
    "status_change_record",
    "to_item",
]

# The sparse index of the orders that still need the execution cycle: every order not yet
# terminal, and a terminal one until its fill has reached the positions (see ``settle``).
OPEN_ORDERS_INDEX = "open-orders"
OPEN_PK = "open_pk"  # "open" while indexed, absent otherwise (sparse)
OPEN_SK = "open_sk"  # "<symbol>#<client order id>": one symbol's open orders are a key prefix
_OPEN = "open"
# ------------------------------------------------------------------ aggregate <-> record
# The orders and positions tables hold one record shape each; these four functions are the only
# place that maps it to and from the domain's aggregates.


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _amount(value: Any, name: str) -> Decimal:
    """A stored amount of a position: a finite number (a damaged record, e.g. a ``"NaN"``
    string where a number belongs, raises ``ValueError``: never valued as NaN or infinite)."""
    amount = _dec(value)
    if not amount.is_finite():
        raise ValueError(f"{name} is not a finite amount: {value!r}")
    return amount


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _logged_time(value: Any) -> datetime | None:
    """A time the store logs beside a record (a write's ``updated_at``, a history step's
    ``at``): what the reports print, never what the book is valued on. One that cannot be
    read is None (it never makes its record unreadable); one written without a zone is UTC."""
    try:
        moment = _time(value)
    except (TypeError, ValueError):
        return None
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _history(record: Mapping[str, Any]) -> tuple[StatusStep, ...]:
    """The order's recorded history (each status it entered, oldest first); an entry that is
    not a step is skipped."""
    steps = record.get("history")
    if not isinstance(steps, list):
        return ()
    return tuple(
        StatusStep(status=str(step.get("status")), at=_logged_time(step.get("at")))
        for step in steps
        if isinstance(step, Mapping)
    )


def order_record(order: Order) -> dict[str, Any]:
    """The orders table's record of ``order`` (the one schema, whoever created it)."""
    return {
        "client_order_id": order.client_order_id.value,
        "symbol": order.symbol.value,
        "side": order.side.value,
        "intent": order.intent.value,
        "order_type": order.order_type.value,
        "decision_quantity": (
            None if order.decision_quantity is None else order.decision_quantity.value
        ),
        "quantity": order.quantity.value,
        "reference_price": order.reference_price.value,
        "notional": order.notional,
        "strategy": order.strategy,
        "signal_bar_ms": order.signal_bar_ms,
        "position_key": order.position_key,
        "status": order.status.value,
        "rank": order.rank,
        "risk_rule": order.risk_rule,
        "risk_reason": order.risk_reason,
        "mode": order.mode,
        "created_at": order.created_at.isoformat(),
        "valid_until": None if order.valid_until is None else order.valid_until.isoformat(),
        "list_client_order_id": (
            None if order.list_client_order_id is None else order.list_client_order_id.value
        ),
    }


def order_from_record(record: Mapping[str, Any]) -> Order:
    """The aggregate of a stored order record (raises ``DomainError`` on an invalid one)."""
    created = _time(record.get("created_at"))
    if created is None:
        raise ValueError(f"order {record.get('client_order_id')!r} has no created_at")
    decision = record.get("decision_quantity")
    rank = record.get("rank")
    return Order(
        client_order_id=ClientOrderId(str(record["client_order_id"])),
        symbol=Symbol(str(record["symbol"])),
        side=Side(str(record["side"])),
        intent=Intent(str(record["intent"])),
        strategy=str(record["strategy"]),
        signal_bar_ms=int(record["signal_bar_ms"]),
        quantity=Quantity(_dec(record["quantity"])),
        reference_price=Price(_reference_price(record)),
        created_at=created,
        mode=str(record.get("mode") or "paper"),
        status=OrderStatus(str(record["status"])),
        order_type=OrderType(str(record.get("order_type") or OrderType.MARKET.value)),
        position_key=None if record.get("position_key") is None else str(record["position_key"]),
        decision_quantity=None if decision is None else Quantity(_dec(decision)),
        valid_until=_time(record.get("valid_until")),
        rank=None if rank is None else int(rank),
        risk_rule=None if record.get("risk_rule") is None else str(record["risk_rule"]),
        risk_reason=None if record.get("risk_reason") is None else str(record["risk_reason"]),
        list_client_order_id=(
            None
            if not record.get("list_client_order_id")
            else ClientOrderId(str(record["list_client_order_id"]))
        ),
    )


def _reference_price(record: Mapping[str, Any]) -> Decimal:
    """The order's reference price; a record written without one (the earliest scans) is
    valued at its recorded notional per unit."""
    if record.get("reference_price") is not None:
        return _dec(record["reference_price"])
    return _dec(record["notional"]) / _dec(record["quantity"])


def facts_from_record(record: Mapping[str, Any]) -> OrderFacts:
    """The facts recorded on a stored order (the size sent and the venue are the order's own
    ``quantity`` and ``mode``, see :func:`order_from_record`)."""

    def price(name: str) -> Price | None:
        return None if record.get(name) is None else Price(_dec(record[name]))

    def amount(name: str) -> Decimal | None:
        return None if record.get(name) is None else _dec(record[name])

    def text(name: str) -> str | None:
        return None if record.get(name) is None else str(record[name])

    lookups = record.get("absent_lookups")
    return OrderFacts(
        submitted_at=_time(record.get("submitted_at")),
        stop_price=price("stop_price"),
        limit_price=price("limit_price"),
        exchange_order_id=text("exchange_order_id") or None,
        filled=amount("filled"),
        average_price=price("average_price"),
        fee=amount("fee"),
        filled_at=_time(record.get("filled_at")),
        cancel_reason=text("cancel_reason"),
        canceled_by=text("canceled_by"),
        reject_reason=text("reject_reason"),
        expire_reason=text("expire_reason"),
        absent_lookups=None if lookups is None else int(lookups),
        next_lookup_at=_time(record.get("next_lookup_at")),
    )


def recorded_order_from_record(record: Mapping[str, Any]) -> RecordedOrder:
    """A stored order as the services see it: the aggregate and the facts recorded on it.
    A fill that cannot be true (:func:`~cryptosmarttrader.domain.book.impossible_fill`)
    raises ``ValueError``: the record is unreadable, never valued."""
    recorded = RecordedOrder(
        order_from_record(record),
        facts_from_record(record),
        history=_history(record),
        updated_at=_logged_time(record.get("updated_at")),
    )
    problem = impossible_fill(recorded)
    if problem is not None:
        raise ValueError(problem)
    return recorded


# what reading one damaged record raises (an attribute missing, of the wrong type or out of its
# domain: DomainError is a ValueError; a Decimal's errors are ArithmeticErrors)
_UNREADABLE = (KeyError, TypeError, ValueError, ArithmeticError)

log = logging.getLogger(__name__)


def _coin(symbol: Any) -> str:
    """The coin an unreadable record belongs to: its symbol when that is one, else
    :data:`ANY_SYMBOL` (a missing or malformed symbol names no coin, so every coin is blocked)."""
    if not isinstance(symbol, str):
        return ANY_SYMBOL
    try:
        return Symbol(symbol).value
    except ValueError:
        return ANY_SYMBOL


def _unreadable(key: Any, symbol: Any, exc: Exception, what: str) -> UnreadableRecord:
    bad = UnreadableRecord(
        key=str(key or ""),
        symbol=_coin(symbol),
        reason=f"{type(exc).__name__}: {exc}",
    )
    log.error("%s %s; left out of the book, its coin blocked", what, bad.describe())
    return bad


def read_open_orders(records: Iterable[Mapping[str, Any]]) -> OpenOrders:
    """Stored open orders as recorded orders; a record that cannot be read is left out and
    reported (logged, and in :attr:`OpenOrders.unreadable` with its coin): one damaged
    record never stops the others from being read."""
    orders: list[RecordedOrder] = []
    bad: list[UnreadableRecord] = []
    for record in records:
        try:
            orders.append(recorded_order_from_record(record))
        except _UNREADABLE as exc:
            bad.append(
                _unreadable(record.get("client_order_id"), record.get("symbol"), exc, "order")
            )
    return OpenOrders(orders, bad)


def read_positions(records: Mapping[str, Mapping[str, Any]]) -> PositionBook:
    """Stored positions (by symbol) as the aggregate; a record that cannot be read is left out
    and reported (logged, and in :attr:`PositionBook.unreadable`): its coin is blocked, never
    read as holding nothing."""
    positions: dict[str, Position] = {}
    bad: list[UnreadableRecord] = []
    for symbol, record in records.items():
        try:
            positions[symbol] = position_from_record(record)
        except _UNREADABLE as exc:
            bad.append(_unreadable(symbol, symbol, exc, "position"))
    return PositionBook(positions, bad)


def _value(typed: Price | Quantity | None) -> Decimal | None:
    return None if typed is None else typed.value


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def facts_record(facts: OrderFacts) -> dict[str, Any]:
    """The order attributes ``facts`` write (only those it carries; the rest stay as stored)."""
    attributes: dict[str, Any] = {
        "quantity": _value(facts.quantity),
        "mode": facts.mode,
        "submitted_at": _iso(facts.submitted_at),
        "stop_price": _value(facts.stop_price),
        "limit_price": _value(facts.limit_price),
        "exchange_order_id": facts.exchange_order_id,
        "filled": facts.filled,
        "average_price": _value(facts.average_price),
        "fee": facts.fee,
        "filled_at": _iso(facts.filled_at),
        "cancel_reason": facts.cancel_reason,
        "canceled_by": facts.canceled_by,
        "reject_reason": facts.reject_reason,
        "expire_reason": facts.expire_reason,
        "absent_lookups": facts.absent_lookups,
        "next_lookup_at": _iso(facts.next_lookup_at),
    }
    return {name: value for name, value in attributes.items() if value is not None}


def status_change_record(change: StatusChange) -> dict[str, Any]:
    """The order attributes a move sets: its new ``status``, its facts and ``updated_at``
    (besides the step it appends to ``history``, :func:`history_step`)."""
    return {
        **facts_record(change.facts),
        "status": change.new.value,
        "updated_at": change.at.isoformat(),
    }


def history_step(change: StatusChange) -> dict[str, Any]:
    """The entry a move appends to the order's ``history``."""
    return {"status": change.new.value, "at": change.at.isoformat()}


def position_record(position: Position, updated_at: datetime) -> dict[str, Any]:
    """The positions table's record of ``position`` (``version`` is the store's)."""
    held = position.quantity > 0
    return {
        "symbol": position.symbol.value,
        "quantity": position.quantity,
        "cost": position.notional,
        "notional": position.notional,
        "average_price": position.average_price,
        "realized_pnl": position.realized_pnl,
        "applied_fills": dict(position.applied_fills),
        "applied_costs": dict(position.applied_costs),
        "applied_times": {k: t.isoformat() for k, t in position.applied_times.items()},
        # a list, not a map: the order is which pruned orders are dropped first
        "pruned_fills": [[k, filled] for k, filled in position.pruned_fills],
        "pruned_through": _iso(position.pruned_through),
        "opened_by": position.opened_by,
        "opened_at": (
            position.opened_at.isoformat() if held and position.opened_at is not None else None
        ),
        "oversold": position.oversold if position.oversold > 0 else None,
        "oversold_reason": position.oversold_reason,
        "updated_at": updated_at,
    }


def _opened_at(record: Mapping[str, Any]) -> datetime | None:
    """A position's opening time; an unreadable one (a damaged record) is None, so that one
    bad record never blocks the fills of its position (the exit rule reports it as unknown)."""
    try:
        return _time(record.get("opened_at"))
    except (TypeError, ValueError):
        return None


def position_from_record(record: Mapping[str, Any]) -> Position:
    """The aggregate of a stored position record. Every version wrote the holding and its cost:
    a record without them, or with an amount that is not a finite number, raises (its
    holding is unknown, never read as none)."""
    quantity = _amount(record["quantity"], "quantity")
    cost = record.get("cost")
    if cost is None and quantity > 0:
        raise KeyError("cost (a held position without its cost basis)")
    return Position(
        symbol=Symbol(str(record["symbol"])),
        quantity=quantity,
        cost=_amount(cost or 0, "cost"),
        realized_pnl=_amount(record.get("realized_pnl") or 0, "realized_pnl"),
        applied_fills={
            str(k): _amount(v, "applied fill")
            for k, v in dict(record.get("applied_fills") or {}).items()
        },
        # a record written before values were kept has none: its applied parts keep their
        # booking, and an order's next part is valued at the order's average (as then)
        applied_costs={
            str(k): _amount(v, "applied cost")
            for k, v in dict(record.get("applied_costs") or {}).items()
        },
        # a record written before pruning has neither times nor pruned orders: its next fill
        # stamps its orders, which age from then on
        applied_times={
            str(k): t
            for k, v in dict(record.get("applied_times") or {}).items()
            if (t := _time(v)) is not None
        },
        pruned_fills=tuple(
            (str(k), _amount(v, "pruned fill")) for k, v in record.get("pruned_fills") or ()
        ),
        pruned_through=_time(record.get("pruned_through")),
        opened_by=None if not record.get("opened_by") else str(record["opened_by"]),
        opened_at=_opened_at(record),
        oversold=_amount(record.get("oversold") or 0, "oversold"),
        oversold_reason=(
            None if record.get("oversold_reason") is None else str(record["oversold_reason"])
        ),
        updated_at=_logged_time(record.get("updated_at")),
    )


def _scan_all(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    try:
        for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield from_item(item)
    except ClientError as exc:
        raise StoreError("scan", table, {}, exc) from exc


class DynamoOrderStore:
    """Orders keyed by ``client_order_id``; inserts are exactly-once, status moves are guarded."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def put_new(self, order: Mapping[str, Any]) -> bool:
        coid = order.get("client_order_id")
        if not isinstance(coid, str) or not coid:
            raise ValueError("order needs a non-empty string client_order_id")
        try:
            status = OrderStatus(str(order.get("status")))
        except ValueError as exc:
            raise ValueError(f"order {coid} has no valid status: {order.get('status')!r}") from exc
        indexed = {} if status in TERMINAL_STATUSES else _open_keys(order)
        created = order.get("created_at")
        history = [{"status": status.value, "at": created}] if created is not None else []
        item = to_item({**order, "status": status.value, **indexed, "history": history})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(client_order_id)",
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item", self._table, {"client_order_id": coid}, exc) from exc
        return True

    def record(self, order: Order) -> bool:
        """Insert ``order`` (the aggregate) exactly once: True when written, False (nothing
        written) when its client order ID is already recorded."""
        return self.put_new(order_record(order))

    def get(self, client_order_id: str) -> dict[str, Any] | None:
        try:
            resp = self._client.get_item(
                TableName=self._table,
                Key={"client_order_id": {"S": client_order_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(
                "get_item", self._table, {"client_order_id": client_order_id}, exc
            ) from exc
        item = resp.get("Item")
        return _order(item) if item else None

    def find(self, client_order_id: str) -> RecordedOrder | None:
        """The order recorded under ``client_order_id`` (a consistent read), or None."""
        stored = self.get(client_order_id)
        return None if stored is None else recorded_order_from_record(stored)

    def open_orders(self, symbol: str | None = None) -> OpenOrders:
        """The orders of the open-orders index (see :meth:`list_open`) as the services see
        them; a damaged record is left out and reported (see :func:`read_open_orders`)."""
        return read_open_orders(self.list_open(symbol))

    def all_orders(self) -> OpenOrders:
        """Every order of the ledger as aggregates (a full read); the records that could not be
        read are left out and named in ``.unreadable``."""
        return read_open_orders(self.list_orders())

    def list_orders(self) -> list[dict[str, Any]]:
        """Every order ever recorded (a full Scan: the trading cycle's valuation, reports and
        audits; the open orders alone come from the index: :meth:`list_open`)."""
        return sorted(
            (_strip_index(o) for o in _scan_all(self._client, self._table)),
            key=lambda o: str(o["client_order_id"]),
        )

    def list_open(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """The orders the execution cycle still has to look at (NEW, sent and not finished, or
        finished with a fill not yet in the positions), from the sparse open-orders index: a
        Query whose cost follows the open orders, not the history. ``symbol`` narrows it to
        one symbol. The index is eventually consistent (an order written a moment ago by
        another worker may be missing): read an order by its key before acting on it."""
        values: dict[str, Any] = {":open": {"S": _OPEN}}
        condition = "#pk = :open"
        names = {"#pk": OPEN_PK}
        if symbol is not None:
            condition += " AND begins_with(#sk, :prefix)"
            names["#sk"] = OPEN_SK
            values[":prefix"] = {"S": f"{symbol}#"}
        out: list[dict[str, Any]] = []
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=OPEN_ORDERS_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            for page in pages:
                out.extend(_order(item) for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("query(open-orders)", self._table, {OPEN_PK: _OPEN}, exc) from exc
        return out

    def settle(self, client_order_id: str) -> bool:
        """Take a terminal order out of the open-orders index (its fill is in the positions).
        False if the order is not terminal (or missing): it stays indexed."""
        names = {"#s": "status", "#pk": OPEN_PK, "#sk": OPEN_SK}
        terminal = sorted(s.value for s in TERMINAL_STATUSES)
        values = {f":t{i}": {"S": v} for i, v in enumerate(terminal)}
        return self._update_if(
            "update_item(settle)",
            client_order_id,
            UpdateExpression="REMOVE #pk, #sk",
            ConditionExpression=f"#s IN ({', '.join(values)})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def note(self, client_order_id: str, expected: OrderStatus, facts: OrderFacts) -> bool:
        """Write ``facts`` onto an order whose status is still ``expected`` (bookkeeping of the
        cycle, e.g. when to look it up again); False (nothing written) otherwise."""
        if facts.empty:
            raise ValueError("note needs at least one fact")
        names: dict[str, str] = {"#s": "status"}
        values: dict[str, Any] = {":expected": expected.value}
        sets: list[str] = []
        for i, (name, value) in enumerate(sorted(facts_record(facts).items())):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        return self._update_if(
            "update_item(note)",
            client_order_id,
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#s = :expected",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )

    def backfill_open_index(self) -> int:
        """Index the non-terminal orders recorded before the open-orders index existed (a full
        Scan, once per deployment: the execution cycle runs it while its state marker is
        absent). Returns how many orders were indexed."""
        added = 0
        for order in _scan_all(self._client, self._table):
            status = order.get("status")
            if OPEN_PK in order or _terminal(status):
                continue
            keys = _open_keys(order)
            # a status that cannot be read is indexed too: every read of the open orders then
            # names the record (its coin blocked) instead of never seeing it
            values: dict[str, Any] = {":pk": keys[OPEN_PK], ":sk": keys[OPEN_SK]}
            if status is None:
                condition = "attribute_not_exists(#s)"
            else:
                condition, values[":status"] = "#s = :status", status
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"client_order_id": {"S": str(order["client_order_id"])}},
                    UpdateExpression="SET #pk = :pk, #sk = :sk",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#pk": OPEN_PK, "#sk": OPEN_SK, "#s": "status"},
                    ExpressionAttributeValues=to_item(values),
                )
            except (ClientError, BotoCoreError) as exc:
                if _is_condition_failure(exc):
                    continue  # moved meanwhile: whoever moved it indexed it
                raise StoreError(
                    "update_item(index)",
                    self._table,
                    {"client_order_id": order["client_order_id"]},
                    exc,
                ) from exc
            added += 1
        return added

    def update_status(self, client_order_id: str, change: StatusChange) -> bool:
        """Apply ``change`` (a legal move, checked when it was built) if the stored status is
        still ``change.expected``: False (nothing written) otherwise or if the order is missing.

        The move's facts (fills, exchange order id, reasons) and ``updated_at`` are written in
        the same update, and the move is appended to the order's ``history`` (status, at).
        When the change settles (by default a terminal move without a fill, see
        :attr:`StatusChange.settles`) the order leaves the open-orders index in the same write;
        a terminal move with a fill stays indexed until :meth:`settle`.
        """
        names: dict[str, str] = {"#s": "status", "#id": "client_order_id", "#h": "history"}
        values: dict[str, Any] = {
            ":expected": change.expected.value,
            ":new": change.new.value,
            ":step": [history_step(change)],
            ":none": [],
        }
        sets = ["#s = :new", "#h = list_append(if_not_exists(#h, :none), :step)"]
        extra = status_change_record(change)
        del extra["status"]
        for i, (name, value) in enumerate(sorted(extra.items())):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        removes = ""
        if change.settles:
            names["#opk"], names["#osk"] = OPEN_PK, OPEN_SK
            removes = " REMOVE #opk, #osk"
        return self._update_if(
            "update_item(status)",
            client_order_id,
            UpdateExpression="SET " + ", ".join(sets) + removes,
            ConditionExpression="attribute_exists(#id) AND #s = :expected",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )

    def _update_if(self, operation: str, client_order_id: str, **update: Any) -> bool:
        """A conditional ``update_item`` of one order: False when its condition fails (nothing
        written), :class:`StoreError` on any other error."""
        try:
            self._client.update_item(
                TableName=self._table, Key={"client_order_id": {"S": client_order_id}}, **update
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError(
                operation, self._table, {"client_order_id": client_order_id}, exc
            ) from exc
        return True


def _terminal(status: Any) -> bool:
    """Whether a stored status is a terminal one (one that cannot be read is not)."""
    try:
        return OrderStatus(str(status)) in TERMINAL_STATUSES
    except ValueError:
        return False


def _open_keys(order: Mapping[str, Any]) -> dict[str, str]:
    return {OPEN_PK: _OPEN, OPEN_SK: f"{order.get('symbol', '')}#{order['client_order_id']}"}


def _strip_index(order: dict[str, Any]) -> dict[str, Any]:
    order.pop(OPEN_PK, None)
    order.pop(OPEN_SK, None)
    return order


def _order(item: Mapping[str, Any]) -> dict[str, Any]:
    return _strip_index(from_item(item))


class DynamoPositionStore:
    """Positions keyed by ``symbol`` with an optimistic ``version`` counter."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def get_all(self) -> dict[str, dict[str, Any]]:
        return {str(p["symbol"]): p for p in _scan_all(self._client, self._table)}

    def load_all(self) -> PositionBook:
        """Every position, as the aggregate, by symbol; a damaged record is left out and
        reported (see :func:`read_positions`)."""
        return read_positions(self.get_all())

    def get(self, symbol: str) -> dict[str, Any] | None:
        try:
            resp = self._client.get_item(
                TableName=self._table, Key={"symbol": {"S": symbol}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("get_item", self._table, {"symbol": symbol}, exc) from exc
        item = resp.get("Item")
        return from_item(item) if item else None

    def upsert(self, position: Mapping[str, Any], expected_version: int | None) -> bool:
        """Write ``position`` with ``version = expected_version + 1`` (1 for a new position).

        ``expected_version=None`` means "must not exist yet". False (nothing written) if the
        stored version differs: re-read and retry.
        """
        symbol = position.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ValueError("position needs a non-empty string symbol")
        new_version = 1 if expected_version is None else expected_version + 1
        item = to_item({**position, "version": new_version})
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(symbol)"}
        else:
            condition = {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item", self._table, {"symbol": symbol}, exc) from exc
        return True

    def load(self, symbol: str) -> tuple[Position | None, int | None]:
        """The aggregate of ``symbol``'s position and its stored version (None, None: none)."""
        stored = self.get(symbol)
        if stored is None:
            return None, None
        return position_from_record(stored), int(stored["version"])

    def save(self, position: Position, expected_version: int | None, at: datetime) -> bool:
        """Write ``position`` under the optimistic version: True when written, False when
        someone else wrote first (reload and apply again)."""
        return self.upsert(position_record(position, at), expected_version)

    def delete(self, symbol: str, expected_version: int) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"symbol": {"S": symbol}},
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("delete_item", self._table, {"symbol": symbol}, exc) from exc
        return True


class DynamoStateStore:
    """Small state records under (pk, sk): watermarks, breakers, risk transitions, audit."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None:
        if "pk" in item or "sk" in item:
            raise ValueError("item must not carry its own pk/sk")
        try:
            self._client.put_item(TableName=self._table, Item=to_item({**item, "pk": pk, "sk": sk}))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("put_item", self._table, {"pk": pk, "sk": sk}, exc) from exc

    def put_new(self, pk: str, sk: str, item: Mapping[str, Any]) -> bool:
        """Insert if (pk, sk) is absent; False (nothing written) if it exists."""
        return self._conditional_put(
            pk, sk, item, {"ConditionExpression": "attribute_not_exists(pk)"}
        )

    def put_if(self, pk: str, sk: str, item: Mapping[str, Any], field: str, expected: str) -> bool:
        """Overwrite if the stored ``field`` equals ``expected``; False (nothing written) if not."""
        return self._conditional_put(
            pk,
            sk,
            item,
            {
                "ConditionExpression": "#f = :expected",
                "ExpressionAttributeNames": {"#f": field},
                "ExpressionAttributeValues": {":expected": {"S": expected}},
            },
        )

    def put_versioned(
        self, pk: str, sk: str, item: Mapping[str, Any], expected_version: int
    ) -> bool:
        """Optimistic write: store ``item`` with ``version = expected_version + 1`` if the stored
        ``version`` is ``expected_version`` (0: the item, or its version, is absent); False
        (nothing written) if another writer got there first."""
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")
        condition: dict[str, Any] = {"ExpressionAttributeNames": {"#v": "version"}}
        if expected_version == 0:
            condition["ConditionExpression"] = "attribute_not_exists(#v)"
        else:
            condition["ConditionExpression"] = "#v = :v"
            condition["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
        return self._conditional_put(pk, sk, {**item, "version": expected_version + 1}, condition)

    def _conditional_put(
        self, pk: str, sk: str, item: Mapping[str, Any], condition: Mapping[str, Any]
    ) -> bool:
        if "pk" in item or "sk" in item:
            raise ValueError("item must not carry its own pk/sk")
        try:
            self._client.put_item(
                TableName=self._table, Item=to_item({**item, "pk": pk, "sk": sk}), **condition
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item", self._table, {"pk": pk, "sk": sk}, exc) from exc
        return True

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            resp = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("get_item", self._table, {"pk": pk, "sk": sk}, exc) from exc
        item = resp.get("Item")
        if not item:
            return None
        data = from_item(item)
        data.pop("pk", None)
        data.pop("sk", None)
        return data

    def query(self, pk: str, sk_between: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """All items under ``pk`` (with ``low <= sk <= high`` when ``sk_between`` is given),
        ascending by ``sk`` (each dict includes its ``sk``)."""
        out: list[dict[str, Any]] = []
        condition, values = "pk = :pk", {":pk": {"S": pk}}
        if sk_between is not None:
            condition += " AND sk BETWEEN :low AND :high"
            values |= {":low": {"S": sk_between[0]}, ":high": {"S": sk_between[1]}}
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    data = from_item(item)
                    data.pop("pk", None)
                    out.append(data)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("query", self._table, {"pk": pk}, exc) from exc
        return out


MIGRATIONS_PK = "migrations"  # state-table partition of one-time data migrations
OPEN_INDEX_MIGRATION = "orders-open-index"


def ensure_open_index(orders: DynamoOrderStore, state: DynamoStateStore, now: datetime) -> int:
    """Index the open orders recorded before the open-orders index existed, once: the state
    table remembers that it ran. Returns how many orders were indexed (0 when already done)."""
    if state.get(MIGRATIONS_PK, OPEN_INDEX_MIGRATION) is not None:
        return 0
    added = orders.backfill_open_index()
    state.put(MIGRATIONS_PK, OPEN_INDEX_MIGRATION, {"indexed": added, "at": now})
    return added
