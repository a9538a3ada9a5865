"""Ports: the Protocols the services depend on. Adapters implement them; the domain knows none.

Every Protocol of the runtime package is declared here, grouped by the use case that needs it
(market data and the lake, orders and positions, the kill-switch and metrics, venues, models,
state records, the agents' inputs ingest, the paper venue's book, the dashboard, progress).
The one exception is :class:`~cryptosmarttrader.domain.clock.Clock`, declared by the domain
(pure code takes a clock) and re-exported here. ``tests/fakes.py`` holds an in-memory fake of
each store-like port, held to its AWS adapter by ``tests/integration/test_store_contract.py``.

Frames exchanged through ports are polars DataFrames with the schemas declared in
:mod:`cryptosmarttrader.domain.market`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cryptosmarttrader.domain.clock import Clock

if TYPE_CHECKING:
    # Annotations only (``from __future__ import annotations``): a Lambda bundle imports this
    # module without numpy, polars' optional parts or the ML domain modules.
    import numpy as np
    import numpy.typing as npt
    import polars as pl

    from cryptosmarttrader.domain.agents.registry import MarketState
    from cryptosmarttrader.domain.agents.sentiment import SentimentReading
    from cryptosmarttrader.domain.aggregates import Order, Position
    from cryptosmarttrader.domain.book import OpenOrders, PositionBook, RecordedOrder
    from cryptosmarttrader.domain.coins import MarketCapBatch
    from cryptosmarttrader.domain.drift import DriftReference
    from cryptosmarttrader.domain.exchange import (
        ExchangeCapabilities,
        ExchangeOrder,
        ExchangeOrderList,
        FundingRate,
        OrderBook,
        OrderType,
        Ticker,
    )
    from cryptosmarttrader.domain.exchange import Market as ExchangeMarket
    from cryptosmarttrader.domain.health import HealthCheck
    from cryptosmarttrader.domain.metric_names import MetricSpec
    from cryptosmarttrader.domain.model_canary import (
        ModelCard,
        ModelVersion,
        ProductionPointer,
        VersionChange,
    )
    from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
    from cryptosmarttrader.domain.orders import OrderStatus, ProtectiveListIds
    from cryptosmarttrader.domain.risk import RiskState, RiskTransition
    from cryptosmarttrader.domain.slo import MetricQuery
    from cryptosmarttrader.domain.training import TrainingJobRequest, TrainingJobState
    from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol

__all__ = [
    "AgentData",
    "AgentDataUnavailableError",
    "AuditReader",
    "AuditRecord",
    "AuditTrail",
    "BalanceSource",
    "BarSource",
    "CandleSource",
    "Clock",
    "ConditionalStateStore",
    "Exchange",
    "FundingStore",
    "HealthProbe",
    "KillSwitch",
    "KillSwitchControl",
    "KillSwitchState",
    "KillSwitchValue",
    "LakeStore",
    "MarketCapSource",
    "MarketCapStore",
    "MarketData",
    "MarketRulesGateway",
    "MetricReader",
    "Metrics",
    "ModelDeployer",
    "ModelRegistry",
    "Notifier",
    "OrderGateway",
    "OrderLedger",
    "OrderListGateway",
    "OrderStore",
    "PaperBook",
    "PerpetualVenue",
    "PositionLedger",
    "PositionStore",
    "Predictor",
    "PredictorTrainer",
    "Progress",
    "ProtectiveGateway",
    "Ranker",
    "RankerTrainer",
    "RankerUnavailableError",
    "RecordedCandles",
    "RegistryReader",
    "RegistryStoreError",
    "RiskLevelSource",
    "RiskReader",
    "SentimentSource",
    "SentimentStore",
    "SignalHistory",
    "SignalReader",
    "SignalStore",
    "SliRecorder",
    "SpotVenue",
    "StateReader",
    "StateRecords",
    "StateStore",
    "SweepOutcome",
    "TrainingJobs",
    "VenueSweep",
    "WithdrawalStore",
    "WithdrawalVenue",
]


class MarketData(Protocol):
    """Real market data as of a point in time. Nothing after ``asof`` may be returned."""

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        """Daily bars for every coin, ``DAILY_SCHEMA``, with ``ts <= asof`` only."""
        ...

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Candles for one symbol, ``OHLCV_SCHEMA``, ``start <= ts <= end``."""
        ...


class AgentDataUnavailableError(RuntimeError):
    """The store of the agents' side data could not be read now (a throttled or failed call):
    the agents needing it abstain with this reason; the scan goes on."""


class AgentData(Protocol):
    """What the agents need beside the daily universe (funding, other venues' prices,
    sentiment), as of a decision time."""

    def state(self, universe: pl.DataFrame, asof_ms: int) -> MarketState:
        """The agents' market state at ``asof_ms`` for the coins of ``universe``: nothing after
        ``asof_ms``, and a stated reason (``MarketState.abstain_notes``, ``sentiment_unavailable``)
        wherever an input is missing. A store that cannot be read raises
        :class:`AgentDataUnavailableError` (or ``ValueError`` / ``OSError``)."""
        ...


class LakeStore(Protocol):
    def write_candles(self, frame: pl.DataFrame, exchange: str, timeframe: str) -> list[str]:
        """Write candles partitioned by exchange/timeframe/symbol/date. Returns object keys."""
        ...

    def read_candles(
        self, exchange: str, timeframe: str, symbol: str, start: datetime, end: datetime
    ) -> pl.DataFrame: ...


class OrderStore(Protocol):
    """The orders table as the services see it: aggregates in, aggregates out (its attribute
    names are the adapter's alone)."""

    def record(self, order: Order) -> bool:
        """Insert the aggregate exactly once: True when written, False (nothing written) when
        its client order ID is already recorded."""
        ...

    def find(self, client_order_id: str) -> RecordedOrder | None:
        """The recorded order (the aggregate with its recorded facts), read by key."""
        ...

    def open_orders(self, symbol: str | None = None) -> OpenOrders:
        """The orders not yet finished (NEW included), optionally of one symbol, without
        reading the history (the DynamoDB store queries its open-orders index); a record that
        cannot be read is left out and reported in :attr:`OpenOrders.unreadable` (never raised:
        one damaged record never stops the book from being read)."""
        ...

    def all_orders(self) -> OpenOrders:
        """Every order of the ledger (a full read), finished ones included; unreadable records
        left out and named as in :meth:`open_orders`."""
        ...


class OrderLedger(OrderStore, Protocol):
    """Orders keyed by client order ID with guarded status moves and an index of the orders
    that still need the execution cycle (``DynamoOrderStore``)."""

    def update_status(self, client_order_id: str, change: StatusChange) -> bool:
        """Apply ``change`` (its move, its facts, its history step, leaving the open index when
        it settles) if the stored status is still ``change.expected``; False (nothing written)
        otherwise or when the order is missing."""
        ...

    def note(self, client_order_id: str, expected: OrderStatus, facts: OrderFacts) -> bool:
        """Write ``facts`` (at least one) onto an order whose status is still ``expected``;
        False (nothing written) otherwise."""
        ...

    def settle(self, client_order_id: str) -> bool: ...


class SweepOutcome(Protocol):
    """What a venue sweep reports (``services.execution.SweepReport``): the orders it kept
    resting (client order ID → why), and, when it kept protection, the positions held with no
    protective sell on the venue (symbol → why)."""

    @property
    def kept(self) -> Mapping[str, str]: ...

    @property
    def unprotected(self) -> Mapping[str, str]: ...


class VenueSweep(Protocol):
    """The execution service's cancel sweep on the deployment's venue
    (``ExecutionService.cancel_open_orders``): each open order cancelled at the venue, the
    ledger moved on the venue's answer, an order whose answer is lost left ``CANCEL_PENDING``."""

    @property
    def mode(self) -> str:
        """The venue's mode (``testnet`` / ``live``)."""
        ...

    def cancel_open_orders(self, reason: str, *, keep_protection: bool = False) -> SweepOutcome: ...


class PositionStore(Protocol):
    def load_all(self) -> PositionBook:
        """Every position as the aggregate, by symbol; a record that cannot be read is left
        out and reported in :attr:`PositionBook.unreadable` (never raised)."""
        ...


class PositionLedger(PositionStore, Protocol):
    """Positions keyed by symbol with an optimistic version (``DynamoPositionStore``); the
    aggregate is loaded and saved whole."""

    def load(self, symbol: str) -> tuple[Position | None, int | None]: ...

    def save(self, position: Position, expected_version: int | None, at: datetime) -> bool:
        """Write under the optimistic version: True when written, False (someone else wrote
        first: load and apply again)."""
        ...


class RiskLevelSource(Protocol):
    """Where the current risk level comes from (``RiskStateService``)."""

    def load(self) -> RiskState: ...


class KillSwitchState(Protocol):
    @property
    def on(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def known(self) -> bool:
        """False when the switch could not be read or parsed (then ``on`` is True: fail
        closed). Send nothing on an unknown switch, and destroy nothing either: cancelling
        decisions or open orders needs a known ON."""
        ...

    @property
    def actor(self) -> str: ...

    @property
    def golive_rollback(self) -> str | None:
        """The run whose go-live rollback engaged the switch (``domain.golive``), else None."""
        ...


class KillSwitch(Protocol):
    def is_on(self) -> bool:
        """True when trading must stop. Unreadable parameter counts as ON (fail closed)."""
        ...

    def status(self) -> KillSwitchState:
        """Current state with its reason (fail closed: unreadable → on, ``known`` False, the
        reason says why)."""
        ...


class Metrics(Protocol):
    def add(
        self,
        name: str,
        value: float,
        unit: str = "Count",
        dimensions: Mapping[str, str] | None = None,
    ) -> None: ...

    def flush(self) -> None: ...


class SliRecorder(Protocol):
    """Publishes go-live SLIs (``metric_names.SLIS``) under this deployment's ``Stage``.

    Implemented by ``adapters.emf_metrics.StageMetrics``; values of one call form one record.
    """

    def emit(self, *values: tuple[MetricSpec, float]) -> None: ...


class OrderGateway(Protocol):
    """The trading half of a venue (``CcxtExchange``, ``CcxtVenue``, ``PaperExchange``): what
    the execution service sends orders through."""

    @property
    def capabilities(self) -> ExchangeCapabilities: ...

    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        """Never retried; a timeout raises ``OrderStateUnknownError`` (reconcile by client id)."""
        ...

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None: ...

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None: ...


@runtime_checkable
class MarketRulesGateway(Protocol):
    """A venue whose order rules (amount step, minimum amount and notional) can be read
    (``CcxtVenue``): what it will not sell of a holding is dust."""

    def market(self, symbol: Symbol) -> ExchangeMarket: ...

    def last_price(self, symbol: Symbol) -> Price:
        """The venue's last traded price, which a market order is sized at; raises
        ``MarketRulesUnknownError`` when it cannot be read now."""
        ...


@runtime_checkable
class ProtectiveGateway(Protocol):
    """A venue on which a held position's protective stop can rest (``CcxtVenue`` on Binance
    spot). A venue without it (the paper venue) is protected by the hourly exit rule only."""

    @property
    def supports_protective_stops(self) -> bool: ...

    def create_stop_order(
        self,
        symbol: Symbol,
        quantity: Quantity,
        stop_price: Price,
        limit_price: Price,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        """A stop-limit sell; never retried (a timeout raises ``OrderStateUnknownError``)."""
        ...

    def market_sell_refusal(
        self, symbol: Symbol, quantity: Quantity, price_if_unread: Price | None = None
    ) -> str | None:
        """Why the venue would refuse a market sell of ``quantity`` of ``symbol`` now (its lot
        size, its minimum notional at the last price: what a flatten sends), or None when it
        would take it, or when its rules cannot be read (the sale is then tried). A last price
        that cannot be read is replaced by ``price_if_unread``; without one, the reason is
        that the sale cannot be sized (in doubt, refused)."""
        ...


@runtime_checkable
class OrderListGateway(Protocol):
    """A venue on which a held position's take-profit and stop rest together as one OCO order
    list (``CcxtVenue`` on Binance spot: ``POST /api/v3/orderList/oco``): the venue fills one leg
    and expires the other. A venue without it keeps the plain stop (:class:`ProtectiveGateway`)
    or the hourly exit rule."""

    @property
    def supports_protective_order_lists(self) -> bool: ...

    def create_protective_oco(
        self,
        symbol: Symbol,
        quantity: Quantity,
        take_profit: Price,
        stop_price: Price,
        limit_price: Price,
        ids: ProtectiveListIds,
    ) -> ExchangeOrderList:
        """A SELL OCO: a ``LIMIT_MAKER`` at ``take_profit`` and a ``STOP_LOSS_LIMIT`` at
        ``stop_price`` / ``limit_price``, for ``quantity``. Never retried: a timeout raises
        ``OrderStateUnknownError`` (look the list up by its client ID)."""
        ...

    def fetch_order_list(
        self, symbol: Symbol, list_client_order_id: ClientOrderId
    ) -> ExchangeOrderList | None:
        """The list we tagged with ``list_client_order_id`` and its legs, or None."""
        ...

    def cancel_order_list(self, symbol: Symbol, list_client_order_id: ClientOrderId) -> None:
        """Cancel both legs by the list's client ID. Idempotent: an unknown or finished list
        is already not open."""
        ...


class BalanceSource(Protocol):
    """A real venue account's balances (the ledger's counterpart, reconciled every cycle)."""

    def fetch_balances(self) -> dict[str, Decimal | None]:
        """Total per asset (free + locked in open orders); zero totals left out, ``None`` where
        the venue did not state one."""
        ...


class Exchange(OrderGateway, Protocol):
    """One trading venue. Implemented by ``adapters.ccxt_exchange.CcxtExchange``.

    Every model returned is validated (see :mod:`cryptosmarttrader.domain.exchange`); failures
    raise that module's error taxonomy, never library exceptions.
    """

    def fetch_markets(self) -> list[ExchangeMarket]: ...

    def fetch_tickers(self, symbols: Sequence[Symbol]) -> dict[Symbol, Ticker]: ...

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        """Closed candles only, ``OHLCV_SCHEMA``, ``since_ms <= ts <= until_ms``; gaps kept."""
        ...

    def fetch_order_book(self, symbol: Symbol, depth: int) -> OrderBook: ...

    def fetch_funding_rates(
        self, symbol: Symbol, since_ms: int, until_ms: int
    ) -> list[FundingRate]:
        """Raises ``NotSupportedByExchange`` where the venue has no funding."""
        ...


class Predictor(Protocol):
    """A fitted probability model over named feature columns (NaN = missing value)."""

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def predict_proba(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """P(positive class) per row of ``features`` (n × len(feature_names))."""
        ...


class PredictorTrainer(Protocol):
    """Fits a :class:`Predictor`. Same inputs and seed → same model (deterministic)."""

    def fit(
        self,
        features: npt.NDArray[np.float64],
        labels: npt.NDArray[np.float64],
        feature_names: tuple[str, ...],
    ) -> Predictor: ...


class RankerUnavailableError(RuntimeError):
    """The ranker that serves the model could not score (its endpoint failed or answered
    something unusable): the model's agents (ml, ensemble) abstain with this reason; nothing
    else scores in its place."""


class Ranker(Protocol):
    """A fitted ranking model over named feature columns: higher score = ranked first. Scores
    only order coins within one decision day; they are not probabilities. A served ranker that
    cannot answer raises :class:`RankerUnavailableError`."""

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def score(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def to_bytes(self) -> bytes: ...


class RankerTrainer(Protocol):
    """Fits a :class:`Ranker` on graded labels grouped by decision day (deterministic)."""

    def fit(
        self,
        features: npt.NDArray[np.float64],
        grades: npt.NDArray[np.float64],
        groups: npt.NDArray[np.int64],
        feature_names: tuple[str, ...],
    ) -> Ranker: ...


class SignalStore(Protocol):
    """The scan's published signals: the latest report and one per as-of date."""

    def save(self, asof_iso: str, report: Mapping[str, Any]) -> None: ...

    def latest(self) -> dict[str, Any] | None: ...


class MetricReader(Protocol):
    """Metric statistics over ``[start, end)``. Implemented by ``adapters.cloudwatch_metric_reader``.

    Returns, per ``query_id``, the (bucket start, value) pairs that had data, oldest first.
    """

    def read(
        self, queries: Sequence[MetricQuery], start: datetime, end: datetime
    ) -> dict[str, list[tuple[datetime, float]]]: ...


class Notifier(Protocol):
    """Tells operators something happened. Implemented by ``adapters.sns_notifier``."""

    def publish(self, subject: str, message: Mapping[str, Any]) -> str:
        """Send ``message`` (JSON-able); returns the message id."""
        ...


class RegistryStoreError(RuntimeError):
    """A read or write of the model registry failed or was refused (an S3 or DynamoDB error, a
    damaged item, an artefact whose digest is not the registered one, a write that lost to a
    concurrent one); the message names the object and the reason."""


class ModelRegistry(Protocol):
    """One model package group. Versions are numbered 1, 2, ... in registration order."""

    @property
    def group(self) -> str: ...

    def register(
        self, card: ModelCard, artifact: bytes, reference: DriftReference, at: datetime
    ) -> ModelVersion:
        """Store the artifact and reference, create the next version in stage ``registered``."""
        ...

    def get(self, version: int) -> ModelVersion:
        """Raises ``KeyError`` for an unknown version."""
        ...

    def versions(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        ...

    def save(self, version: ModelVersion) -> ModelVersion:
        """Persist a version's stage, history, capital share and drift flags (one
        :meth:`commit` of the stored version to ``version``)."""
        ...

    def commit(self, changes: Sequence[VersionChange]) -> None:
        """Store every ``after`` and move the production pointer to the version that ends in
        production (none, when the production version leaves it without a successor), all or
        nothing: each only while the stored stage is still its ``before.stage`` and the
        pointer still names the production version among the ``before``s. A refused or
        failed write raises :class:`RegistryStoreError` and changes nothing."""
        ...

    def production_pointer(self) -> ProductionPointer | None:
        """The production version's number and artefact digest (None: no version is in
        production), read without listing the versions. Raises :class:`RegistryStoreError`
        when it cannot be read."""
        ...

    def artifact(self, version: int) -> bytes: ...

    def checked_artifact(self, version: ModelVersion) -> bytes:
        """``version``'s artefact, only if its SHA-256 is the one recorded at registration: a
        digest mismatch or an unreadable artefact is a :class:`RegistryStoreError` saying
        which. Every server of a version (the scan, ``cst model pull-production``) reads
        through it."""
        ...

    def reference(self, version: int) -> DriftReference: ...


class MarketCapSource(Protocol):
    """Daily market caps of CoinGecko coins (live snapshot or recorded history)."""

    def fetch_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> MarketCapBatch:
        """Rows keyed at the UTC midnight they are known, ``start <= ts``; unreadable rows and
        missing coins come back as rejections with a reason."""
        ...


class MarketCapStore(Protocol):
    """The lake's market-cap dataset."""

    def write_market_caps(self, frame: pl.DataFrame) -> list[str]:
        """Merge gated rows (``MARKET_CAP_SCHEMA``); returns the object keys written."""
        ...

    def read_market_caps(
        self, coins: Sequence[str], start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Rows of ``coins`` with ``start <= ts <= end`` only."""
        ...


class ModelDeployer(Protocol):
    """Serves a registry version on the prediction endpoint (``adapters.sagemaker_deployer``)."""

    @property
    def endpoint(self) -> str: ...

    def deploy(self, version: ModelVersion) -> object:
        """Point the endpoint at ``version`` (created or updated); raises if it cannot."""
        ...


class StateStore(Protocol):
    """Small (pk, sk) records; implemented by ``DynamoStateStore``."""

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None: ...

    def put_new(self, pk: str, sk: str, item: Mapping[str, Any]) -> bool: ...

    def put_versioned(
        self, pk: str, sk: str, item: Mapping[str, Any], expected_version: int
    ) -> bool: ...

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def query(self, pk: str) -> list[dict[str, Any]]: ...


class StateRecords(Protocol):
    """Small (pk, sk) records read and written whole (the ingest watermarks and breakers)."""

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None: ...

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...


class KillSwitchValue(KillSwitchState, Protocol):
    """The stored switch value (``adapters.ssm_killswitch.KillSwitchStatus``)."""

    @property
    def on(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def at(self) -> datetime: ...


class KillSwitchControl(KillSwitch, Protocol):
    """A kill-switch that can also be set; implemented by ``SsmKillSwitch``."""

    def status(self) -> KillSwitchValue: ...

    def set(
        self, on: bool, reason: str, actor: str, *, golive_rollback: str | None = None
    ) -> KillSwitchValue:
        """``golive_rollback``: the go-live rollback's marker, passed by the rollback only."""
        ...


class SignalReader(Protocol):
    def latest(self) -> dict[str, Any] | None: ...

    def at(self, asof_iso: str) -> dict[str, Any] | None: ...


class RiskReader(Protocol):
    def load(self) -> RiskState: ...

    def history(self) -> list[RiskTransition]: ...


class AuditRecord(Protocol):
    @property
    def sort_key(self) -> str: ...

    @property
    def at(self) -> datetime: ...


class AuditTrail(Protocol):
    def record(
        self,
        *,
        actor: str,
        action: str,
        at: datetime,
        request_id: str,
        correlation_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord: ...


class SignalHistory(Protocol):
    def latest(self) -> dict[str, Any] | None: ...

    def between(self, start_iso: str, end_iso: str) -> list[dict[str, Any]]: ...


class StateReader(Protocol):
    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def query(self, pk: str) -> list[dict[str, Any]]: ...


class AuditReader(Protocol):
    def recent(self, limit: int = 50) -> Sequence[Any]: ...


class CandleSource(Protocol):
    """Closed candles of one symbol with ``since_ms <= ts <= until_ms`` (``OHLCV_SCHEMA``).

    Implemented by the ccxt exchange adapter and by :class:`MarketDataReplaySource`. Failures
    raise the :mod:`cryptosmarttrader.domain.exchange` error taxonomy; a source that refuses its
    own data (a damaged recorded file) raises ``QualityRejectionError`` with the findings.
    """

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame: ...


@runtime_checkable
class RecordedCandles(Protocol):
    """A recorded source that can hand its candles over as recorded (file order, ungated)."""

    def ohlcv_as_recorded(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame: ...


class HealthProbe(Protocol):
    """One dependency check of the deep health (DynamoDB, S3, SSM, the exchange)."""

    @property
    def name(self) -> str: ...

    def check(self) -> HealthCheck: ...


class TrainingJobs(Protocol):
    """SageMaker training jobs and the lake objects they read and write."""

    def put(self, key: str, body: bytes) -> str:
        """Store an object in the model bucket; returns its s3:// URI."""
        ...

    def start(self, request: TrainingJobRequest) -> str: ...

    def describe(self, name: str) -> TrainingJobState: ...

    def model_files(self, model_artifacts: str) -> Mapping[str, bytes]:
        """The files of a job's ``model.tar.gz`` by name."""
        ...


# --------------------------------------------------------------------------- agents' inputs ingest
# ``services/agent_ingest.py``: the liquid universe, funding, withdrawals and sentiment. The
# venue ports are implemented by ``adapters.ccxt_agent_feeds.CcxtVenueFeeds`` (live) and
# ``adapters.recorded_venue.RecordedVenue`` (recorded files); the stores by
# ``adapters.s3_agent_inputs.S3AgentInputs``.


class SpotVenue(Protocol):
    """The venue's active spot pairs quoted in ``quote`` and their 24 h quote volume (None
    when the venue reports none)."""

    def spot_quote_volumes(self, quote: str) -> Mapping[str, float | None]: ...


class PerpetualVenue(Protocol):
    """The venue's linear perpetuals: which spot pairs have one, their funding and mark
    prices."""

    def perpetual_pairs(self, quote: str) -> frozenset[str]:
        """Spot pairs (``BTC/USDT``) with a linear perpetual settled in ``quote``."""
        ...

    def funding_history(self, pair: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        """``FUNDING_SCHEMA`` rows of ``pair``'s perpetual (symbol = the spot pair)."""
        ...

    def mark_candles(self) -> CandleSource:
        """8 h mark-price candles of the perpetual of a spot pair, as a candle source."""
        ...


class WithdrawalVenue(Protocol):
    """Each coin's withdrawal and deposit state, fee and minimum as the venue reports them."""

    def withdrawal_constraints(self, coins: Sequence[str]) -> pl.DataFrame:
        """``WITHDRAWAL_SCHEMA`` rows, ``symbol`` = coin code, observed now."""
        ...


class SentimentSource(Protocol):
    """Where sentiment readings come from (``adapters.sentiment_source.AlternativeMeFearGreed``
    over HTTP, ``adapters.recorded_venue.RecordedFearGreed`` over the recorded file)."""

    @property
    def name(self) -> str: ...

    def readings(self, limit: int) -> list[SentimentReading]:
        """The latest ``limit`` readings, newest first. Raises ``SentimentUnavailableError``."""
        ...


class FundingStore(Protocol):
    """The lake's funding-rate dataset."""

    def write_funding(self, frame: pl.DataFrame, exchange: str) -> list[str]:
        """Merge gated ``FUNDING_SCHEMA`` rows keyed on time; returns the object keys written."""
        ...


class SentimentStore(Protocol):
    """The lake's sentiment dataset."""

    def write_sentiment(self, frame: pl.DataFrame, source: str) -> list[str]:
        """Merge gated readings keyed on time; returns the object keys written."""
        ...


class WithdrawalStore(Protocol):
    """The lake's withdrawal-constraints dataset and the status of its last run."""

    def write_withdrawals(self, frame: pl.DataFrame, exchange: str) -> list[str]: ...

    def write_withdrawal_status(self, exchange: str, observed_ms: int, reason: str | None) -> None:
        """Record the run beside the dataset: its time, and the reason when the venue's data
        could not be read (the arbitrage agent abstains with it)."""
        ...


# --------------------------------------------------------------------------- paper venue
# ``adapters.paper_exchange.PaperExchange``: the trading half of a venue filled against real
# bars. It is an adapter; these are the ports it is built from.


class BarSource(Protocol):
    """``MarketData.ohlcv``: candles by open time, ``start <= ts <= end`` (the lake, the
    recorded files, or frames loaded once by ``cst tracking``)."""

    def ohlcv(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame: ...


class PaperBook(Protocol):
    """The paper venue's own order book, keyed by the client order ID as the venue formats it
    (``InMemoryPaperBook`` for one process, ``StatePaperBook`` over the state table)."""

    def insert(self, venue_id: str, record: Mapping[str, Any]) -> bool:
        """Store a new order; False (nothing written) if the ID is already held."""
        ...

    def get(self, venue_id: str) -> dict[str, Any] | None: ...

    def replace(self, venue_id: str, record: Mapping[str, Any], expected_status: str) -> bool:
        """Overwrite the order if its stored status is still ``expected_status``."""
        ...


class ConditionalStateStore(Protocol):
    """(pk, sk) records with conditional writes (``DynamoStateStore``): what ``StatePaperBook``
    keeps the paper venue's orders in."""

    def get(self, pk: str, sk: str) -> dict[str, Any] | None: ...

    def put_new(self, pk: str, sk: str, item: Mapping[str, Any]) -> bool:
        """Insert; False (nothing written) if the key exists."""
        ...

    def put_if(self, pk: str, sk: str, item: Mapping[str, Any], field: str, expected: str) -> bool:
        """Overwrite only while the stored ``field`` equals ``expected``; False otherwise."""
        ...


# --------------------------------------------------------------------------- dashboard


class RegistryReader(Protocol):
    """The model versions the dashboard lists (a ``ModelRegistry``, read only)."""

    @property
    def group(self) -> str: ...

    def versions(self) -> list[ModelVersion]: ...


# --------------------------------------------------------------------------- progress


class Progress(Protocol):
    """Progress of a long-running use case: ``progress(step, done, total)`` (``total`` None
    when unknown). The CLI draws it on a terminal; the Lambdas and tests pass
    ``services.progress.no_progress``."""

    def __call__(self, step: str, done: int, total: int | None) -> None: ...
