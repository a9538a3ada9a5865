"""A local fake exchange that speaks the Binance spot REST shape (development tooling only).

Real ccxt (``binance``, its URLs pointed at ``http://127.0.0.1:PORT``) drives it exactly as it
drives the Binance spot testnet: ``exchangeInfo`` (the recorded real symbol definitions of
``tests/fixtures/exchanges/binance/markets_exchangeinfo_symbols.json``, filters included),
``ticker/24hr``, ``order`` (create with ``newClientOrderId``, query and cancel by
``origClientOrderId``), ``openOrders``, ``myTrades``, ``account`` and the key's permissions
(``GET /sapi/v1/account/apiRestrictions``, answered from :attr:`FakeBinance.api_restrictions`:
a trade-only key unless a test sets a flag; the live API serves it, the spot testnet does not). Every private request is
checked like Binance checks it: the ``X-MBX-APIKEY`` header, the HMAC-SHA256 ``signature`` over
the query string or body, and the ``timestamp`` inside ``recvWindow``.

Prices are never invented: a market order fills at the open of the first recorded 1h candle of
its symbol (``../shared/data/binance_spot/1h``) opening at or after it was placed, on the
market clock the test shares with the product; ``max_fill_per_bar`` makes the matching slow
(part of the order per bar, the rest on the next bars: the partial fills a busy testnet shows).
Each fill is a trade with Binance's taker commission (0.1%, in the asset received; with
``bnb_fees`` and BNB on the account, 0.075% of the cost paid in BNB at the open of the same
recorded BNBUSDT bar, as Binance's "pay fees with BNB" does). Balances are
checked (``-2010`` insufficient balance), and the filters are enforced (``-1013`` LOT_SIZE /
NOTIONAL), so an adapter that sends an unrounded amount is refused here as on Binance.

``STOP_LOSS_LIMIT`` sells (the product's protective stops) are checked like Binance checks
them (``PRICE_FILTER`` for the limit and the trigger, ``LOT_SIZE``, ``NOTIONAL`` at the limit,
"Stop price would trigger immediately"), lock the base asset while they rest, and trigger on
the recorded candles once a bar has closed: a bar whose low reaches the stop fills it at the
stop (at the bar's open when it gapped below the stop and is still above the limit; else it
rests as a limit sell until a bar's high reaches the limit). They are cancelled like any order.

OCO order lists (``POST /api/v3/orderList/oco``, the product's take-profit and stop resting
together): a ``LIMIT_MAKER`` above leg (the take-profit) and a ``STOP_LOSS`` /
``STOP_LOSS_LIMIT`` below leg for one ``quantity``, checked like Binance checks them (the
symbol's ``ocoAllowed``, each leg's filters, ``abovePrice > last price > belowStopPrice`` for a
sell, else ``-2010`` "The relationship of the prices for the orders is not correct.", a
``listClientOrderId`` distinct from its legs' and unique among the open lists; a take-profit
at or below the best bid, ``best_bid`` or else the last price, is refused ``-2010`` "Order would
immediately match and take.", and ``PERCENT_PRICE_BY_SIDE`` is enforced when the symbol's
filters carry it). The base asset
is locked once for the list. On the recorded candles (a bar once it closed) the above leg fills
at its price when a bar's high reaches it, the below leg triggers as a ``STOP_LOSS_LIMIT``
does; whichever leg fills or triggers first, the venue expires the other and the list reads
``ALL_DONE`` at once, as Binance's does, while that leg may still work (a triggered stop resting
below its limit, the rest of a partly filled take-profit: a bar that reaches both counts as the
stop's, the fall first, never the better outcome guessed). ``DELETE /api/v3/orderList`` cancels
both legs of an ``EXECUTING`` list by ``orderListId`` or ``listClientOrderId`` (``-2011`` once
the list is ``ALL_DONE``: a leg still working is cancelled by its own ID); ``GET /api/v3/orderList`` (``orderListId`` or ``origClientOrderId``) and
``GET /api/v3/openOrderList`` answer in Binance's list shape; each leg is an order of its own
(``GET /api/v3/order`` by its client ID, its trades in ``myTrades``).

Faults (:meth:`FakeBinance.fail_next`): ``rate_limit`` (HTTP 429, ``-1003``, nothing booked),
``timeout_after_booking`` (the order is booked, the answer comes after the client gave up: the
crash between send and record) and ``timeout_before_booking`` (nothing booked, no answer).

This module lives under ``tests/``: it is never bundled into a Lambda.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.types import ms_from_utc, utc_from_ms

# the recorded exchange-info fixture of the repository's tests (a development checkout)
SYMBOLS_FILE = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "fixtures"
    / "exchanges"
    / "binance"
    / "markets_exchangeinfo_symbols.json"
)
TAKER_COMMISSION = Decimal("0.001")
BNB_COMMISSION = Decimal("0.00075")  # the taker rate with Binance's 25% "pay with BNB" discount
HOUR_MS = 3_600_000
PRIVATE_PATHS = frozenset(
    {
        "/api/v3/order",
        "/api/v3/openOrders",
        "/api/v3/myTrades",
        "/api/v3/account",
        "/api/v3/orderList/oco",
        "/api/v3/orderList",
        "/api/v3/openOrderList",
        "/sapi/v1/account/apiRestrictions",
    }
)
# what a trade-only key may do (Binance's GET /sapi/v1/account/apiRestrictions answer)
TRADE_ONLY: dict[str, Any] = {
    "ipRestrict": True,
    "createTime": 1_650_000_000_000,
    "enableReading": True,
    "enableWithdrawals": False,
    "enableInternalTransfer": False,
    "enableMargin": False,
    "enableFutures": False,
    "permitsUniversalTransfer": False,
    "enableVanillaOptions": False,
    "enableFixApiTrade": False,
    "enableFixReadOnly": False,
    "enableSpotAndMarginTrading": True,
    "enablePortfolioMarginTrading": False,
    "tradingAuthorityExpirationTime": 1_700_000_000_000,
}
LIVE = frozenset({"NEW", "PARTIALLY_FILLED"})
_E8 = Decimal("0.00000001")


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(_E8, rounding=ROUND_DOWN):f}"


_SERIES: dict[tuple[int, str], list[tuple[int, Decimal, Decimal]]] = {}
_RANGES: dict[tuple[int, str], list[tuple[int, Decimal, Decimal, Decimal]]] = {}


class BinanceError(Exception):
    def __init__(self, http_status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.http_status, self.code, self.msg = http_status, code, msg


@dataclass
class _Order:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    orig_qty: Decimal
    placed_ms: int
    executed_qty: Decimal = Decimal(0)
    quote_qty: Decimal = Decimal(0)
    status: str = "NEW"
    locked: Decimal = Decimal(0)  # funds reserved for the rest of the order
    last_bar_ms: int = -1
    update_ms: int = 0
    type: str = "MARKET"
    price: Decimal = Decimal(0)  # a STOP_LOSS_LIMIT's limit price
    stop_price: Decimal = Decimal(0)  # a STOP_LOSS_LIMIT's trigger price
    triggered: bool = False
    order_list_id: int = -1  # the OCO list it is a leg of

    def json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": self.order_list_id,
            "clientOrderId": self.client_order_id,
            "price": _fmt(self.price),
            "origQty": _fmt(self.orig_qty),
            "executedQty": _fmt(self.executed_qty),
            "cummulativeQuoteQty": _fmt(self.quote_qty),
            "status": self.status,
            "timeInForce": "GTC",
            "type": self.type,
            "side": self.side,
            "stopPrice": _fmt(self.stop_price),
            "icebergQty": "0.00000000",
            "time": self.placed_ms,
            "updateTime": self.update_ms or self.placed_ms,
            "isWorking": True,
            "workingTime": self.placed_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class _Trade:
    symbol: str
    trade_id: int
    order_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    buyer: bool

    def json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": _fmt(self.price),
            "qty": _fmt(self.qty),
            "quoteQty": _fmt(self.price * self.qty),
            "commission": _fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time_ms,
            "isBuyer": self.buyer,
            "isMaker": False,
            "isBestMatch": True,
        }


@dataclass
class _OrderList:
    symbol: str
    order_list_id: int
    list_client_order_id: str
    above: _Order  # the LIMIT_MAKER take-profit
    below: _Order  # the STOP_LOSS_LIMIT
    placed_ms: int
    status: str = "EXECUTING"  # listOrderStatus: EXECUTING, ALL_DONE
    update_ms: int = 0

    @property
    def legs(self) -> tuple[_Order, _Order]:
        return self.below, self.above

    def done(self) -> bool:
        """No leg works any more (nothing locked, nothing matched)."""
        return not any(leg.status in LIVE for leg in self.legs)

    def all_done(self) -> bool:
        """The list's status as Binance reports it: ``ALL_DONE`` once one leg executed (filled,
        partly filled, triggered) or ended, while that leg may still work on the venue (a
        triggered stop resting as a limit sell, the rest of a partly filled take-profit)."""
        return self.done() or self.below.triggered or any(leg.status != "NEW" for leg in self.legs)

    def json(self, reports: bool = False) -> dict[str, Any]:
        finished = self.all_done()
        answer: dict[str, Any] = {
            "orderListId": self.order_list_id,
            "contingencyType": "OCO",
            "listStatusType": "ALL_DONE" if finished else "EXEC_STARTED",
            "listOrderStatus": "ALL_DONE" if finished else "EXECUTING",
            "listClientOrderId": self.list_client_order_id,
            "transactionTime": self.update_ms or self.placed_ms,
            "symbol": self.symbol,
            "orders": [
                {
                    "symbol": leg.symbol,
                    "orderId": leg.order_id,
                    "clientOrderId": leg.client_order_id,
                }
                for leg in self.legs
            ],
        }
        if reports:
            answer["orderReports"] = [leg.json() for leg in self.legs]
        return answer


@dataclass
class _Fault:
    method: str
    path: str
    kind: str


@dataclass
class FakeBinance:
    """The venue's state. Start it with :func:`serve`."""

    api_key: str
    secret: str
    market: RecordedMarketData
    now: Callable[[], datetime]  # the market clock (recorded-data time)
    balances: dict[str, Decimal] = field(default_factory=dict)
    max_fill_per_bar: dict[str, Decimal] = field(default_factory=dict)
    # the best bid per symbol (default: the last price): a LIMIT_MAKER sell at or below it
    # would take liquidity and is refused, as Binance refuses it
    best_bid: dict[str, Decimal] = field(default_factory=dict)
    client_timeout_s: float = 1.0
    bnb_fees: bool = False
    recv_window_ms: int = 5000
    # Binance's server clock minus the host's, in ms (a host clock off the venue's): what the
    # ``timestamp`` of a signed request is checked against and ``/api/v3/time`` answers
    server_clock_offset_ms: int = 0
    # the key's permissions (GET /sapi/v1/account/apiRestrictions); a test sets any flag
    api_restrictions: dict[str, Any] = field(default_factory=lambda: dict(TRADE_ONLY))
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    _orders: dict[int, _Order] = field(default_factory=dict)
    _trades: list[_Trade] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _lists: dict[int, _OrderList] = field(default_factory=dict)
    _next_list_id: int = 9_000
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _next_id: int = 5_000_000

    def __post_init__(self) -> None:
        self.symbols = {s["symbol"]: s for s in json.loads(SYMBOLS_FILE.read_text())}

    # -- test controls -------------------------------------------------------------------

    def fail_next(self, method: str, path: str, kind: str) -> None:
        if kind not in {"rate_limit", "timeout_after_booking", "timeout_before_booking"}:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.append(_Fault(method, path, kind))

    def orders(self, client_order_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._match()
            return [
                o.json()
                for o in self._orders.values()
                if client_order_id is None or o.client_order_id == client_order_id
            ]

    def order_lists(self, list_client_order_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._match()
            return [
                ol.json(reports=True)
                for ol in self._lists.values()
                if list_client_order_id is None or ol.list_client_order_id == list_client_order_id
            ]

    def warm(self, symbol: str) -> None:
        """Load a symbol's recorded candles before the clock of a client starts ticking."""
        self._series(symbol)
        self._ranges(symbol, 0, 0)

    def posts(self, path: str = "/api/v3/order") -> int:
        return sum(1 for m, p, _ in self.requests if m == "POST" and p == path)

    # -- request handling ----------------------------------------------------------------

    def take_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.method == method and fault.path == path:
                    del self._faults[i]
                    return fault.kind
        return None

    def server_ms(self) -> int:
        """Binance's wall clock (not the market clock of the recorded data)."""
        return int(time.time() * 1000) + self.server_clock_offset_ms

    def authenticate(self, raw_query: str, headers: dict[str, str]) -> dict[str, str]:
        """Binance's SIGNED endpoint checks, in its order; the verified parameters."""
        if headers.get("x-mbx-apikey") != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload, sep, signature = raw_query.rpartition("&signature=")
        if not sep or not signature:
            raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent.")
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(payload, keep_blank_values=True))
        stamp = int(params.get("timestamp", "0"))
        window = min(int(params.get("recvWindow", self.recv_window_ms)), 60_000)
        wall = self.server_ms()
        if stamp >= wall + 1000 or wall - stamp > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        return params

    def public(self, path: str, params: dict[str, str]) -> Any:
        if path == "/api/v3/ping":
            return {}
        if path == "/api/v3/time":
            return {"serverTime": self.server_ms()}
        if path == "/api/v3/exchangeInfo":
            return {
                "timezone": "UTC",
                "serverTime": self.server_ms(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                     "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND",
                     "intervalNum": 10, "limit": 100},
                ],
                "exchangeFilters": [],
                "symbols": list(self.symbols.values()),
            }  # fmt: skip
        if path == "/api/v3/ticker/24hr":
            return self._ticker(self._symbol(params))
        raise BinanceError(404, -1000, f"unknown endpoint {path}")

    def private(self, method: str, path: str, params: dict[str, str]) -> Any:
        with self._lock:
            self._match()
            if (method, path) == ("GET", "/sapi/v1/account/apiRestrictions"):
                return dict(self.api_restrictions)
            if (method, path) == ("POST", "/api/v3/order"):
                return self._create(params)
            if (method, path) == ("GET", "/api/v3/order"):
                return self._find(params).json()
            if (method, path) == ("DELETE", "/api/v3/order"):
                return self._cancel(params)
            if (method, path) == ("GET", "/api/v3/openOrders"):
                symbol = params.get("symbol")
                return [
                    o.json()
                    for o in self._orders.values()
                    if o.status in {"NEW", "PARTIALLY_FILLED"}
                    and (symbol is None or o.symbol == symbol)
                ]
            if (method, path) == ("GET", "/api/v3/myTrades"):
                symbol = self._symbol(params)
                order_id = params.get("orderId")
                return [
                    t.json()
                    for t in self._trades
                    if t.symbol == symbol and (order_id is None or str(t.order_id) == order_id)
                ]
            if (method, path) == ("POST", "/api/v3/orderList/oco"):
                return self._create_oco(params)
            if (method, path) == ("GET", "/api/v3/orderList"):
                return self._find_list(params, "origClientOrderId").json()
            if (method, path) == ("DELETE", "/api/v3/orderList"):
                return self._cancel_list(params)
            if (method, path) == ("GET", "/api/v3/openOrderList"):
                return [ol.json() for ol in self._lists.values() if not ol.done()]
            if (method, path) == ("GET", "/api/v3/account"):
                return {
                    "makerCommission": 10,
                    "takerCommission": 10,
                    "canTrade": True,
                    "accountType": "SPOT",
                    "updateTime": int(time.time() * 1000),
                    "balances": [
                        {"asset": a, "free": _fmt(v - self._locked(a)), "locked": _fmt(self._locked(a))}
                        for a, v in sorted(self.balances.items())
                    ],
                    "permissions": ["SPOT"],
                }  # fmt: skip
        raise BinanceError(404, -1000, f"unknown endpoint {method} {path}")

    # -- the venue ---------------------------------------------------------------------------

    def _symbol(self, params: dict[str, str]) -> str:
        symbol = params.get("symbol", "")
        if symbol not in self.symbols:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return symbol

    def _pair(self, symbol: str) -> tuple[str, str]:
        info = self.symbols[symbol]
        return str(info["baseAsset"]), str(info["quoteAsset"])

    def _filter(self, symbol: str, kind: str) -> dict[str, Any]:
        for f in self.symbols[symbol]["filters"]:
            if f["filterType"] == kind:
                return dict(f)
        raise KeyError(kind)

    def _bars(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, Decimal, Decimal]]:
        """Recorded 1h bars (open time, open, volume) with ``start_ms <= ts <= end_ms``."""
        if end_ms < start_ms:
            return []
        series = self._series(symbol)
        times = [ts for ts, _, _ in series]
        return series[bisect_left(times, start_ms) : bisect_right(times, end_ms)]

    def _series(self, symbol: str) -> list[tuple[int, Decimal, Decimal]]:
        """The symbol's whole recorded 1h series, through the product's quality gate, once."""
        base, quote = self._pair(symbol)
        key = (id(self.market), symbol)
        if key not in _SERIES:
            frame = self.market.ohlcv(
                f"{base}/{quote}", "1h", utc_from_ms(0), utc_from_ms(4_102_444_800_000)
            ).sort("ts")
            _SERIES[key] = [
                (int(r["ts"]), Decimal(repr(float(r["open"]))), Decimal(repr(float(r["volume"]))))
                for r in frame.iter_rows(named=True)
            ]
        return _SERIES[key]

    def _last_price(self, symbol: str) -> Decimal:
        """The last traded price the recorded data knows at the market clock: the open of the
        latest bar that has opened."""
        now_ms = ms_from_utc(self.now())
        bars = self._bars(symbol, now_ms - 6 * HOUR_MS, now_ms)
        if not bars:
            raise BinanceError(
                503, -1001, "Internal error; unable to process your request. Please try again."
            )
        return bars[-1][1]

    def _ticker(self, symbol: str) -> dict[str, Any]:
        now_ms = ms_from_utc(self.now())
        bars = self._bars(symbol, now_ms - 24 * HOUR_MS, now_ms)
        if not bars:
            raise BinanceError(400, -1121, f"no recorded market for {symbol}")
        last = bars[-1][1]
        volume = sum((v for _, _, v in bars[:-1]), Decimal(0))
        return {
            "symbol": symbol,
            "lastPrice": _fmt(last),
            "openPrice": _fmt(bars[0][1]),
            "volume": _fmt(volume),
            "openTime": bars[0][0],
            "closeTime": now_ms,
            "count": len(bars),
        }

    def _locked(self, asset: str) -> Decimal:
        total = Decimal(0)
        for ol in self._lists.values():  # a list's legs sell the same base asset: locked once
            if not ol.done() and asset == self._pair(ol.symbol)[0]:
                total += max(leg.locked for leg in ol.legs if leg.status in LIVE)
        for o in self._orders.values():
            if o.status in LIVE and o.order_list_id < 0:
                base, quote = self._pair(o.symbol)
                if asset == (quote if o.side == "BUY" else base):
                    total += o.locked
        return total

    def _free(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0)) - self._locked(asset)

    def _create(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._symbol(params)
        if params.get("type") == "STOP_LOSS_LIMIT":
            return self._create_stop(symbol, params)
        if params.get("type") != "MARKET":
            raise BinanceError(400, -1116, "Invalid orderType.")
        side = params.get("side", "")
        if side not in {"BUY", "SELL"}:
            raise BinanceError(400, -1117, "Invalid side.")
        client_id = params.get("newClientOrderId") or f"fake{self._next_id}"
        if any(
            o.client_order_id == client_id and o.status in {"NEW", "PARTIALLY_FILLED"}
            for o in self._orders.values()
        ):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        try:
            qty = Decimal(params.get("quantity", ""))
        except ArithmeticError as exc:
            raise BinanceError(
                400, -1100, "Illegal characters found in parameter 'quantity'."
            ) from exc
        lot = self._filter(symbol, "LOT_SIZE")
        step, min_qty = Decimal(lot["stepSize"]), Decimal(lot["minQty"])
        if qty < min_qty or qty > Decimal(lot["maxQty"]) or (qty - min_qty) % step != 0:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        price = self._last_price(symbol)
        notional = self._filter(symbol, "NOTIONAL")
        if notional.get("applyMinToMarket") and qty * price < Decimal(notional["minNotional"]):
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        base, quote = self._pair(symbol)
        need = qty * price * Decimal("1.05") if side == "BUY" else qty  # market buy headroom
        if self._free(quote if side == "BUY" else base) < need:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        self._next_id += 1
        now_ms = ms_from_utc(self.now())
        order = _Order(symbol, self._next_id, client_id, side, qty, now_ms, locked=need)
        self._orders[order.order_id] = order
        self._match()
        answer = order.json()
        answer["transactTime"] = now_ms
        answer["fills"] = [
            {"price": t["price"], "qty": t["qty"], "commission": t["commission"],
             "commissionAsset": t["commissionAsset"], "tradeId": t["id"]}
            for t in (x.json() for x in self._trades if x.order_id == order.order_id)
        ]  # fmt: skip
        return answer

    def _decimal(self, params: dict[str, str], name: str) -> Decimal:
        raw = params.get(name)
        if raw is None or raw == "":
            raise BinanceError(400, -1102, f"Mandatory parameter '{name}' was not sent.")
        try:
            value = Decimal(raw)
        except ArithmeticError as exc:
            raise BinanceError(
                400, -1100, f"Illegal characters found in parameter '{name}'."
            ) from exc
        if not value.is_finite() or value <= 0:
            raise BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")
        return value

    def _create_stop(self, symbol: str, params: dict[str, str]) -> dict[str, Any]:
        """A ``STOP_LOSS_LIMIT`` sell (the protective stop): ``quantity``, ``price`` (the
        limit), ``stopPrice`` (the trigger) and ``timeInForce`` required, checked against
        LOT_SIZE, PRICE_FILTER and NOTIONAL (at the limit price) like Binance; refused when it
        would trigger at once (the last price at or below the trigger); the base asset it may
        sell is locked while it rests. Only sells (what the product places)."""
        if "STOP_LOSS_LIMIT" not in self.symbols[symbol].get("orderTypes", []):
            raise BinanceError(400, -1116, "Invalid orderType.")
        if params.get("side") != "SELL":
            raise BinanceError(400, -1117, "Invalid side.")
        if params.get("timeInForce") != "GTC":
            raise BinanceError(400, -1102, "Mandatory parameter 'timeInForce' was not sent.")
        qty = self._decimal(params, "quantity")
        limit = self._decimal(params, "price")
        stop = self._decimal(params, "stopPrice")
        client_id = params.get("newClientOrderId") or f"fake{self._next_id}"
        if any(
            o.client_order_id == client_id and o.status in {"NEW", "PARTIALLY_FILLED"}
            for o in self._orders.values()
        ):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        lot = self._filter(symbol, "LOT_SIZE")
        step, min_qty = Decimal(lot["stepSize"]), Decimal(lot["minQty"])
        if qty < min_qty or qty > Decimal(lot["maxQty"]) or (qty - min_qty) % step != 0:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        tick_filter = self._filter(symbol, "PRICE_FILTER")
        tick = Decimal(tick_filter["tickSize"])
        for value in (limit, stop):
            if value < Decimal(tick_filter["minPrice"]) or value % tick != 0:
                raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        if qty * limit < Decimal(self._filter(symbol, "NOTIONAL")["minNotional"]):
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        if self._last_price(symbol) <= stop:
            raise BinanceError(400, -2010, "Stop price would trigger immediately.")
        base, _quote = self._pair(symbol)
        if self._free(base) < qty:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        self._next_id += 1
        now_ms = ms_from_utc(self.now())
        order = _Order(
            symbol, self._next_id, client_id, "SELL", qty, now_ms, locked=qty,
            type="STOP_LOSS_LIMIT", price=limit, stop_price=stop,
        )  # fmt: skip
        self._orders[order.order_id] = order
        answer = order.json()
        answer["transactTime"] = now_ms
        answer["fills"] = []
        return answer

    def _create_oco(self, params: dict[str, str]) -> dict[str, Any]:
        """``POST /api/v3/orderList/oco``: a SELL list of a ``LIMIT_MAKER`` above leg (the
        take-profit, ``abovePrice``) and a ``STOP_LOSS_LIMIT`` below leg (``belowStopPrice``,
        ``belowPrice``, ``belowTimeInForce``) for one ``quantity`` (what the product places).
        Checked like Binance: the symbol allows OCO, the client IDs are distinct and the list's
        is not used by an open list (a leg's not by an open order), each leg passes LOT_SIZE,
        PRICE_FILTER and NOTIONAL, the prices keep ``abovePrice > last > belowStopPrice``, the
        base asset is free. The base asset is locked once for the list."""
        symbol = self._symbol(params)
        if not self.symbols[symbol].get("ocoAllowed", False):
            raise BinanceError(400, -2010, "OCO orders are not supported for this symbol")
        if params.get("side") != "SELL":
            raise BinanceError(400, -1117, "Invalid side.")
        if params.get("aboveType") != "LIMIT_MAKER" or params.get("belowType") not in {
            "STOP_LOSS_LIMIT"
        }:
            raise BinanceError(400, -1116, "Invalid orderType.")
        if params.get("belowTimeInForce") != "GTC":
            raise BinanceError(400, -1102, "Mandatory parameter 'belowTimeInForce' was not sent.")
        qty = self._decimal(params, "quantity")
        above_price = self._decimal(params, "abovePrice")
        below_stop = self._decimal(params, "belowStopPrice")
        below_price = self._decimal(params, "belowPrice")
        list_id = params.get("listClientOrderId") or f"fakelist{self._next_list_id}"
        above_id = params.get("aboveClientOrderId") or f"fake{self._next_id}a"
        below_id = params.get("belowClientOrderId") or f"fake{self._next_id}b"
        if len({list_id, above_id, below_id}) < 3:
            raise BinanceError(400, -1104, "Duplicate client order ID in the order list.")
        if any(ol.list_client_order_id == list_id and not ol.done() for ol in self._lists.values()):
            raise BinanceError(400, -2010, "Order list's listClientOrderId is already in use.")
        if any(
            o.client_order_id in {above_id, below_id} and o.status in LIVE
            for o in self._orders.values()
        ):
            raise BinanceError(400, -2010, "Duplicate order sent.")
        lot = self._filter(symbol, "LOT_SIZE")
        step, min_qty = Decimal(lot["stepSize"]), Decimal(lot["minQty"])
        if qty < min_qty or qty > Decimal(lot["maxQty"]) or (qty - min_qty) % step != 0:
            raise BinanceError(400, -1013, "Filter failure: LOT_SIZE")
        tick_filter = self._filter(symbol, "PRICE_FILTER")
        tick = Decimal(tick_filter["tickSize"])
        for value in (above_price, below_stop, below_price):
            if value < Decimal(tick_filter["minPrice"]) or value % tick != 0:
                raise BinanceError(400, -1013, "Filter failure: PRICE_FILTER")
        min_notional = Decimal(self._filter(symbol, "NOTIONAL")["minNotional"])
        if qty * below_price < min_notional or qty * above_price < min_notional:
            raise BinanceError(400, -1013, "Filter failure: NOTIONAL")
        last = self._last_price(symbol)
        if not above_price > last > below_stop:
            raise BinanceError(
                400, -2010, "The relationship of the prices for the orders is not correct."
            )
        self._percent_price_by_side(symbol, last, (above_price, below_price))
        if above_price <= self.best_bid.get(symbol, last):
            raise BinanceError(400, -2010, "Order would immediately match and take.")
        base, _quote = self._pair(symbol)
        if self._free(base) < qty:
            raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
        now_ms = ms_from_utc(self.now())
        self._next_list_id += 1
        self._next_id += 1
        below = _Order(
            symbol, self._next_id, below_id, "SELL", qty, now_ms, locked=qty,
            type="STOP_LOSS_LIMIT", price=below_price, stop_price=below_stop,
            order_list_id=self._next_list_id,
        )  # fmt: skip
        self._next_id += 1
        above = _Order(
            symbol, self._next_id, above_id, "SELL", qty, now_ms, locked=qty,
            type="LIMIT_MAKER", price=above_price, order_list_id=self._next_list_id,
        )  # fmt: skip
        for leg in (below, above):
            self._orders[leg.order_id] = leg
        order_list = _OrderList(symbol, self._next_list_id, list_id, above, below, now_ms)
        self._lists[order_list.order_list_id] = order_list
        answer = order_list.json(reports=True)
        for report in answer["orderReports"]:
            report["transactTime"] = now_ms
        return answer

    def _percent_price_by_side(
        self, symbol: str, average: Decimal, sell_prices: tuple[Decimal, ...]
    ) -> None:
        """A sell's price within ``PERCENT_PRICE_BY_SIDE``'s ask multipliers of the average
        price (the last price here), when the symbol's filters have it."""
        try:
            bounds = self._filter(symbol, "PERCENT_PRICE_BY_SIDE")
        except KeyError:
            return
        up, down = Decimal(bounds["askMultiplierUp"]), Decimal(bounds["askMultiplierDown"])
        if any(not average * down <= price <= average * up for price in sell_prices):
            raise BinanceError(400, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE")

    def _find_list(self, params: dict[str, str], client_key: str) -> _OrderList:
        """By ``orderListId`` (which takes precedence) or the list's client ID."""
        by_id = params.get("orderListId")
        by_client = params.get(client_key)
        if by_id is None and by_client is None:
            raise BinanceError(
                400,
                -1102,
                f"Param 'orderListId' or '{client_key}' must be sent, but both were empty/null!",
            )
        matching = [
            ol
            for ol in self._lists.values()
            if (
                str(ol.order_list_id) == by_id
                if by_id is not None
                else ol.list_client_order_id == by_client
            )
        ]
        if matching:
            return matching[-1]  # the latest list of a client ID reused after the first ended
        raise BinanceError(400, -2013, "Order list does not exist.")

    def _cancel_list(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._symbol(params)
        try:
            order_list = self._find_list(params, "listClientOrderId")
        except BinanceError as exc:
            if exc.code == -1102:
                raise
            raise BinanceError(400, -2011, "Unknown order list sent.") from exc
        if order_list.symbol != symbol or order_list.all_done():
            # an ALL_DONE list is not cancelled whole: a leg still working is cancelled by its
            # own ID (DELETE /api/v3/order)
            raise BinanceError(400, -2011, "Unknown order list sent.")
        self._cancel_legs(order_list)
        return order_list.json(reports=True)

    def _cancel_legs(self, order_list: _OrderList) -> None:
        now_ms = ms_from_utc(self.now())
        for leg in order_list.legs:
            if leg.status in LIVE:
                leg.status, leg.locked, leg.update_ms = "CANCELED", Decimal(0), now_ms
        order_list.update_ms = now_ms

    def _match_list(self, order_list: _OrderList, now_ms: int) -> None:
        """Both legs against the recorded bars that opened after the list was placed and have
        closed: the stop leg triggered by a bar whose low reaches its stop (as
        :meth:`_match_stop`), the take-profit filled at its price by a bar whose high reaches
        it. The first to act expires the other (Binance's one-cancels-the-other); a bar that
        reaches both is the stop's (which came first inside the hour is not recorded)."""
        above, below = order_list.above, order_list.below
        pending = above.status in LIVE and below.status in LIVE and not below.triggered
        start = max(order_list.placed_ms, above.last_bar_ms + 1)
        bars = self._ranges(order_list.symbol, start, now_ms - HOUR_MS)
        if pending:
            for bar_ms, _open, low, high in bars:
                above.last_bar_ms = bar_ms
                if low <= below.stop_price:
                    self._expire(above, bar_ms)
                    below.last_bar_ms = bar_ms - 1
                    break
                if high >= above.price:
                    self._fill(above, bar_ms, above.price)
                    self._expire(below, bar_ms)
                    break
            bars = [bar for bar in bars if bar[0] > above.last_bar_ms]
        if below.status in LIVE:
            self._match_stop(below, now_ms)
        elif above.status in LIVE:  # a take-profit partly filled: the rest on later bars
            for bar_ms, _open, _low, high in bars:
                above.last_bar_ms = bar_ms
                if high >= above.price:
                    self._fill(above, bar_ms, above.price)
                if above.status not in LIVE:
                    break
        self._finish_list(order_list)

    def _expire(self, leg: _Order, bar_ms: int) -> None:
        if leg.status in LIVE:
            leg.status, leg.locked, leg.update_ms = "EXPIRED", Decimal(0), bar_ms

    def _finish_list(self, order_list: _OrderList) -> None:
        if order_list.done() and not order_list.update_ms:
            order_list.update_ms = max(leg.update_ms for leg in order_list.legs)

    def _find(self, params: dict[str, str]) -> _Order:
        symbol = self._symbol(params)
        by_client = params.get("origClientOrderId")
        by_id = params.get("orderId")
        for order in self._orders.values():
            if order.symbol != symbol:
                continue
            if (by_client is not None and order.client_order_id == by_client) or (
                by_id is not None and str(order.order_id) == by_id
            ):
                return order
        raise BinanceError(400, -2013, "Order does not exist.")

    def _cancel(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            order = self._find(params)
        except BinanceError as exc:
            raise BinanceError(400, -2011, "Unknown order sent.") from exc
        if order.status not in {"NEW", "PARTIALLY_FILLED"}:
            raise BinanceError(400, -2011, "Unknown order sent.")
        if order.order_list_id >= 0:  # cancelling one leg cancels the whole list
            self._cancel_legs(self._lists[order.order_list_id])
            return order.json()
        order.status = "CANCELED"
        order.locked = Decimal(0)
        order.update_ms = ms_from_utc(self.now())
        return order.json()

    def _match(self) -> None:
        """Fill the open orders on every recorded bar that has opened since they last matched."""
        now_ms = ms_from_utc(self.now())
        for order_list in self._lists.values():
            if not order_list.done():
                self._match_list(order_list, now_ms)
        for order in self._orders.values():
            if order.status not in {"NEW", "PARTIALLY_FILLED"} or order.order_list_id >= 0:
                continue
            if order.type == "STOP_LOSS_LIMIT":
                self._match_stop(order, now_ms)
                continue
            start = max(order.placed_ms, order.last_bar_ms + 1)
            for bar_ms, open_price, _volume in self._bars(order.symbol, start, now_ms):
                order.last_bar_ms = bar_ms
                self._fill(order, bar_ms, open_price)
                if order.status == "FILLED":
                    break

    def _match_stop(self, order: _Order, now_ms: int) -> None:
        """A resting stop against the recorded bars that opened after it was placed and have
        closed by now (a bar's low and high are known only once it closed). Triggered by the
        first bar whose low reaches the stop: filled at the stop, or at the bar's open when the
        bar opened below it (a gap) and the open is still at or above the limit. A triggered
        stop below its limit rests as a limit sell, filled at the limit (or a higher open) by
        the first later bar whose high reaches it."""
        start = max(order.placed_ms, order.last_bar_ms + 1)
        for bar_ms, open_price, low, high in self._ranges(order.symbol, start, now_ms - HOUR_MS):
            order.last_bar_ms = bar_ms
            price: Decimal | None = None
            if not order.triggered:
                if low > order.stop_price:
                    continue
                order.triggered = True
                if open_price > order.stop_price:
                    price = order.stop_price
                elif open_price >= order.price:
                    price = open_price
            if price is None and high >= order.price:
                price = max(open_price, order.price)
            if price is not None:
                self._fill(order, bar_ms, price)
            if order.status == "FILLED":
                break

    def _ranges(
        self, symbol: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, Decimal, Decimal, Decimal]]:
        """Recorded 1h bars (open time, open, low, high) with ``start_ms <= ts <= end_ms``."""
        if end_ms < start_ms:
            return []
        base, quote = self._pair(symbol)
        key = (id(self.market), symbol)
        if key not in _RANGES:
            frame = self.market.ohlcv(
                f"{base}/{quote}", "1h", utc_from_ms(0), utc_from_ms(4_102_444_800_000)
            ).sort("ts")
            _RANGES[key] = [
                (int(r["ts"]), Decimal(repr(float(r["open"]))), Decimal(repr(float(r["low"]))),
                 Decimal(repr(float(r["high"]))))
                for r in frame.iter_rows(named=True)
            ]  # fmt: skip
        series = _RANGES[key]
        times = [row[0] for row in series]
        return series[bisect_left(times, start_ms) : bisect_right(times, end_ms)]

    def _fill(self, order: _Order, bar_ms: int, price: Decimal) -> None:
        base, quote = self._pair(order.symbol)
        step = Decimal(self._filter(order.symbol, "LOT_SIZE")["stepSize"])
        qty = order.orig_qty - order.executed_qty
        cap = self.max_fill_per_bar.get(order.symbol)
        if cap is not None:
            qty = min(qty, cap)
        if order.side == "BUY":  # never beyond what the order reserved
            qty = min(qty, (order.locked / price / step).to_integral_value(ROUND_DOWN) * step)
        if qty <= 0:
            return
        cost = qty * price
        if order.side == "BUY":
            commission, asset = qty * TAKER_COMMISSION, base
            self.balances[quote] = self.balances.get(quote, Decimal(0)) - cost
            self.balances[base] = self.balances.get(base, Decimal(0)) + qty - commission
            order.locked -= cost
        else:
            commission, asset = cost * TAKER_COMMISSION, quote
            self.balances[base] = self.balances.get(base, Decimal(0)) - qty
            self.balances[quote] = self.balances.get(quote, Decimal(0)) + cost - commission
            order.locked -= qty
        if self.bnb_fees and base != "BNB" and quote != "BNB":
            commission, asset = self._in_bnb(order, bar_ms, cost, commission, asset)
        commission = commission.quantize(_E8, rounding=ROUND_DOWN)
        self._next_id += 1
        self._trades.append(
            _Trade(order.symbol, self._next_id, order.order_id, price, qty, commission, asset,
                   bar_ms, order.side == "BUY")
        )  # fmt: skip
        order.executed_qty += qty
        order.quote_qty += cost
        order.update_ms = bar_ms
        if order.executed_qty >= order.orig_qty:
            order.status, order.locked = "FILLED", Decimal(0)
        else:
            order.status = "PARTIALLY_FILLED"

    def _in_bnb(
        self, order: _Order, bar_ms: int, cost: Decimal, commission: Decimal, asset: str
    ) -> tuple[Decimal, str]:
        """Binance's "pay fees with BNB": 75% of the taker commission's value, taken from the
        BNB balance at the open of the recorded BNBUSDT bar of the fill (when it covers it; the
        asset received pays the full commission otherwise). The commission already taken from
        the asset received is given back."""
        bars = self._bars("BNBUSDT", bar_ms, bar_ms)
        if not bars:
            return commission, asset
        in_bnb = (cost * BNB_COMMISSION / bars[0][1]).quantize(_E8, rounding=ROUND_DOWN)
        if self.balances.get("BNB", Decimal(0)) < in_bnb:
            return commission, asset
        self.balances["BNB"] -= in_bnb
        self.balances[asset] += commission  # the asset received arrives whole
        return in_bnb, "BNB"


class _Handler(BaseHTTPRequestHandler):
    venue: FakeBinance

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): the venue's work is done all the same

    def _handle(self, method: str) -> None:
        url = urlparse(self.path)
        raw = url.query
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else raw
        headers = {k.lower(): v for k, v in self.headers.items()}
        venue = self.venue
        fault = venue.take_fault(method, url.path)
        try:
            if url.path in PRIVATE_PATHS:
                params = venue.authenticate(raw, headers)
                venue.requests.append((method, url.path, params))
                if fault == "rate_limit":
                    raise BinanceError(
                        429,
                        -1003,
                        "Too many requests; current limit of IP(127.0.0.1) is 6000 requests "
                        "per minute. Please use WebSocket Streams for live updates to avoid bans.",
                    )
                if fault == "timeout_before_booking":
                    time.sleep(venue.client_timeout_s * 2)
                    return
                answer = venue.private(method, url.path, params)
                if fault == "timeout_after_booking":
                    time.sleep(venue.client_timeout_s * 2)
            else:
                params = dict(parse_qsl(raw))
                venue.requests.append((method, url.path, params))
                answer = venue.public(url.path, params)
        except BinanceError as exc:
            extra = {"Retry-After": "1"} if exc.http_status == 429 else None
            self._answer(exc.http_status, {"code": exc.code, "msg": exc.msg}, extra)
            return
        self._answer(200, answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


@contextmanager
def serve(venue: FakeBinance) -> Iterator[str]:
    """Serve ``venue`` on a free localhost port; yields its base URL."""
    handler = type("Handler", (_Handler,), {"venue": venue})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
