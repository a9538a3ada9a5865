"""In-memory fakes of the store-like ports, for tests about logic rather than AWS.

Each fake keeps the contract of its AWS adapter: the orders, positions and state records of
``adapters/dynamodb_store.py`` (the same exactly-once insert, guarded status moves along the
state-transition table, open-orders index, optimistic versions and conditional writes, values
stored as DynamoDB would return them: numbers as ``Decimal``, times as ISO strings, ``None``
dropped), the scan's signals (``adapters/dynamodb_signals.py``: reports stored as JSON, the
newest as-of is the latest), the audit trail (``adapters/audit.py``: validated, sanitized,
append-only entries, newest first) and the kill-switch (``adapters/ssm_killswitch.py``: checked
reason and actor, the write's time from the clock); the S3 lake's stores: the candles
(``LakeStore``, ``adapters/s3_lake.py``), the market caps (``MarketCapStore``,
``adapters/s3_market_caps.py``) and the agents' side data (``FundingStore``,
``SentimentStore``, ``WithdrawalStore``, ``adapters/s3_agent_inputs.py``), with the same object
keys, merges (a rerun writes nothing), refusals, windowed reads and listing orders.
``tests/integration/test_store_contract.py`` and ``tests/integration/test_lake_contract.py`` run
one suite of assertions against each fake and its adapter on moto, so a fake cannot drift from
its adapter.

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
real fitted models; the model registry, SageMaker, SNS, CloudWatch and the health probes
(``ModelRegistry``, ``RegistryReader``, ``TrainingJobs``, ``ModelDeployer``, ``Notifier``,
``MetricReader``, ``HealthProbe``) are exercised by their adapters on moto, since what their
tests check is the stored layout or the AWS call itself.
``tests/unit/test_ports_layout.py`` fails on a port this module does not name.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

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
from cryptosmarttrader.adapters.s3_agent_inputs import (
    SENTIMENT_SCHEMA,
    funding_key,
    sentiment_key,
    withdrawals_key,
    withdrawals_status_key,
)
from cryptosmarttrader.adapters.s3_lake import _prefix as lake_prefix  # its partition checks
from cryptosmarttrader.adapters.s3_lake import partition_key
from cryptosmarttrader.adapters.s3_market_caps import market_cap_key
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain.agents.arbitrage import WITHDRAWAL_SCHEMA
from cryptosmarttrader.domain.agents.funding import FUNDING_SCHEMA
from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.book import OpenOrders, PositionBook, RecordedOrder
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.coins import MARKET_CAP_SCHEMA, empty_market_caps
from cryptosmarttrader.domain.killswitch import MAX_ACTOR_CHARS, MAX_REASON_CHARS, check_text
from cryptosmarttrader.domain.market import OHLCV_SCHEMA, empty_ohlcv
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus
from cryptosmarttrader.domain.types import ms_from_utc

__all__ = [
    "InMemoryAgentInputs",
    "InMemoryAuditTrail",
    "InMemoryKillSwitch",
    "InMemoryLake",
    "InMemoryMarketCapLake",
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
        self,
        on: bool,
        reason: str,
        actor: str,
        *,
        at: datetime | None = None,
        golive_rollback: str | None = None,
    ) -> KillSwitchStatus:
        when = at or (self._clock.now() if self._clock is not None else self._status.at)
        self._status = KillSwitchStatus(
            on=on,
            reason=check_text("reason", reason, MAX_REASON_CHARS),
            actor=check_text("actor", actor, MAX_ACTOR_CHARS),
            at=when,
            golive_rollback=golive_rollback,
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


# --------------------------------------------------------------------------- the S3 lake


def _merged(
    old: pl.DataFrame | None, new: pl.DataFrame, keys: tuple[str, ...]
) -> pl.DataFrame | None:
    """``new`` merged into ``old`` as the S3 adapters merge an object (union, the newer row wins
    on ``keys``, sorted); ``None`` when the object would not change (the adapter skips the PUT)."""
    rows = new if old is None else pl.concat([old, new])
    rows = rows.unique(subset=list(keys), keep="last", maintain_order=True).sort(*keys)
    return None if old is not None and rows.equals(old) else rows


def _month(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date().replace(day=1)


class InMemoryLake:
    """The ``LakeStore`` of ``adapters/s3_lake.py`` (with the scan's ``symbols`` and ``days``)
    in memory: the same partition keys (``partition_key``: one object per UTC date under 4 h
    bars, one per UTC month from 4 h on), the same merge (union, the newer row wins on ``ts``, a
    rerun writes nothing and returns no key), the same refusals (``ValueError`` for a path-like
    symbol, an incomplete frame, null keys, an inverted window) and the same reads (an unknown
    series is an empty ``OHLCV_SCHEMA`` frame, rows cut to ``start <= ts <= end``, sorted). A
    merge is atomic, as the adapter's conditional create / ``If-Match`` PUT makes it: concurrent
    writers of one partition never drop each other's bars (the adapter's giving up after
    ``MERGE_ATTEMPTS`` conflicts in a row is S3 contention, not modelled here). ``objects``
    maps each key to its rows."""

    def __init__(self) -> None:
        self.objects: dict[str, pl.DataFrame] = {}
        self._lock = threading.Lock()

    def write_candles(self, frame: pl.DataFrame, exchange: str, timeframe: str) -> list[str]:
        missing = set(OHLCV_SCHEMA) - set(frame.columns)
        if missing:
            raise ValueError(f"candles frame lacks columns {sorted(missing)}")
        if frame.is_empty():
            return []
        frame = frame.select(list(OHLCV_SCHEMA)).cast(pl.Schema(OHLCV_SCHEMA))
        if frame["ts"].null_count() or frame["symbol"].null_count():
            raise ValueError("candles frame has null ts or symbol")
        opened = frame.with_columns(_date=pl.from_epoch("ts", time_unit="ms").dt.date())
        parts: dict[str, list[pl.DataFrame]] = {}
        for (symbol, day), part in opened.group_by("symbol", "_date", maintain_order=True):
            assert isinstance(day, date)
            key = partition_key(exchange, timeframe, str(symbol), day)
            parts.setdefault(key, []).append(part.drop("_date"))
        written: list[str] = []
        with self._lock:
            for key, frames in parts.items():
                merged = _merged(self.objects.get(key), pl.concat(frames), ("ts",))
                if merged is not None:
                    self.objects[key] = merged
                    written.append(key)
        return sorted(written)

    def read_candles(
        self, exchange: str, timeframe: str, symbol: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        if end_ms < start_ms:
            raise ValueError(f"end {end} is before start {start}")
        prefix = lake_prefix(exchange, timeframe, symbol)
        with self._lock:
            frames = [rows for key, rows in self.objects.items() if key.startswith(prefix)]
        if not frames:
            return empty_ohlcv()
        return (
            pl.concat(frames)
            .filter(pl.col("ts").is_between(start_ms, end_ms))
            .unique(subset="ts", keep="last", maintain_order=True)
            .sort("ts")
        )

    def symbols(self, exchange: str, timeframe: str) -> list[str]:
        prefix = f"exchange={exchange}/timeframe={timeframe}/symbol="
        with self._lock:
            slugs = {
                k.removeprefix(prefix).split("/")[0] for k in self.objects if k.startswith(prefix)
            }
        return sorted(slug.replace("-", "/", 1) for slug in slugs)

    def days(self, exchange: str, timeframe: str, symbol: str) -> list[date]:
        prefix = lake_prefix(exchange, timeframe, symbol)
        with self._lock:
            frames = [rows for key, rows in self.objects.items() if key.startswith(prefix)]
        found: set[date] = set()
        for rows in frames:
            found.update(pl.from_epoch(rows["ts"], time_unit="ms").dt.date().to_list())
        return sorted(found)


class InMemoryMarketCapLake:
    """The ``MarketCapStore`` of ``adapters/s3_market_caps.py`` in memory: the same month keys
    (``market_cap_key``, every coin of a UTC month in one object), the same merge on (coin, ts)
    returning the keys that changed, reads cut to ``start <= ts <= end`` and to the coins asked
    for, sorted by coin and ts (an empty ``MARKET_CAP_SCHEMA`` frame when none)."""

    def __init__(self, source: str = "coingecko") -> None:
        market_cap_key(source, date(2000, 1, 1))  # the adapter's check of the source name
        self._source = source
        self.objects: dict[str, pl.DataFrame] = {}
        self._lock = threading.Lock()

    def write_market_caps(self, frame: pl.DataFrame) -> list[str]:
        if frame.is_empty():
            return []
        rows = frame.select(list(MARKET_CAP_SCHEMA)).cast(pl.Schema(MARKET_CAP_SCHEMA))
        if rows["coin"].null_count() or rows["ts"].null_count():
            raise ValueError("market-cap frame has null coin or ts")
        written: list[str] = []
        with self._lock:
            for key, part in _by_month(rows, lambda month: market_cap_key(self._source, month)):
                merged = _merged(self.objects.get(key), part, ("coin", "ts"))
                if merged is not None:
                    self.objects[key] = merged
                    written.append(key)
        return sorted(written)

    def read_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> pl.DataFrame:
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        if end_ms < start_ms:
            raise ValueError(f"end {end} is before start {start}")
        if not coins:
            return empty_market_caps()
        with self._lock:
            frames = list(self.objects.values())
        if not frames:
            return empty_market_caps()
        return (
            pl.concat(frames)
            .filter(pl.col("coin").is_in(list(coins)) & pl.col("ts").is_between(start_ms, end_ms))
            .sort("coin", "ts")
        )


def _by_month(rows: pl.DataFrame, key_of: Callable[[date], str]) -> list[tuple[str, pl.DataFrame]]:
    months = rows.with_columns(_m=pl.from_epoch("ts", time_unit="ms").dt.truncate("1mo").dt.date())
    out: list[tuple[str, pl.DataFrame]] = []
    for (month,), part in months.group_by("_m", maintain_order=True):
        assert isinstance(month, date)
        out.append((key_of(month), part.drop("_m")))
    return out


class InMemoryAgentInputs:
    """The agents' side data of ``adapters/s3_agent_inputs.py`` in memory: the
    ``FundingStore`` (month objects per exchange and pair, ``funding_key``), the
    ``SentimentStore`` (year objects per source, ``sentiment_key``) and the
    ``WithdrawalStore`` (month objects per exchange merged on (coin, ts),
    ``withdrawals_key``, and the last run's status), with the reads the scan's
    ``LakeAgentData`` makes. The same keys and name checks (``ValueError`` for a name that
    cannot be a partition), the same merges (the newer row wins, a rerun returns no key),
    reads cut to ``start <= ts <= end`` and sorted, empty frames of the dataset's schema when
    nothing is stored, and ``None`` for a venue whose withdrawals run recorded no status."""

    def __init__(self) -> None:
        self.objects: dict[str, pl.DataFrame] = {}
        self.statuses: dict[str, tuple[int, str | None]] = {}
        self._lock = threading.Lock()

    def _write(
        self,
        parts: list[tuple[str, pl.DataFrame]],
        keys: tuple[str, ...] = ("ts",),
    ) -> list[str]:
        written: list[str] = []
        with self._lock:
            for key, part in parts:
                merged = _merged(self.objects.get(key), part, keys)
                if merged is not None:
                    self.objects[key] = merged
                    written.append(key)
        return sorted(written)

    def _read(
        self, keys: Sequence[str], schema: Mapping[str, pl.DataType], start: datetime, end: datetime
    ) -> pl.DataFrame:
        start_ms, end_ms = ms_from_utc(start), ms_from_utc(end)
        with self._lock:
            frames = [self.objects[k] for k in keys if k in self.objects]
        if not frames:
            return pl.DataFrame(schema=dict(schema))
        return pl.concat(frames).filter(pl.col("ts").is_between(start_ms, end_ms))

    @staticmethod
    def _months(start: datetime, end: datetime) -> list[date]:
        first, last = _month(ms_from_utc(start)), _month(ms_from_utc(end))
        out = []
        while first <= last:
            out.append(first)
            first = (first + timedelta(days=32)).replace(day=1)
        return out

    def write_funding(self, frame: pl.DataFrame, exchange: str) -> list[str]:
        if frame.is_empty():
            return []
        rows = frame.select(list(FUNDING_SCHEMA)).cast(pl.Schema(FUNDING_SCHEMA))
        parts: list[tuple[str, pl.DataFrame]] = []
        for (symbol,), per_symbol in rows.group_by("symbol", maintain_order=True):
            parts += _by_month(per_symbol, lambda m, s=str(symbol): funding_key(exchange, s, m))
        return self._write(parts)

    def read_funding(
        self, exchange: str, symbol: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        keys = [funding_key(exchange, symbol, m) for m in self._months(start, end)]
        rows = self._read(keys, FUNDING_SCHEMA, start, end)
        return rows.unique(subset="ts", keep="last").sort("ts")

    def write_sentiment(self, frame: pl.DataFrame, source: str) -> list[str]:
        if frame.is_empty():
            return []
        rows = frame.select(list(SENTIMENT_SCHEMA)).cast(pl.Schema(SENTIMENT_SCHEMA))
        years = rows.with_columns(_y=pl.from_epoch("ts", time_unit="ms").dt.year())
        parts = [
            (sentiment_key(source, int(str(year))), part.drop("_y"))
            for (year,), part in years.group_by("_y", maintain_order=True)
        ]
        return self._write(parts)

    def read_sentiment(self, source: str, start: datetime, end: datetime) -> pl.DataFrame:
        first, last = start.astimezone(UTC).year, end.astimezone(UTC).year
        keys = [sentiment_key(source, year) for year in range(first, last + 1)]
        rows = self._read(keys, SENTIMENT_SCHEMA, start, end)
        return rows.unique(subset="ts", keep="last").sort("ts")

    def write_withdrawals(self, frame: pl.DataFrame, exchange: str) -> list[str]:
        if frame.is_empty():
            return []
        rows = frame.select(list(WITHDRAWAL_SCHEMA)).cast(pl.Schema(WITHDRAWAL_SCHEMA))
        parts = _by_month(rows, lambda m: withdrawals_key(exchange, m))
        return self._write(parts, ("symbol", "ts"))

    def read_withdrawals(self, exchange: str, start: datetime, end: datetime) -> pl.DataFrame:
        keys = [withdrawals_key(exchange, m) for m in self._months(start, end)]
        rows = self._read(keys, WITHDRAWAL_SCHEMA, start, end)
        return rows.unique(subset=["symbol", "ts"], keep="last").sort("symbol", "ts")

    def write_withdrawal_status(self, exchange: str, observed_ms: int, reason: str | None) -> None:
        key = withdrawals_status_key(exchange)
        with self._lock:
            self.statuses[key] = (observed_ms, reason)

    def read_withdrawal_status(self, exchange: str) -> tuple[int, str | None] | None:
        with self._lock:
            return self.statuses.get(withdrawals_status_key(exchange))
