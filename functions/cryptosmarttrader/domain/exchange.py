"""Exchange domain: venue capabilities, validated exchange models, error taxonomy, retry policy.

Pure: no I/O and no ccxt. The ccxt adapter maps library payloads and exceptions onto these types;
everything a service needs to know about a venue is declared here, in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, TypeVar

from cryptosmarttrader.domain.market import TIMEFRAME_MS
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    Price,
    Quantity,
    Side,
    Symbol,
)
from cryptosmarttrader.domain.types import (
    OrderType as OrderType,  # defined with the value types: the order aggregates need no polars
)

# --------------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------------


class ExchangeId(StrEnum):
    KRAKEN = "kraken"
    BINANCE = "binance"
    KUCOIN = "kucoin"


@dataclass(frozen=True, slots=True)
class ClientIdSpec:
    """How a venue takes a client order ID on order placement.

    ``param`` is the request field the venue reads (what the adapter must find in the outgoing
    request), ``max_len`` the venue's length limit and ``pattern`` its accepted format.
    """

    param: str
    max_len: int
    pattern: str

    def format(self, client_order_id: ClientOrderId) -> str:
        """The venue-ready form of our ID: shortened to the limit, then checked against the format."""
        value = client_order_id.shortened(self.max_len).value
        if not re.fullmatch(self.pattern, value):
            raise DomainError(
                f"client order id {value!r} does not match the venue format {self.pattern!r}"
            )
        return value


@dataclass(frozen=True, slots=True)
class ExchangeCapabilities:
    exchange_id: ExchangeId
    timeframes: frozenset[str]
    ohlcv_page_limit: int
    client_id: ClientIdSpec
    maker_fee: Decimal
    taker_fee: Decimal
    rate_limit_ms: float
    supports_funding: bool
    order_types: frozenset[OrderType] = frozenset({OrderType.MARKET, OrderType.LIMIT})
    notes: str = ""
    # How long after it was signed a create request can still be executed by the venue (its
    # validity window: Binance's ``recvWindow``, KuCoin's ``KC-API-TIMESTAMP`` tolerance, the
    # ``deadline`` sent with a Kraken ``AddOrder``), in ms; None where no window is known (the
    # paper venue): an order the venue does not show is then waited for much longer.
    request_window_ms: int | None = None

    def __post_init__(self) -> None:
        unknown = self.timeframes - TIMEFRAME_MS.keys()
        if unknown:
            raise DomainError(f"{self.exchange_id}: timeframes without a known length: {unknown}")
        if self.ohlcv_page_limit <= 0:
            raise DomainError(f"{self.exchange_id}: OHLCV page limit must be > 0")
        if self.request_window_ms is not None and not 0 < self.request_window_ms <= 60_000:
            raise DomainError(f"{self.exchange_id}: request window must be in (0, 60 s]")

    def require_timeframe(self, timeframe: str) -> int:
        """Length of ``timeframe`` in ms, or a :class:`NotSupportedByExchange`."""
        if timeframe not in self.timeframes:
            raise NotSupportedByExchange(
                self.exchange_id, "fetch_ohlcv", f"timeframe {timeframe!r} not offered"
            )
        return TIMEFRAME_MS[timeframe]


# Hex SHA256 prefixes are the only IDs we send; the patterns are each venue's documented rule.
_KRAKEN_CL_ORD_ID: Final = (
    r"[0-9a-fA-F]{32}"  # short UUID
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # long UUID
    r"|[\x20-\x7e]{1,18}"  # free text
)

CAPABILITIES: Final[dict[ExchangeId, ExchangeCapabilities]] = {
    ExchangeId.KRAKEN: ExchangeCapabilities(
        exchange_id=ExchangeId.KRAKEN,
        timeframes=frozenset({"1m", "5m", "15m", "1h", "4h", "1d"}),
        # Kraken's OHLC endpoint returns at most the 720 most recent candles, whatever ``since``.
        ohlcv_page_limit=720,
        # ccxt kraken passes params.clientOrderId as ``cl_ord_id`` (AddOrder, OpenOrders,
        # ClosedOrders, CancelOrder). ``userref`` is an int32 tag, unusable for a hash ID.
        client_id=ClientIdSpec(param="cl_ord_id", max_len=32, pattern=_KRAKEN_CL_ORD_ID),
        maker_fee=Decimal("0.0016"),
        taker_fee=Decimal("0.0026"),
        rate_limit_ms=1000,
        supports_funding=False,
        notes="spot; uniqueness of cl_ord_id is enforced among open orders only",
        # the ``deadline`` the adapter sends with every AddOrder (Kraken: now + 2 s to 60 s):
        # the matching engine rejects the request after it
        request_window_ms=10_000,
    ),
    ExchangeId.BINANCE: ExchangeCapabilities(
        exchange_id=ExchangeId.BINANCE,
        timeframes=frozenset({"1m", "5m", "15m", "1h", "4h", "8h", "1d"}),
        ohlcv_page_limit=1000,
        client_id=ClientIdSpec(
            param="newClientOrderId", max_len=36, pattern=r"[.A-Za-z0-9:/_-]{1,36}"
        ),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
        rate_limit_ms=50,
        supports_funding=True,
        notes="spot orders; funding rates from USD-M perpetuals (symbols like BTC/USDT:USDT)",
        # the ``recvWindow`` sent with every signed request (set on the ccxt client; Binance
        # takes at most 60 000): a request received later is rejected, never executed
        request_window_ms=10_000,
    ),
    ExchangeId.KUCOIN: ExchangeCapabilities(
        exchange_id=ExchangeId.KUCOIN,
        timeframes=frozenset({"1m", "5m", "15m", "1h", "4h", "8h", "1d"}),
        ohlcv_page_limit=1500,
        client_id=ClientIdSpec(param="clientOid", max_len=40, pattern=r"[A-Za-z0-9_-]{1,40}"),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
        rate_limit_ms=7.5,
        supports_funding=False,
        notes="spot; funding lives on KuCoin Futures, a separate venue",
        # KuCoin rejects a request whose KC-API-TIMESTAMP is more than 5 s off its server time
        request_window_ms=5_000,
    ),
}


def capabilities_for(exchange_id: ExchangeId | str) -> ExchangeCapabilities:
    try:
        return CAPABILITIES[ExchangeId(exchange_id)]
    except ValueError as exc:
        raise DomainError(f"unsupported exchange: {exchange_id!r}") from exc


# --------------------------------------------------------------------------------------------
# Error taxonomy
# --------------------------------------------------------------------------------------------


class ExchangeError(Exception):
    """Base of every exchange failure. The message names the exchange and the operation."""

    retryable: bool = False

    def __init__(self, exchange: str, operation: str, reason: str) -> None:
        self.exchange = str(exchange)
        self.operation = operation
        self.reason = reason
        super().__init__(f"{self.exchange} {operation}: {reason}")


class RetryableExchangeError(ExchangeError):
    """Transient: network, timeout, rate limit, maintenance. Safe to retry a read."""

    retryable = True


class FatalExchangeError(ExchangeError):
    """Retrying cannot help: bad symbol, auth, permissions, invalid order, funds, bad request."""


class NotSupportedByExchange(FatalExchangeError):  # noqa: N818 - name fixed by the port contract
    """The venue (or this integration of it) does not offer the operation."""


class ImmediateTriggerError(FatalExchangeError):
    """The venue refused a stop order because its trigger is already crossed (Binance -2010
    "Stop price would trigger immediately."): nothing was placed. Not a verdict on the order
    itself: the same stop may be placed once the price is back above it."""


class MarketRulesUnknownError(ExchangeError):
    """Nothing was sent: the venue's market rules (amount step, minimum amount and notional)
    or the last price an order is sized at could not be read now (e.g. a cold start's markets
    load timed out). Transient, and no verdict on the order: it is not placed (settled EXPIRED
    with this reason, never REJECTED) and the next cycle tries again."""

    retryable = True


class OrderNotFoundError(FatalExchangeError):
    """The venue does not know the order."""


class InvalidPayloadError(FatalExchangeError):
    """The venue answered, but the payload violates an invariant. Rejected, never repaired."""


class OrderStateUnknownError(ExchangeError):
    """create_order failed in a way that may have reached the venue (timeout, 5xx, rate limit).

    Never retry blindly: reconcile with ``fetch_order_by_client_id`` first. ``rate_limited``:
    the venue answered the create with its rate-limit refusal (HTTP 429), so no request is still
    in flight: a lookup that finds no order with the client ID settles it as not placed.
    """

    def __init__(
        self,
        exchange: str,
        operation: str,
        reason: str,
        client_order_id: str,
        *,
        rate_limited: bool = False,
    ) -> None:
        self.client_order_id = client_order_id
        self.rate_limited = rate_limited
        super().__init__(exchange, operation, f"{reason}; reconcile by client id {client_order_id}")


# --------------------------------------------------------------------------------------------
# Retry policy (exponential backoff, full jitter)
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (AWS architecture blog), bounded by attempts and time.

    ``delay(n) = U(0, min(max_delay_s, base_delay_s * 2**(n-1)))`` after failed attempt ``n``.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0
    max_total_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise DomainError("max_attempts must be >= 1")
        for name in ("base_delay_s", "max_delay_s", "max_total_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise DomainError(f"{name} must be finite and >= 0, got {value}")

    def backoff_cap(self, attempt: int) -> float:
        """Upper bound of the wait after failed attempt ``attempt`` (1-based)."""
        if attempt < 1:
            raise DomainError(f"attempt is 1-based, got {attempt}")
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))

    def delay(self, attempt: int, unit_random: float) -> float:
        if not 0.0 <= unit_random <= 1.0:
            raise DomainError(f"unit_random must be in [0, 1], got {unit_random}")
        return self.backoff_cap(attempt) * unit_random


@dataclass
class RetryRunner:
    """Runs a call under a :class:`RetryPolicy`; sleep, randomness and time are injected."""

    policy: RetryPolicy
    sleep: Callable[[float], None]
    unit_random: Callable[[], float]
    monotonic: Callable[[], float]
    delays: list[float] = field(default_factory=list)

    def run(self, call: Callable[[], T]) -> T:
        started = self.monotonic()
        attempt = 1
        while True:
            try:
                return call()
            except RetryableExchangeError:
                if attempt >= self.policy.max_attempts:
                    raise
                wait = self.policy.delay(attempt, self.unit_random())
                if self.monotonic() - started + wait > self.policy.max_total_s:
                    raise
                self.delays.append(wait)
                self.sleep(wait)
                attempt += 1


# --------------------------------------------------------------------------------------------
# Validated exchange models. Every constructor rejects bad data with a reason.
# --------------------------------------------------------------------------------------------


def _dec(value: object, what: str, exchange: str, operation: str) -> Decimal:
    if value is None or isinstance(value, bool):
        raise InvalidPayloadError(exchange, operation, f"{what} is missing")
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidPayloadError(
            exchange, operation, f"{what} is not a number: {value!r}"
        ) from exc
    if not dec.is_finite():
        raise InvalidPayloadError(exchange, operation, f"{what} is not finite: {value!r}")
    return dec


def payload_price(value: object, what: str, exchange: str, operation: str) -> Price:
    dec = _dec(value, what, exchange, operation)
    if dec <= 0:
        raise InvalidPayloadError(exchange, operation, f"{what} must be > 0, got {value!r}")
    return Price(dec)


def payload_quantity(value: object, what: str, exchange: str, operation: str) -> Quantity:
    dec = _dec(value, what, exchange, operation)
    if dec <= 0:
        raise InvalidPayloadError(exchange, operation, f"{what} must be > 0, got {value!r}")
    return Quantity(dec)


def payload_non_negative(value: object, what: str, exchange: str, operation: str) -> Decimal:
    dec = _dec(value, what, exchange, operation)
    if dec < 0:
        raise InvalidPayloadError(exchange, operation, f"{what} must be >= 0, got {value!r}")
    return dec


def payload_decimal(value: object, what: str, exchange: str, operation: str) -> Decimal:
    return _dec(value, what, exchange, operation)


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str
    symbol: Symbol
    exchange_symbol: str
    base: str
    quote: str
    active: bool
    spot: bool
    price_tick: Decimal | None
    amount_step: Decimal | None
    min_amount: Decimal | None
    min_cost: Decimal | None
    maker_fee: Decimal | None
    taker_fee: Decimal | None


@dataclass(frozen=True, slots=True)
class Ticker:
    exchange: str
    symbol: Symbol
    ts_ms: int | None
    last: Price
    bid: Price | None
    ask: Price | None
    base_volume: Decimal | None

    def __post_init__(self) -> None:
        if self.bid is not None and self.ask is not None and self.bid.value >= self.ask.value:
            raise InvalidPayloadError(
                self.exchange,
                "fetch_tickers",
                f"{self.symbol}: crossed quote bid {self.bid} >= ask {self.ask}",
            )


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Price
    amount: Quantity


@dataclass(frozen=True, slots=True)
class OrderBook:
    exchange: str
    symbol: Symbol
    ts_ms: int | None
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]

    def __post_init__(self) -> None:
        op = "fetch_order_book"
        if not self.bids or not self.asks:
            raise InvalidPayloadError(
                self.exchange, op, f"{self.symbol}: one side of the book is empty"
            )
        if any(
            a.price.value <= b.price.value for a, b in zip(self.bids, self.bids[1:], strict=False)
        ):
            raise InvalidPayloadError(
                self.exchange, op, f"{self.symbol}: bids not strictly descending"
            )
        if any(
            b.price.value <= a.price.value for a, b in zip(self.asks, self.asks[1:], strict=False)
        ):
            raise InvalidPayloadError(
                self.exchange, op, f"{self.symbol}: asks not strictly ascending"
            )
        best_bid, best_ask = self.bids[0].price, self.asks[0].price
        if best_bid.value >= best_ask.value:
            raise InvalidPayloadError(
                self.exchange,
                op,
                f"{self.symbol}: crossed book, best bid {best_bid} >= ask {best_ask}",
            )

    @property
    def mid(self) -> Decimal:
        return (self.bids[0].price.value + self.asks[0].price.value) / 2


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    exchange: str
    exchange_order_id: str
    client_order_id: str | None
    symbol: Symbol
    side: Side
    order_type: str
    status: OrderStatus
    amount: Quantity | None
    filled: Decimal
    price: Price | None
    average: Price | None
    ts_ms: int | None
    fee: Decimal | None = None  # in the quote currency, when the venue reports it

    def __post_init__(self) -> None:
        if self.fee is not None and (not self.fee.is_finite() or self.fee < 0):
            raise InvalidPayloadError(self.exchange, "order", f"invalid fee {self.fee}")
        if not self.exchange_order_id:
            raise InvalidPayloadError(self.exchange, "order", "order without an exchange id")
        if self.filled < 0:
            raise InvalidPayloadError(
                self.exchange, "order", f"negative filled amount {self.filled}"
            )
        if self.amount is not None and self.filled > self.amount.value:
            raise InvalidPayloadError(
                self.exchange, "order", f"filled {self.filled} exceeds amount {self.amount}"
            )


@dataclass(frozen=True, slots=True)
class ExchangeOrderList:
    """A protective OCO order list as the venue reports it (Binance spot ``orderList``): its
    IDs, whether the venue finished it (``ALL_DONE``: a leg filled and the other expired, or
    both cancelled) and its two sell legs, each an order of its own with its fills booked."""

    exchange: str
    order_list_id: str
    list_client_order_id: str
    symbol: Symbol
    done: bool
    above: ExchangeOrder  # the take-profit (``LIMIT_MAKER``)
    below: ExchangeOrder  # the stop (``STOP_LOSS_LIMIT``)

    def __post_init__(self) -> None:
        if not self.order_list_id or not self.list_client_order_id:
            raise InvalidPayloadError(self.exchange, "order list", "order list without its ids")
        if self.above.exchange_order_id == self.below.exchange_order_id:
            raise InvalidPayloadError(self.exchange, "order list", "both legs are one order")

    @property
    def legs(self) -> tuple[ExchangeOrder, ExchangeOrder]:
        return self.below, self.above


class OrderListPricesError(FatalExchangeError):
    """The venue refused an OCO order list because the last price is not between its legs
    (Binance -2010 "The relationship of the prices for the orders is not correct.": a sell
    needs ``abovePrice > last > belowStopPrice``). Nothing was placed, and it is no verdict on
    the position: the price is already past the take-profit or the stop, so the plain stop
    (or the hourly exit rule) protects it instead."""


@dataclass(frozen=True, slots=True)
class FundingRate:
    exchange: str
    symbol: Symbol
    ts_ms: int
    rate: Decimal

    def __post_init__(self) -> None:
        if self.ts_ms <= 0:
            raise InvalidPayloadError(
                self.exchange, "fetch_funding_rates", f"bad funding time {self.ts_ms}"
            )
        if not self.rate.is_finite():
            raise InvalidPayloadError(
                self.exchange, "fetch_funding_rates", f"rate not finite: {self.rate}"
            )


@dataclass(frozen=True, slots=True)
class Candle:
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def validate_candle(row: Sequence[object], exchange: str, timeframe_ms: int) -> Candle:
    """One OHLCV row ``[ts, o, h, l, c, v]``; rejects nulls, non-positive prices, bad ranges."""
    op = "fetch_ohlcv"
    if len(row) < 6:
        raise InvalidPayloadError(
            exchange, op, f"candle has {len(row)} fields, expected 6: {row!r}"
        )
    ts_raw = row[0]
    if not isinstance(ts_raw, int) or isinstance(ts_raw, bool) or ts_raw <= 0:
        raise InvalidPayloadError(exchange, op, f"candle timestamp invalid: {ts_raw!r}")
    if ts_raw % timeframe_ms != 0:
        raise InvalidPayloadError(exchange, op, f"candle {ts_raw} not aligned to {timeframe_ms} ms")
    o, h, lo, c = (
        payload_price(row[i], name, exchange, op).value
        for i, name in ((1, "open"), (2, "high"), (3, "low"), (4, "close"))
    )
    v = payload_non_negative(row[5], "volume", exchange, op)
    if h < max(o, c, lo) or lo > min(o, c):
        raise InvalidPayloadError(
            exchange, op, f"candle {ts_raw}: high/low do not bound open/close"
        )
    return Candle(ts_raw, float(o), float(h), float(lo), float(c), float(v))
