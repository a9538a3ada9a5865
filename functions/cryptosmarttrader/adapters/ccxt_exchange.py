"""The :class:`~cryptosmarttrader.ports.Exchange` port over ccxt (Kraken, Binance, KuCoin).

The only module that knows ccxt. ccxt exceptions are mapped to the domain taxonomy in
:func:`map_ccxt_error`; ccxt dicts are turned into validated domain models or rejected.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import ccxt
import polars as pl

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import (
    BookLevel,
    Candle,
    ExchangeCapabilities,
    ExchangeError,
    ExchangeId,
    ExchangeOrder,
    FatalExchangeError,
    FundingRate,
    ImmediateTriggerError,
    InvalidPayloadError,
    Market,
    MarketRulesUnknownError,
    NotSupportedByExchange,
    OrderBook,
    OrderNotFoundError,
    OrderStateUnknownError,
    OrderType,
    RetryableExchangeError,
    RetryPolicy,
    RetryRunner,
    Ticker,
    capabilities_for,
    payload_decimal,
    payload_non_negative,
    payload_price,
    payload_quantity,
    validate_candle,
)
from cryptosmarttrader.domain.market import OHLCV_SCHEMA
from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus
from cryptosmarttrader.domain.sanitize import sanitize_text
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    Price,
    Quantity,
    Side,
    Symbol,
    ms_from_utc,
)

T = TypeVar("T")

log = logging.getLogger(__name__)

# How long a measured offset between the host clock and the venue's is used before it is
# measured again (one ``fetch_time`` call): a host clock drifts by milliseconds in that time.
SERVER_TIME_MAX_AGE_S = 600.0
# A host clock further off the venue's than this is logged (its requests stay valid).
HOST_CLOCK_WARN_MS = 2_000

# Most specific ccxt class first is not needed: the lookup walks the exception's MRO, so the
# nearest listed ancestor wins (RequestTimeout before NetworkError, OrderNotFound before
# InvalidOrder, BadSymbol before BadRequest, PermissionDenied before AuthenticationError).
_ERROR_MAP: dict[type[BaseException], type[ExchangeError]] = {
    ccxt.OrderNotFound: OrderNotFoundError,
    # a stop whose trigger is already crossed (Binance -2010 "Stop price would trigger
    # immediately."): not placed, unlike an invalid order
    ccxt.OrderImmediatelyFillable: ImmediateTriggerError,
    ccxt.NotSupported: NotSupportedByExchange,
    # Transient: retry reads with backoff.
    ccxt.RequestTimeout: RetryableExchangeError,
    ccxt.RateLimitExceeded: RetryableExchangeError,
    ccxt.DDoSProtection: RetryableExchangeError,
    ccxt.OnMaintenance: RetryableExchangeError,
    ccxt.ExchangeNotAvailable: RetryableExchangeError,
    ccxt.InvalidNonce: RetryableExchangeError,
    ccxt.NetworkError: RetryableExchangeError,
    ccxt.BadResponse: RetryableExchangeError,
    ccxt.OperationFailed: RetryableExchangeError,
    # Fatal: the request itself is wrong or not allowed.
    ccxt.BadSymbol: FatalExchangeError,
    ccxt.BadRequest: FatalExchangeError,
    ccxt.PermissionDenied: FatalExchangeError,
    ccxt.AuthenticationError: FatalExchangeError,
    ccxt.InsufficientFunds: FatalExchangeError,
    ccxt.InvalidOrder: FatalExchangeError,
    ccxt.ArgumentsRequired: FatalExchangeError,
    ccxt.ExchangeError: FatalExchangeError,
    ccxt.BaseError: FatalExchangeError,
}


def map_ccxt_error(exc: ccxt.BaseError, exchange: str, operation: str) -> ExchangeError:
    """The single place where ccxt exceptions become domain errors. ccxt's message (the URL
    with a signed query string, headers, the request echoed in the body) is sanitized here, so
    no key or signature reaches a log, an order record or an API answer."""
    reason = sanitize_text(f"{type(exc).__name__}: {exc}")
    for cls in type(exc).__mro__:
        target = _ERROR_MAP.get(cls)
        if target is not None:
            return target(exchange, operation, reason)
    return FatalExchangeError(exchange, operation, reason)


_CCXT_STATUS: dict[str, OrderStatus] = {
    "open": OrderStatus.ACCEPTED,
    # Binance's raw status of an order accepted but not yet working (e.g. the pending leg of
    # an order list): ccxt passes statuses it does not know through unchanged.
    "PENDING_NEW": OrderStatus.ACCEPTED,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    # Binance's PENDING_CANCEL (documented as unused), which ccxt reports as "canceling": a
    # cancel the venue has taken and not finished; the order may still fill until it does
    "canceling": OrderStatus.CANCEL_PENDING,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def _raw_last_price(venue: ExchangeId, info: Mapping[str, Any]) -> object:
    """The venue's own last-trade field. ccxt's ``safe_ticker`` derives ``last`` from average and
    change when the venue sent none (or zero); we read the raw field so a derived price is never
    accepted as a traded one.
    """
    if venue is ExchangeId.KRAKEN:
        close = info.get("c")
        return close[0] if isinstance(close, list) and close else None
    if venue is ExchangeId.BINANCE:
        return info.get("lastPrice")
    return info.get("last")


class CcxtExchange:
    """One venue through ccxt. Reads retry with backoff; ``create_order`` never retries."""

    def __init__(
        self,
        client: ccxt.Exchange,
        capabilities: ExchangeCapabilities,
        clock: Clock,
        retry_policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        unit_random: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if client.id != capabilities.exchange_id.value:
            raise DomainError(f"ccxt client {client.id} does not match {capabilities.exchange_id}")
        client.enableRateLimit = True
        self._client = client
        self._caps = capabilities
        self._clock = clock
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._unit_random = unit_random
        self._monotonic = monotonic
        # the venue's server time (ms) and when it was read (monotonic s): the venue's clock now
        # is that time plus the monotonic time elapsed, whatever the host's wall clock does
        self._server_offset: tuple[int, float] | None = None

    @classmethod
    def create(
        cls,
        exchange_id: ExchangeId | str,
        clock: Clock,
        *,
        credentials: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> CcxtExchange:
        caps = capabilities_for(exchange_id)
        config: dict[str, Any] = {"enableRateLimit": True, "rateLimit": caps.rate_limit_ms}
        config.update(credentials or {})
        client = getattr(ccxt, caps.exchange_id.value)(config)
        return cls(client, caps, clock, retry_policy)

    @property
    def capabilities(self) -> ExchangeCapabilities:
        return self._caps

    @property
    def _name(self) -> str:
        return self._caps.exchange_id.value

    # -- plumbing --------------------------------------------------------------------------

    def _once(self, operation: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ccxt.BaseError as exc:
            raise map_ccxt_error(exc, self._name, operation) from exc

    def _read(self, operation: str, call: Callable[[], T]) -> T:
        runner = RetryRunner(self._policy, self._sleep, self._unit_random, self._monotonic)
        return runner.run(lambda: self._once(operation, call))

    def _venue_time_ms(self, operation: str) -> int:
        """The venue's clock now, in ms: the venue's server time (``fetch_time``; read again
        after :data:`SERVER_TIME_MAX_AGE_S`) plus the monotonic time elapsed since it was read,
        never the host's wall clock (which may be off, or be stepped meanwhile), so a request
        field bounded in time is valid whatever the host clock says. When the server time cannot be read, nothing is sent
        (:class:`MarketRulesUnknownError`: the order is not placed, the next cycle tries again)."""
        now = self._monotonic()
        if self._server_offset is None or now - self._server_offset[1] > SERVER_TIME_MAX_AGE_S:
            try:
                before = int(self._client.milliseconds())
                server = self._read("fetch_time", self._client.fetch_time)
                after, read_at = int(self._client.milliseconds()), self._monotonic()
            except ExchangeError as exc:
                raise MarketRulesUnknownError(
                    self._name,
                    operation,
                    f"not sent: the venue's server time cannot be read ({exc.reason}), and "
                    "the host clock alone may put the order's deadline outside the venue's",
                ) from exc
            if not isinstance(server, int) or isinstance(server, bool) or server <= 0:
                raise MarketRulesUnknownError(
                    self._name,
                    operation,
                    f"not sent: the venue's server time is unreadable ({server!r})",
                )
            offset = server - (before + after) // 2
            if abs(offset) > HOST_CLOCK_WARN_MS:
                log.warning(
                    "%s: the host clock is %+.1f s off the venue's server time; its requests "
                    "are timed on the venue's clock",
                    self._name,
                    -offset / 1000,
                )
            # counted from its answer on the monotonic clock (at most one round trip early, even
            # after retries): a host wall clock stepped (NTP) within the max age moves nothing
            self._server_offset = (server, read_at)
        server_ms, read_at = self._server_offset
        return server_ms + round((self._monotonic() - read_at) * 1000)

    def _invalid(self, operation: str, reason: str) -> InvalidPayloadError:
        return InvalidPayloadError(self._name, operation, reason)

    # -- market data -----------------------------------------------------------------------

    def fetch_markets(self) -> list[Market]:
        raw = self._read("fetch_markets", self._client.load_markets)
        return [self._market(m) for m in raw.values() if m.get("spot")]

    def _market(self, m: Mapping[str, Any]) -> Market:
        op = "fetch_markets"
        precision = m.get("precision") or {}
        limits = m.get("limits") or {}

        def opt(value: object, what: str) -> Decimal | None:
            return None if value is None else payload_non_negative(value, what, self._name, op)

        try:
            symbol = Symbol(str(m["symbol"]))
        except (KeyError, DomainError) as exc:
            raise self._invalid(op, f"market without a valid symbol: {m.get('symbol')!r}") from exc
        return Market(
            exchange=self._name,
            symbol=symbol,
            exchange_symbol=str(m.get("id")),
            base=str(m.get("base")),
            quote=str(m.get("quote")),
            active=bool(m.get("active")),
            spot=bool(m.get("spot")),
            price_tick=opt(precision.get("price"), "price tick"),
            amount_step=opt(precision.get("amount"), "amount step"),
            min_amount=opt((limits.get("amount") or {}).get("min"), "min amount"),
            min_cost=opt((limits.get("cost") or {}).get("min"), "min cost"),
            maker_fee=None
            if m.get("maker") is None
            else payload_decimal(m["maker"], "maker", self._name, op),
            taker_fee=None
            if m.get("taker") is None
            else payload_decimal(m["taker"], "taker", self._name, op),
        )

    def fetch_balances(self) -> dict[str, Decimal | None]:
        """The account's total per asset (free + locked in open orders), zero totals left out;
        ``None`` for an asset whose total the venue did not state (some report only free / used
        for earn or locked assets): the reconciliation leaves it unjudged, never reads it as 0.
        A malformed amount (negative, not a number) rejects the whole answer with its reason."""
        op = "fetch_balances"
        raw = self._read(op, self._client.fetch_balance)
        totals = raw.get("total") if isinstance(raw, Mapping) else None
        if not isinstance(totals, Mapping):
            raise self._invalid(op, "the balance answer holds no totals")
        out: dict[str, Decimal | None] = {}
        for asset, amount in totals.items():
            if amount is None:
                out[str(asset)] = None
                continue
            value = payload_non_negative(amount, f"{asset} balance", self._name, op)
            if value > 0:
                out[str(asset)] = value
        return out

    def fetch_tickers(self, symbols: Sequence[Symbol]) -> dict[Symbol, Ticker]:
        """One ticker per symbol; any invalid ticker rejects the call with its reason."""
        out: dict[Symbol, Ticker] = {}
        for symbol in symbols:
            raw = self._read("fetch_tickers", partial(self._client.fetch_ticker, symbol.value))
            out[symbol] = self._ticker(symbol, raw)
        return out

    def most_traded(self, quote: str, n: int) -> list[Symbol]:
        """The ``n`` active spot pairs quoted in ``quote`` with the largest 24 h quote volume,
        from one bulk ticker request. Pairs whose ticker fails validation are left out (their
        volume cannot be trusted); stable and wrapped bases are the caller's to filter."""
        if n < 1:
            raise DomainError(f"n must be >= 1, got {n}")
        listed = {m.symbol for m in self.fetch_markets() if m.active and m.quote == quote}
        raw: Mapping[str, Mapping[str, Any]] = self._read(
            "fetch_tickers", self._client.fetch_tickers
        )
        ranked: list[tuple[Decimal, str]] = []
        for name, payload in raw.items():
            try:
                symbol = Symbol(name)
            except DomainError:
                continue
            if symbol not in listed:
                continue
            try:
                ticker = self._ticker(symbol, payload)
            except InvalidPayloadError:
                continue
            if ticker.base_volume is not None:
                ranked.append((ticker.base_volume * ticker.last.value, symbol.value))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        return [Symbol(name) for _, name in ranked[:n]]

    def _ticker(self, symbol: Symbol, t: Mapping[str, Any]) -> Ticker:
        op = "fetch_tickers"
        if t.get("symbol") != symbol.value:
            raise self._invalid(op, f"asked for {symbol}, got ticker for {t.get('symbol')!r}")

        def side(key: str) -> Price | None:
            value = t.get(key)
            return (
                None if value is None else payload_price(value, f"{symbol} {key}", self._name, op)
            )

        raw_last = _raw_last_price(self._caps.exchange_id, t.get("info") or {})
        last = payload_price(raw_last, f"{symbol} last price", self._name, op)
        if t.get("last") is None or Decimal(str(t["last"])) != last.value:
            raise self._invalid(op, f"{symbol}: last price {t.get('last')!r} is not the venue's")
        volume = t.get("baseVolume")
        return Ticker(
            exchange=self._name,
            symbol=symbol,
            ts_ms=t.get("timestamp"),
            last=last,
            bid=side("bid"),
            ask=side("ask"),
            base_volume=None
            if volume is None
            else payload_non_negative(volume, f"{symbol} volume", self._name, op),
        )

    def fetch_order_book(self, symbol: Symbol, depth: int) -> OrderBook:
        op = "fetch_order_book"
        if depth <= 0:
            raise DomainError(f"order book depth must be > 0, got {depth}")
        raw = self._read(op, lambda: self._client.fetch_order_book(symbol.value, depth))

        def levels(key: str) -> tuple[BookLevel, ...]:
            rows = raw.get(key) or []
            return tuple(
                BookLevel(
                    payload_price(row[0], f"{key} price", self._name, op),
                    payload_quantity(row[1], f"{key} amount", self._name, op),
                )
                for row in rows[:depth]
            )

        return OrderBook(self._name, symbol, raw.get("timestamp"), levels("bids"), levels("asks"))

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        """Closed candles with ``since_ms <= ts <= until_ms``, paginated, gaps left as gaps.

        The still-open candle (``ts + timeframe > now``) is dropped: its values are not final.
        """
        op = "fetch_ohlcv"
        tf_ms = self._caps.require_timeframe(timeframe)
        if until_ms < since_ms:
            raise DomainError(f"until_ms {until_ms} is before since_ms {since_ms}")
        now_ms = ms_from_utc(self._clock.now())
        limit = self._caps.ohlcv_page_limit
        candles: dict[int, Candle] = {}
        cursor = since_ms
        while cursor <= until_ms:
            page = self._read(
                op,
                partial(self._client.fetch_ohlcv, symbol.value, timeframe, cursor, limit),
            )
            if not page:
                break
            last_ts = cursor - 1
            for row in page:
                candle = validate_candle(row, self._name, tf_ms)
                last_ts = max(last_ts, candle.ts)
                if candle.ts < since_ms or candle.ts > until_ms:
                    continue
                seen = candles.get(candle.ts)
                if seen is not None and seen != candle:
                    raise self._invalid(op, f"{symbol}: conflicting candles at {candle.ts}")
                candles[candle.ts] = candle
            if last_ts < cursor:  # the venue returned nothing new: stop, never loop forever
                break
            cursor = last_ts + tf_ms
        rows = [c for ts, c in sorted(candles.items()) if ts + tf_ms <= now_ms]
        return pl.DataFrame(
            {
                "symbol": [symbol.value] * len(rows),
                "ts": [c.ts for c in rows],
                "open": [c.open for c in rows],
                "high": [c.high for c in rows],
                "low": [c.low for c in rows],
                "close": [c.close for c in rows],
                "volume": [c.volume for c in rows],
            },
            schema=OHLCV_SCHEMA,
        )

    def fetch_funding_rates(
        self, symbol: Symbol, since_ms: int, until_ms: int
    ) -> list[FundingRate]:
        op = "fetch_funding_rates"
        if not self._caps.supports_funding:
            raise NotSupportedByExchange(self._name, op, "no funding rates on this venue")
        raw = self._read(
            op, lambda: self._client.fetch_funding_rate_history(symbol.value, since_ms, None)
        )
        rates = [
            FundingRate(
                self._name,
                symbol,
                int(payload_decimal(r.get("timestamp"), "funding time", self._name, op)),
                payload_decimal(r.get("fundingRate"), "funding rate", self._name, op),
            )
            for r in raw
        ]
        return [r for r in rates if since_ms <= r.ts_ms <= until_ms]

    # -- trading ---------------------------------------------------------------------------

    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        """Place one order tagged with our client ID. Never retried.

        A transient failure raises :class:`OrderStateUnknownError`: the order may exist, so the
        caller reconciles with :meth:`fetch_order_by_client_id` before anything else. So does
        an acknowledgement that came back but cannot be parsed: the venue answered, probably
        with the order, so it is not a refusal.
        """
        op = "create_order"
        if order_type not in self._caps.order_types:
            raise NotSupportedByExchange(self._name, op, f"order type {order_type}")
        if (order_type is OrderType.LIMIT) != (price is not None):
            raise DomainError("a limit order needs a price; a market order takes none")
        return self._place(symbol, side, order_type.value, quantity, price, client_order_id, {})

    def _place(
        self,
        symbol: Symbol,
        side: Side,
        ccxt_type: str,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
        extra: Mapping[str, Any],
    ) -> ExchangeOrder:
        """One ``create_order`` call tagged with our client ID (``extra``: the venue's own
        parameters, e.g. a stop's trigger price). Never retried; see :meth:`create_order`."""
        op = "create_order"
        venue_id = self._caps.client_id.format(client_order_id)
        params = {**extra, self._caps.client_id.param: venue_id}
        window = self._caps.request_window_ms
        if self._caps.exchange_id is ExchangeId.KRAKEN and window is not None:
            # Kraken's nonce bounds nothing in time: the deadline makes its matching engine
            # reject the request once it has passed. Kraken takes it 0.5 s to 60 s ahead of its
            # own clock, so it is set on that clock, not the host's (which may be off by more)
            params["deadline"] = self._client.iso8601(self._venue_time_ms(op) + window)
        try:
            raw = self._client.create_order(
                symbol.value,
                ccxt_type,
                side.value,
                float(quantity.value),
                None if price is None else float(price.value),
                params,
            )
        except ccxt.BaseError as exc:
            mapped = map_ccxt_error(exc, self._name, op)
            if mapped.retryable:
                # a rate-limit refusal (429, Binance's 418 ban: ccxt raises RateLimitExceeded or
                # DDoSProtection) is the venue's answer before any matching: nothing is left in
                # flight. A timeout or a 5xx is not.
                raise OrderStateUnknownError(
                    self._name,
                    op,
                    mapped.reason,
                    venue_id,
                    rate_limited=isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)),
                ) from exc
            raise mapped from exc
        try:
            order = self._order(raw, op, fallback_symbol=symbol, fallback_side=side)
        except InvalidPayloadError as exc:
            raise OrderStateUnknownError(
                self._name, op, f"acknowledgement not understood ({exc.reason})", venue_id
            ) from exc
        if order.client_order_id is None:
            # Some venues acknowledge with an id only; the id we sent is what identifies it.
            return replace(order, client_order_id=venue_id)
        return order

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        """The order we tagged with ``client_order_id``, or ``None`` if the venue has none."""
        op = "fetch_order_by_client_id"
        venue_id = self._caps.client_id.format(client_order_id)
        try:
            if self._caps.exchange_id is ExchangeId.KRAKEN:
                found = self._kraken_by_client_id(symbol, venue_id)
            else:
                found = self._read(
                    op,
                    lambda: self._client.fetch_order(
                        None, symbol.value, {"clientOrderId": venue_id}
                    ),
                )
        except OrderNotFoundError:
            return None
        return None if found is None else self._order(found, op, fallback_symbol=symbol)

    def _kraken_by_client_id(self, symbol: Symbol, venue_id: str) -> dict[str, Any] | None:
        # ccxt kraken's fetch_order sends clientOrderId as ``userref``; OpenOrders and
        # ClosedOrders filter by ``cl_ord_id``, which is what create_order set.
        op = "fetch_order_by_client_id"
        params = {"clientOrderId": venue_id}
        for fetch in (self._client.fetch_open_orders, self._client.fetch_closed_orders):
            orders = self._read(op, partial(fetch, symbol.value, None, None, params))
            if orders:
                if len(orders) > 1:
                    raise self._invalid(op, f"{len(orders)} orders share client id {venue_id}")
                found: dict[str, Any] = orders[0]
                return found
        return None

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None:
        """Cancel by our client ID. Idempotent: an unknown order is already not open."""
        op = "cancel_order"
        venue_id = self._caps.client_id.format(client_order_id)
        order = self.fetch_order_by_client_id(symbol, client_order_id)
        if order is None or order.status in {
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        }:
            return
        try:
            self._read(
                op,
                lambda: self._client.cancel_order(
                    order.exchange_order_id, symbol.value, {"clientOrderId": venue_id}
                ),
            )
        except OrderNotFoundError:
            return

    def _order(
        self,
        o: Mapping[str, Any],
        operation: str,
        *,
        fallback_symbol: Symbol,
        fallback_side: Side | None = None,
    ) -> ExchangeOrder:
        order_id = o.get("id")
        if not order_id:
            raise self._invalid(operation, "order payload without an id")
        symbol_raw = o.get("symbol") or fallback_symbol.value
        if symbol_raw != fallback_symbol.value:
            raise self._invalid(operation, f"asked for {fallback_symbol}, got {symbol_raw!r}")
        side_raw = o.get("side") or (None if fallback_side is None else fallback_side.value)
        try:
            side = Side(str(side_raw))
        except ValueError as exc:
            raise self._invalid(operation, f"unknown side {o.get('side')!r}") from exc
        status_raw = o.get("status")
        filled = (
            Decimal(0)
            if o.get("filled") is None
            else payload_non_negative(o["filled"], "filled", self._name, operation)
        )
        if status_raw is None:
            status = OrderStatus.ACCEPTED  # acknowledged with an id, state not reported
        elif status_raw in _CCXT_STATUS:
            status = _CCXT_STATUS[status_raw]
            if status is OrderStatus.ACCEPTED and filled > 0:
                status = OrderStatus.PARTIALLY_FILLED
        else:
            raise self._invalid(operation, f"unknown order status {status_raw!r}")

        def opt_price(key: str) -> Price | None:
            value = o.get(key)
            if value is None or (isinstance(value, int | float) and value == 0):
                return None  # market orders report price 0 / null: absent, not a price
            return payload_price(value, key, self._name, operation)

        amount = o.get("amount")
        fee_raw = o.get("fee") if isinstance(o.get("fee"), Mapping) else None
        quote = fallback_symbol.value.partition("/")[2].split(":")[0]
        fee = (
            payload_non_negative(fee_raw["cost"], "fee", self._name, operation)
            if fee_raw is not None
            and fee_raw.get("cost") is not None
            and fee_raw.get("currency") == quote
            else None  # absent, or charged in another asset: not a quote-currency cost
        )
        final = status in TERMINAL_STATUSES
        return ExchangeOrder(
            exchange=self._name,
            exchange_order_id=str(order_id),
            client_order_id=o.get("clientOrderId"),
            symbol=fallback_symbol,
            side=side,
            order_type=str(o.get("type")),
            status=status,
            amount=None
            if amount is None
            else payload_quantity(amount, "amount", self._name, operation),
            filled=filled,
            price=opt_price("price"),
            average=opt_price("average"),
            ts_ms=(
                _fill_time_ms(o, open_now_ms=None if final else ms_from_utc(self._clock.now()))
                if filled > 0
                else _ms(o.get("timestamp"))
            ),
            fee=fee,
        )


def _ms(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _fill_time_ms(o: Mapping[str, Any], *, open_now_ms: int | None) -> int | None:
    """When an order that filled (some of) its quantity last traded, on the venue's clock.

    ccxt's ``timestamp`` is when the order was placed: a resting stop placed 40 days before it
    fills would carry its placement as its fill time, and a position that pruned the orders
    filled since (``Position.apply``) would refuse that genuine fill as a replay. The last
    trade's time (Binance's ``updateTime``), else the last update's (Kraken's ``closetm``,
    KuCoin's ``updatedAt``), is the fill's; it no longer changes once the order is finished.
    An order still open that reports neither (Kraken's ``closetm`` comes at its end) traded by
    now (``open_now_ms``, the venue's reading time: it changes on each read, a replay concerns
    finished orders only); a finished one falls back to its placement."""
    for key in ("lastTradeTimestamp", "lastUpdateTimestamp"):
        if (at := _ms(o.get(key))) is not None:
            return at
    return open_now_ms if open_now_ms is not None else _ms(o.get("timestamp"))
