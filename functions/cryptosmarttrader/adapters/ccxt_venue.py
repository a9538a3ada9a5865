"""The real-order venue (``testnet`` / ``live``): the trading half of the Exchange port over ccxt.

It sits behind the same ``OrderGateway`` as the paper venue, so one ``ExecutionService`` drives
both. On top of :class:`CcxtExchange` (client order IDs in each venue's own field, ccxt errors
mapped once, ``create_order`` never retried, ``enableRateLimit``):

* every order is sized from the venue's market data before it leaves: amount rounded DOWN to
  the amount step, a limit price onto the tick, the minimum amount and minimum notional checked
  after rounding. Below them the order is refused with the numbers (:class:`OrderRefusedError`,
  a fatal error the ExecutionService records as REJECTED): never inflated to the minimum. When
  the rules (or a market order's last price) cannot be read, nothing is sent and no verdict is
  given (:class:`MarketRulesUnknownError`, transient: the order is not placed, EXPIRED);
* fills are booked from the venue's own trades of the order (``fetch_order_trades``): the
  filled quantity, the volume-weighted price and the real commission. A commission charged in
  the base asset (Binance takes it from what a buy receives) lowers the quantity that reached
  the account, and its value at the trade price is part of ``fee`` (so the cash paid is exactly
  the trades' cost); a commission in a third asset (Binance's "pay fees with BNB") is valued
  at the venue's last ``BNB/<quote>`` price when the order is booked and added to ``fee``. When
  that price cannot be read, nothing is guessed: the order is reconciled again later, as when
  its trades do not (yet) add up to the order's filled amount;
* after a timeout or an unreadable answer the order is looked up by client ID (never re-sent);
* on Binance spot a held position's take-profit and stop rest together as one OCO order list
  (``POST /api/v3/orderList/oco`` through ccxt's implicit ``private_post_orderlist_oco``; looked
  up with ``GET /api/v3/orderList`` by the list's client ID, cancelled with
  ``DELETE /api/v3/orderList``), each leg sized like the stop and booked from its own trades.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from typing import Any, Final
from urllib.parse import urlparse

import ccxt

from cryptosmarttrader.adapters.ccxt_exchange import CcxtExchange, map_ccxt_error
from cryptosmarttrader.adapters.key_permissions import KeyPermissionChecks, KeyPurpose
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import (
    ExchangeError,
    ExchangeId,
    ExchangeOrder,
    ExchangeOrderList,
    FatalExchangeError,
    InvalidPayloadError,
    Market,
    MarketRulesUnknownError,
    NotSupportedByExchange,
    OrderListPricesError,
    OrderNotFoundError,
    OrderStateUnknownError,
    OrderType,
    RetryableExchangeError,
    RetryPolicy,
    capabilities_for,
    payload_non_negative,
    payload_price,
)
from cryptosmarttrader.domain.orders import ProtectiveListIds
from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol
from cryptosmarttrader.domain.venue import (
    SizingRefusal,
    VenueMode,
    sandbox_support,
    size_order,
)

__all__ = ["CcxtVenue", "OrderRefusedError", "ccxt_client"]

_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class OrderRefusedError(FatalExchangeError):
    """Refused before sending: the venue's rules (step, minimum amount, minimum notional, an
    inactive market) do not allow this order. Nothing reached the venue."""


def ccxt_client(
    exchange_id: ExchangeId | str,
    mode: VenueMode,
    credentials: Mapping[str, str],
    *,
    api_base_url: str | None = None,
    timeout_ms: int = 10_000,
) -> ccxt.Exchange:
    """A ccxt client for real orders. ``testnet`` switches to the venue's sandbox (refused with
    the reason where the venue has none); ``live`` uses the production API. ``api_base_url``
    (local development only: ``http://127.0.0.1:PORT``) replaces the host of every spot REST
    URL, and is refused for any other host so a test can never reach the internet."""
    caps = capabilities_for(exchange_id)
    if mode is VenueMode.PAPER:
        raise NotSupportedByExchange(caps.exchange_id.value, "connect", "paper mode sends nothing")
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "rateLimit": caps.rate_limit_ms,
        "timeout": timeout_ms,
        "options": {"fetchCurrencies": False},
        **credentials,
    }
    if caps.exchange_id is ExchangeId.BINANCE:
        # spot only: no futures/options exchangeInfo calls, no wallet endpoints on load
        config["options"] = {**config["options"], "fetchMarkets": {"types": ["spot"]}}
        # the validity window of every signed request, stated rather than left to ccxt's
        # default: an order whose request was lost is settled as not placed once it passed
        config["options"]["recvWindow"] = caps.request_window_ms
    if caps.exchange_id in (ExchangeId.BINANCE, ExchangeId.KUCOIN):
        # every signed request carries a timestamp the venue refuses outside its window
        # (Binance: recvWindow behind, 1 s ahead; KuCoin: 5 s): ccxt measures the host clock's
        # offset against the venue's server time at each markets load (before any order is
        # sized) and signs on the venue's clock. Not on Kraken: its nonce must only increase,
        # and moving it back would refuse every request of a key used before; its AddOrder
        # deadline is set on the venue's clock by the adapter (CcxtExchange._venue_time_ms)
        config["options"]["adjustForTimeDifference"] = True
    client: ccxt.Exchange = getattr(ccxt, caps.exchange_id.value)(config)
    if mode is VenueMode.TESTNET:
        support = sandbox_support(caps.exchange_id)
        if not support.available:
            raise NotSupportedByExchange(caps.exchange_id.value, "testnet", support.note)
        client.set_sandbox_mode(True)
    if api_base_url is not None:
        _point_at(client, api_base_url)
    return client


def _point_at(client: ccxt.Exchange, base_url: str) -> None:
    host = urlparse(base_url).hostname
    if host not in _LOCAL_HOSTS:
        raise ValueError(f"api_base_url must be a local address, got {base_url!r}")
    api = client.urls["api"]
    rewritten: dict[str, str] = {}
    for name, url in api.items():
        parsed = urlparse(str(url))
        if parsed.path.startswith(("/api/", "/sapi/")):  # the spot REST families
            rewritten[name] = base_url.rstrip("/") + parsed.path
    # anything not rewritten (futures, options, wallet) is dropped: it could only go out
    client.urls["api"] = rewritten


class CcxtVenue(CcxtExchange):
    """Real orders on one venue account (see the module docstring)."""

    def __init__(
        self,
        client: ccxt.Exchange,
        clock: Clock,
        mode: VenueMode,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        caps = capabilities_for(client.id)
        super().__init__(client, caps, clock, retry_policy, **kwargs)
        if client.precisionMode != ccxt.TICK_SIZE:
            raise NotSupportedByExchange(
                caps.exchange_id.value, "connect", "markets without tick-size precision"
            )
        self.mode = mode
        self._markets: dict[Symbol, Market] = {}
        self._clock_synced = False

    # -- the key's permissions -------------------------------------------------------------

    def key_refusal(self, checks: KeyPermissionChecks, purpose: KeyPurpose) -> str | None:
        """Why this account's key is refused for ``purpose`` (Binance's signed
        ``GET /sapi/v1/account/apiRestrictions``, cached per key by ``checks``), or None."""
        client = self._client
        self._sync_clock()
        return checks.refusal(
            purpose, str(client.apiKey or ""), client.sapi_get_account_apirestrictions
        )

    def _sync_clock(self) -> None:
        """Measure the host clock's offset from the venue's once, for a signed request sent
        before any markets load (the key's check): ccxt measures it at each markets load on a
        client that signs on the venue's clock (``adjustForTimeDifference``). A failed read
        leaves the host's clock: the request is then answered as the venue answers it."""
        client = self._client
        if self._clock_synced or not client.options.get("adjustForTimeDifference"):
            return
        with contextlib.suppress(ExchangeError):
            self._read("fetch_time", client.load_time_difference)
            self._clock_synced = True

    # -- market rules ----------------------------------------------------------------------

    def market(self, symbol: Symbol) -> Market:
        """The venue's rules for ``symbol`` (loaded once; reloaded on a miss)."""
        if symbol not in self._markets:
            self._markets = {m.symbol: m for m in self.fetch_markets()}
        found = self._markets.get(symbol)
        if found is None:
            raise FatalExchangeError(self._name, "create_order", f"{symbol} is not listed")
        return found

    def _rules_to_send(self, symbol: Symbol, op: str) -> Market:
        """:meth:`market` for an order about to be sent: rules that cannot be read now (a
        load that timed out or answered unreadably) are :class:`MarketRulesUnknownError`,
        nothing sent (not an unknown order state)."""
        try:
            return self.market(symbol)
        except (RetryableExchangeError, InvalidPayloadError) as exc:
            raise MarketRulesUnknownError(
                self._name, op, f"not sent, the venue's rules are unknown: {exc}"
            ) from exc

    def last_price(self, symbol: Symbol) -> Price:
        """The last traded price a market order of ``symbol`` is sized at
        (:meth:`create_order`); :class:`MarketRulesUnknownError` when it cannot be read now."""
        try:
            return self.fetch_tickers([symbol])[symbol].last
        except (RetryableExchangeError, InvalidPayloadError) as exc:
            raise MarketRulesUnknownError(
                self._name, "fetch_ticker", f"the last price cannot be read: {exc}"
            ) from exc

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
        market = self._rules_to_send(symbol, "create_order")
        reference = price if price is not None else self.last_price(symbol)
        sized = size_order(market, side, quantity, limit_price=price, reference_price=reference)
        if isinstance(sized, SizingRefusal):
            raise OrderRefusedError(self._name, "create_order", sized.reason)
        placed = super().create_order(
            symbol, side, order_type, sized.quantity, sized.price, client_order_id
        )
        try:
            return self._booked(symbol, placed, "create_order")
        except (RetryableExchangeError, InvalidPayloadError) as exc:
            # the order exists; its fills could not be read yet: reconcile by client id
            venue_id = self._caps.client_id.format(client_order_id)
            raise OrderStateUnknownError(
                self._name, "create_order", f"placed, fills not readable ({exc})", venue_id
            ) from exc

    # -- protective stops ------------------------------------------------------------------

    @property
    def supports_protective_stops(self) -> bool:
        """Whether a held position's stop rests on this venue (see ``docs/venues.md``,
        "Protective exits on the venue"): Binance spot ``STOP_LOSS_LIMIT`` only. KuCoin and
        Kraken have stop orders too, but no sandbox to prove them on: the hourly cycle's exit
        rule protects their positions."""
        return self._caps.exchange_id is ExchangeId.BINANCE

    def create_stop_order(
        self,
        symbol: Symbol,
        quantity: Quantity,
        stop_price: Price,
        limit_price: Price,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        """A protective sell of ``quantity`` resting on the venue: when a trade at or below
        ``stop_price`` happens, a limit sell at ``limit_price`` is placed (Binance spot
        ``STOP_LOSS_LIMIT``, through ccxt's ``stopLossPrice`` on a limit order).

        Sized like every order: the amount rounded DOWN to the step, both prices DOWN onto the
        tick (the stop never triggers above the rule's level; the limit stays below the stop),
        the minimum amount and notional checked at the limit price; refused with the numbers
        otherwise. Never retried: a timeout raises :class:`OrderStateUnknownError`."""
        if not self.supports_protective_stops:
            raise NotSupportedByExchange(self._name, "create_order", "protective stop orders")
        if not limit_price.value <= stop_price.value:
            raise OrderRefusedError(
                self._name, "create_order", f"stop limit {limit_price} above its trigger"
            )
        market = self._rules_to_send(symbol, "create_order")
        tick = market.price_tick
        stop, limit = stop_price.value, limit_price.value
        if tick is not None and tick > 0:
            stop, limit = _floor(stop, tick), _floor(limit, tick)
        if stop <= 0 or limit <= 0:
            raise OrderRefusedError(
                self._name,
                "create_order",
                f"{symbol}: stop {stop_price} rounds to 0 on tick {tick}",
            )
        sized = size_order(
            market, Side.SELL, quantity, limit_price=Price(limit), reference_price=Price(limit)
        )
        if isinstance(sized, SizingRefusal):
            raise OrderRefusedError(self._name, "create_order", sized.reason)
        placed = self._place(
            symbol,
            Side.SELL,
            OrderType.LIMIT.value,
            sized.quantity,
            Price(limit),
            client_order_id,
            {"stopLossPrice": f"{stop:f}", "timeInForce": "GTC"},
        )
        return replace(placed, order_type=OrderType.STOP_LOSS_LIMIT.value)

    def market_sell_refusal(
        self, symbol: Symbol, quantity: Quantity, price_if_unread: Price | None = None
    ) -> str | None:
        """Why a market sell of ``quantity`` would be refused now: sized exactly as
        :meth:`create_order` sizes it (the amount DOWN to the step, the minimum amount, the
        minimum notional at the last price). None when it would be taken, or when the venue's
        rules cannot be read (the sale is then tried, and refused or not, as usual).

        When the last price cannot be read, the minimum notional is judged at
        ``price_if_unread`` (a protective stop's limit price: below the market, so a sale it
        passes passes at the market too), the reason saying so; without one, in doubt, the
        reason is that the sale cannot be sized."""
        try:
            market = self.market(symbol)
        except ExchangeError:
            return None
        try:
            last = self.fetch_tickers([symbol])[symbol].last
        except ExchangeError as exc:
            if price_if_unread is None:
                return f"the last price cannot be read ({exc}): the sale cannot be sized"
            sized = size_order(
                market, Side.SELL, quantity, limit_price=None, reference_price=price_if_unread
            )
            if not isinstance(sized, SizingRefusal):
                return None
            return (
                f"{sized.reason} (judged at {price_if_unread.value.normalize():f}: the last "
                f"price cannot be read, {exc})"
            )
        sized = size_order(market, Side.SELL, quantity, limit_price=None, reference_price=last)
        return sized.reason if isinstance(sized, SizingRefusal) else None

    # -- protective OCO order lists --------------------------------------------------------

    @property
    def supports_protective_order_lists(self) -> bool:
        """Whether a held position's take-profit rests on this venue with its stop, as one OCO
        order list (see ``docs/venues.md``, "Protective exits on the venue"): Binance spot."""
        return self._caps.exchange_id is ExchangeId.BINANCE

    def create_protective_oco(
        self,
        symbol: Symbol,
        quantity: Quantity,
        take_profit: Price,
        stop_price: Price,
        limit_price: Price,
        ids: ProtectiveListIds,
    ) -> ExchangeOrderList:
        """One SELL OCO order list for ``quantity``: a ``LIMIT_MAKER`` above leg at
        ``take_profit`` and a ``STOP_LOSS_LIMIT`` below leg triggered at ``stop_price``, selling
        at ``limit_price`` (Binance's ``abovePrice > last > belowStopPrice``). The list and each
        leg carry their own client ID (``ids``).

        Sized like the stop: the amount rounded DOWN to the step; the stop and its limit DOWN
        onto the tick (never above the rule's level), the take-profit UP (never below it); the
        minimum amount and notional checked at the limit price (the lower of the two sales).
        Refused with the numbers otherwise (nothing sent). Never retried: a timeout or a 5xx
        raises :class:`OrderStateUnknownError` (look the list up by its client ID); a
        rate-limit refusal is flagged ``rate_limited`` (not placed)."""
        op = "create_order_list"
        if not self.supports_protective_order_lists:
            raise NotSupportedByExchange(self._name, op, "OCO order lists")
        if not limit_price.value <= stop_price.value < take_profit.value:
            raise OrderRefusedError(
                self._name,
                op,
                f"prices out of order: limit {limit_price} <= stop {stop_price} "
                f"< take-profit {take_profit} is required",
            )
        market = self._rules_to_send(symbol, op)
        tick = market.price_tick
        stop, limit, above = stop_price.value, limit_price.value, take_profit.value
        if tick is not None and tick > 0:
            stop, limit = _floor(stop, tick), _floor(limit, tick)
            above = _ceil(above, tick)
        if stop <= 0 or limit <= 0:
            raise OrderRefusedError(
                self._name, op, f"{symbol}: stop {stop_price} rounds to 0 on tick {tick}"
            )
        sized = size_order(
            market, Side.SELL, quantity, limit_price=Price(limit), reference_price=Price(limit)
        )
        if isinstance(sized, SizingRefusal):
            raise OrderRefusedError(self._name, op, sized.reason)
        spec = self._caps.client_id
        list_id = spec.format(ids.list_id)
        params = {
            "symbol": market.exchange_symbol,
            "side": "SELL",
            "quantity": f"{sized.quantity.value:f}",
            "listClientOrderId": list_id,
            "aboveType": "LIMIT_MAKER",
            "abovePrice": f"{above:f}",
            "aboveClientOrderId": spec.format(ids.above),
            "belowType": "STOP_LOSS_LIMIT",
            "belowStopPrice": f"{stop:f}",
            "belowPrice": f"{limit:f}",
            "belowTimeInForce": "GTC",
            "belowClientOrderId": spec.format(ids.below),
            "newOrderRespType": "RESULT",
        }
        try:
            raw = self._client.private_post_orderlist_oco(params)
        except ccxt.BaseError as exc:
            mapped = map_ccxt_error(exc, self._name, op)
            if mapped.retryable:
                raise OrderStateUnknownError(
                    self._name,
                    op,
                    mapped.reason,
                    list_id,
                    rate_limited=isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)),
                ) from exc
            if "relationship of the prices" in str(exc):
                raise OrderListPricesError(self._name, op, mapped.reason) from exc
            raise mapped from exc
        try:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("orderReports"), list):
                raise InvalidPayloadError(self._name, op, "an order list without orderReports")
            legs = {
                str(r.get("type")): self._leg(symbol, self._client.parse_order(r), op)
                for r in raw["orderReports"]
                if isinstance(r, Mapping)
            }
            return self._order_list(symbol, raw, legs, op)
        except InvalidPayloadError as exc:
            raise OrderStateUnknownError(
                self._name, op, f"acknowledgement not understood ({exc.reason})", list_id
            ) from exc

    def fetch_order_list(
        self, symbol: Symbol, list_client_order_id: ClientOrderId
    ) -> ExchangeOrderList | None:
        """``GET /api/v3/orderList`` by the list's client ID (``origClientOrderId``), then each
        leg by its own client ID, its fills booked from its trades. None: no such list."""
        op = "fetch_order_list"
        list_id = self._caps.client_id.format(list_client_order_id)
        try:
            raw = self._read(
                op, lambda: self._client.private_get_orderlist({"origClientOrderId": list_id})
            )
        except OrderNotFoundError:
            return None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("orders"), list):
            raise InvalidPayloadError(self._name, op, "an order list without its orders")
        legs: dict[str, ExchangeOrder] = {}
        for entry in raw["orders"]:
            leg_id = entry.get("clientOrderId") if isinstance(entry, Mapping) else None
            if not leg_id:
                raise InvalidPayloadError(self._name, op, "an order list leg without its id")
            found = self._read(
                op, partial(self._client.fetch_order, None, symbol.value, {"clientOrderId": leg_id})
            )
            info = found.get("info") if isinstance(found, Mapping) else None
            kind = str(info.get("type")) if isinstance(info, Mapping) else ""
            legs[kind] = self._booked(symbol, self._leg(symbol, found, op), op)
        return self._order_list(symbol, raw, legs, op)

    def cancel_order_list(self, symbol: Symbol, list_client_order_id: ClientOrderId) -> None:
        """Cancel what is still open of an OCO list, looked up first by the list's client ID
        (like :meth:`cancel_order`): nothing is sent for a list the venue does not know.

        An ``EXECUTING`` list is cancelled whole (``DELETE /api/v3/orderList``). The list's
        status alone is never trusted: Binance reads a list ``ALL_DONE`` as soon as one leg
        executed, while that leg may still work (a stop leg triggered below its limit rests as a
        limit sell; a take-profit partly filled rests for its rest). So each leg still open
        after that is cancelled by its own client ID (``DELETE /api/v3/order`` with
        ``origClientOrderId``); a ``-2011`` answer (finished meanwhile) is not open."""
        op = "cancel_order_list"
        market = self.market(symbol)
        list_id = self._caps.client_id.format(list_client_order_id)
        try:
            raw = self._read(
                op, lambda: self._client.private_get_orderlist({"origClientOrderId": list_id})
            )
        except OrderNotFoundError:
            return
        if not isinstance(raw, Mapping) or not isinstance(raw.get("orders"), list):
            raise InvalidPayloadError(self._name, op, "an order list without its orders")
        if raw.get("listOrderStatus") == "EXECUTING":
            # finished meanwhile (-2011): its legs are looked at one by one below
            with contextlib.suppress(OrderNotFoundError):
                self._read(
                    op,
                    lambda: self._client.private_delete_orderlist(
                        {"symbol": market.exchange_symbol, "listClientOrderId": list_id}
                    ),
                )
        for entry in raw["orders"]:
            leg_id = entry.get("clientOrderId") if isinstance(entry, Mapping) else None
            if not leg_id:
                raise InvalidPayloadError(self._name, op, "an order list leg without its id")
            self._cancel_leg(symbol, market.exchange_symbol, str(leg_id), op)

    def _cancel_leg(self, symbol: Symbol, exchange_symbol: str, leg_id: str, op: str) -> None:
        """``DELETE /api/v3/order`` by ``origClientOrderId`` for a leg the venue shows open."""
        found = self._read(
            op, partial(self._client.fetch_order, None, symbol.value, {"clientOrderId": leg_id})
        )
        if not isinstance(found, Mapping) or found.get("status") != "open":
            return
        try:
            self._read(
                op,
                lambda: self._client.private_delete_order(
                    {"symbol": exchange_symbol, "origClientOrderId": leg_id}
                ),
            )
        except OrderNotFoundError:
            return

    def _leg(self, symbol: Symbol, unified: Mapping[str, Any], op: str) -> ExchangeOrder:
        info = unified.get("info")
        kind = str(info.get("type")) if isinstance(info, Mapping) else ""
        order = self._order(unified, op, fallback_symbol=symbol)
        if kind == "LIMIT_MAKER":
            return replace(order, order_type=OrderType.LIMIT_MAKER.value)
        if kind == "STOP_LOSS_LIMIT":
            return replace(order, order_type=OrderType.STOP_LOSS_LIMIT.value)
        raise InvalidPayloadError(self._name, op, f"an order list leg of type {kind!r}")

    def _order_list(
        self,
        symbol: Symbol,
        raw: Mapping[str, Any],
        legs: Mapping[str, ExchangeOrder],
        op: str,
    ) -> ExchangeOrderList:
        above, below = legs.get("LIMIT_MAKER"), legs.get("STOP_LOSS_LIMIT")
        if above is None or below is None or len(legs) != 2:
            raise InvalidPayloadError(
                self._name,
                op,
                f"an OCO list needs a LIMIT_MAKER and a STOP_LOSS_LIMIT leg, got {sorted(legs)}",
            )
        status = raw.get("listOrderStatus")
        if status not in {"EXECUTING", "ALL_DONE", "REJECT"}:
            raise InvalidPayloadError(self._name, op, f"unknown list status {status!r}")
        return ExchangeOrderList(
            exchange=self._name,
            order_list_id=str(raw.get("orderListId", "")),
            list_client_order_id=str(raw.get("listClientOrderId") or ""),
            symbol=symbol,
            done=status != "EXECUTING",
            above=above,
            below=below,
        )

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        found = super().fetch_order_by_client_id(symbol, client_order_id)
        if found is None:
            return None
        return self._booked(symbol, found, "fetch_order_by_client_id")

    # -- fills from trades -----------------------------------------------------------------

    def _booked(self, symbol: Symbol, order: ExchangeOrder, op: str) -> ExchangeOrder:
        """``order`` with its filled amount, average price and fee taken from its trades."""
        if order.filled <= 0:
            return order
        trades: Sequence[Mapping[str, Any]] = self._read(
            op,
            lambda: self._client.fetch_order_trades(order.exchange_order_id, symbol.value),
        )
        base, _, quote = symbol.value.partition("/")
        amount = cost = quote_fee = base_fee = Decimal(0)
        other_fees: dict[str, Decimal] = {}
        for trade in trades:
            if str(trade.get("order")) != order.exchange_order_id:
                raise InvalidPayloadError(
                    self._name, op, f"trade of order {trade.get('order')!r} in the answer"
                )
            qty = payload_non_negative(trade.get("amount"), "trade amount", self._name, op)
            px = payload_price(trade.get("price"), "trade price", self._name, op).value
            amount += qty
            cost += qty * px
            for fee in _fees(trade):
                fee_cost = payload_non_negative(fee.get("cost"), "trade fee", self._name, op)
                currency = fee.get("currency")
                if currency == quote:
                    quote_fee += fee_cost
                elif currency == base:
                    base_fee += fee_cost
                    quote_fee += fee_cost * px
                elif fee_cost > 0:
                    if not isinstance(currency, str) or not currency:
                        raise InvalidPayloadError(
                            self._name, op, f"a trade fee of {fee_cost} names no currency"
                        )
                    other_fees[currency] = other_fees.get(currency, Decimal(0)) + fee_cost
        if amount != order.filled:
            raise RetryableExchangeError(
                self._name,
                op,
                f"{order.exchange_order_id}: trades add up to {amount}, the order reports "
                f"{order.filled} filled; looked up again later",
            )
        for currency, fee_cost in sorted(other_fees.items()):
            quote_fee += fee_cost * self._fee_price(currency, quote, op)
        received = amount - base_fee if order.side is Side.BUY else amount
        return replace(
            order,
            filled=received,
            average=Price(cost / amount),
            fee=quote_fee,
        )

    def _fee_price(self, currency: str, quote: str, op: str) -> Decimal:
        """The venue's last price of ``currency`` in ``quote``, to value a commission paid in a
        third asset. Unreadable or unlisted: retried at the next reconciliation, never guessed."""
        pair = Symbol(f"{currency}/{quote}")
        try:
            self.market(pair)
        except FatalExchangeError as exc:
            raise InvalidPayloadError(
                self._name, op, f"a commission in {currency} cannot be valued: {pair} is not listed"
            ) from exc
        return self.fetch_tickers([pair])[pair].last.value


def _floor(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_FLOOR) * tick


def _ceil(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def _fees(trade: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A ccxt trade's commissions: ``fees`` when given, else its single ``fee``."""
    many = trade.get("fees")
    if isinstance(many, list) and many:
        return [f for f in many if isinstance(f, Mapping) and f.get("cost") is not None]
    one = trade.get("fee")
    return [one] if isinstance(one, Mapping) and one.get("cost") is not None else []
