"""A venue's public data the agents need beside its spot candles, through ccxt: the spot pairs
and their 24 h quote volume (the liquidity-floor universe), its linear perpetuals, their funding
rate history and 8 h mark-price candles.

ccxt calls: ``fetch_currencies()`` (withdrawal constraints), ``load_markets()`` (``spot`` / ``swap`` / ``linear`` / ``settle`` / ``active``),
``fetch_tickers()`` (``quoteVolume``; ``baseVolume x last`` when the venue reports no quote
volume), ``fetch_funding_rate_history(symbol, since, limit)`` (``timestamp``, ``fundingRate``)
and ``fetch_ohlcv(symbol, '8h', since, limit, {'price': 'mark'})`` on the perpetual's unified
symbol ``BASE/QUOTE:QUOTE``. Reads retry with backoff; errors map to the exchange taxonomy in
one place (:func:`~cryptosmarttrader.adapters.ccxt_exchange.map_ccxt_error`); a payload that
cannot be trusted raises ``InvalidPayloadError`` with the reason.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import ccxt
import polars as pl

from cryptosmarttrader.adapters.ccxt_exchange import map_ccxt_error
from cryptosmarttrader.adapters.key_permissions import KeyPermissionChecks, KeyPurpose
from cryptosmarttrader.domain.agents.arbitrage import WITHDRAWAL_SCHEMA
from cryptosmarttrader.domain.agents.funding import FUNDING_SCHEMA
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import (
    InvalidPayloadError,
    RetryPolicy,
    RetryRunner,
    capabilities_for,
    validate_candle,
)
from cryptosmarttrader.domain.market import OHLCV_SCHEMA, TIMEFRAME_MS
from cryptosmarttrader.domain.types import Symbol, ms_from_utc
from cryptosmarttrader.ports import CandleSource

__all__ = ["SIGNED_CURRENCY_DATA", "CcxtVenueFeeds", "no_read_only_keys"]

# Venues that publish their currency data (withdrawal fees, minimums, suspensions) only to
# signed requests: without read-only keys ccxt answers nothing for them.
SIGNED_CURRENCY_DATA: Final[Mapping[str, str]] = {
    "binance": "currency data is only published to signed requests",
}


def no_read_only_keys(exchange: str) -> str | None:
    """Why ``exchange``'s withdrawal constraints cannot be read without read-only keys, or None
    when it publishes them to anyone."""
    why = SIGNED_CURRENCY_DATA.get(exchange)
    return None if why is None else f"{exchange}: no read-only keys configured: {why}"


T = TypeVar("T")
PAGE: Final = 500
MAX_PAGES: Final = 50


class CcxtVenueFeeds:
    def __init__(self, client: Any, clock: Clock, policy: RetryPolicy | None = None) -> None:
        client.enableRateLimit = True
        self._client = client
        self._name = str(client.id)
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._markets: Mapping[str, Mapping[str, Any]] | None = None

    @classmethod
    def create(
        cls, exchange_id: str, clock: Clock, credentials: Mapping[str, str] | None = None
    ) -> CcxtVenueFeeds:
        """A public client, or one signing its requests with READ-ONLY ``credentials`` (ccxt's
        ``apiKey`` / ``secret`` / ``password``) for data a venue serves to signed requests only."""
        caps = capabilities_for(exchange_id)
        client = getattr(ccxt, caps.exchange_id.value)(
            {"enableRateLimit": True, "rateLimit": caps.rate_limit_ms, **(credentials or {})}
        )
        # Binance's signed currency list also asks for the margin pairs by default: a second
        # call the constraints do not use (and one more way for the list to fail)
        client.options["fetchMargins"] = False
        return cls(client, clock)

    def key_refusal(self, checks: KeyPermissionChecks) -> str | None:
        """Why the READ-ONLY key this client signs with is refused (it may trade, withdraw or
        transfer: Binance's ``GET /sapi/v1/account/apiRestrictions``, cached per key by
        ``checks``), or None."""
        client = self._client
        return checks.refusal(
            KeyPurpose.READ_ONLY,
            str(client.apiKey or ""),
            lambda: self._read("api_restrictions", client.sapi_get_account_apirestrictions),
        )

    def _read(self, operation: str, call: Callable[[], T]) -> T:
        def once() -> T:
            try:
                return call()
            except ccxt.BaseError as exc:
                raise map_ccxt_error(exc, self._name, operation) from exc

        return RetryRunner(self._policy, time.sleep, random.random, time.monotonic).run(once)

    def _all_markets(self) -> Mapping[str, Mapping[str, Any]]:
        if self._markets is None:
            self._markets = self._read("load_markets", self._client.load_markets)
        return self._markets

    # ---------------------------------------------------------------- SpotVenue
    def spot_quote_volumes(self, quote: str) -> Mapping[str, float | None]:
        spot = {
            str(m["symbol"])
            for m in self._all_markets().values()
            if m.get("spot") and m.get("active") is not False and m.get("quote") == quote
        }
        tickers: Mapping[str, Mapping[str, Any]] = self._read(
            "fetch_tickers", self._client.fetch_tickers
        )
        out: dict[str, float | None] = dict.fromkeys(sorted(spot))
        for symbol in spot:
            t = tickers.get(symbol) or {}
            volume = _number(t.get("quoteVolume"))
            if volume is None:
                base, last = _number(t.get("baseVolume")), _number(t.get("last"))
                volume = None if base is None or last is None else base * last
            out[symbol] = volume if volume is not None and volume >= 0 else None
        return out

    # ---------------------------------------------------------------- withdrawals
    def withdrawal_constraints(self, coins: Sequence[str]) -> pl.DataFrame:
        """Per coin (``BTC``): whether withdrawals and deposits are enabled, the withdrawal fee
        (coin units) and minimum, from ccxt ``fetch_currencies`` (``withdraw``, ``deposit``,
        ``fee``, ``limits.withdraw.min``; when the currency lists networks open for withdrawals,
        the network named as the coin when it is open, else the dearest open one, with that
        network's minimum: ccxt's currency-level fee is the cheapest network's, which the
        receiving venue may not accept). A venue that serves no currency data
        without credentials (Binance) answers nothing to a public client: the ingest asks it
        with read-only keys, or records :func:`no_read_only_keys`; never a guessed constraint.
        Columns: ``WITHDRAWAL_SCHEMA`` with ``symbol`` = the coin code, ``ts`` = now."""
        currencies: Mapping[str, Mapping[str, Any]] | None = self._read(
            "fetch_currencies", self._client.fetch_currencies
        )
        now_ms = ms_from_utc(self._clock.now())
        rows = []
        for coin in sorted(set(coins)):
            cur = (currencies or {}).get(coin)
            if not cur:
                continue
            fee = _reported(cur.get("fee"))
            minimum = _reported(((cur.get("limits") or {}).get("withdraw") or {}).get("min"))
            # ccxt derives a currency's fee and minimum from its networks' cheapest (Binance
            # LINK: the 0.003 BEP2 fee beside 0.55 on its default ERC20 chain): with networks
            # listed, the network rule below decides, never that derived cheapest fee
            networks: Mapping[str, Mapping[str, Any]] = cur.get("networks") or {}
            open_nets = {
                code: n for code, n in networks.items()
                if n.get("withdraw") is True and _reported(n.get("fee")) is not None
            }  # fmt: skip
            if open_nets:
                # the coin's own chain when open (the one every venue takes), else the
                # dearest open network: whether the receiving venue accepts a cheaper
                # chain is not known here, and a fee is never understated
                best = open_nets.get(coin) or max(
                    open_nets.values(), key=lambda n: _dearest(n.get("fee"))
                )
                # as stated: a fee that is not a non-negative number reaches the gate, which
                # rejects the coin (a broken network is never skipped for a cheaper one)
                fee = _reported(best.get("fee"))
                minimum = _reported(((best.get("limits") or {}).get("withdraw") or {}).get("min"))
            rows.append(
                (
                    self._name,
                    coin,
                    _flag(cur.get("withdraw")),
                    _flag(cur.get("deposit")),
                    fee,
                    minimum,
                    now_ms,
                )
            )
        return pl.DataFrame(rows, schema=WITHDRAWAL_SCHEMA, orient="row")

    # ---------------------------------------------------------------- PerpetualVenue
    def _perpetual(self, pair: str) -> str:
        base, _, quote = pair.partition("/")
        return f"{base}/{quote}:{quote}"

    def perpetual_pairs(self, quote: str) -> frozenset[str]:
        return frozenset(
            f"{m['base']}/{quote}"
            for m in self._all_markets().values()
            if m.get("swap")
            and m.get("linear")
            and m.get("settle") == quote
            and m.get("quote") == quote
            and m.get("active") is not False
        )

    def funding_history(self, pair: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        op = "fetch_funding_rate_history"
        perp = self._perpetual(pair)
        rows: dict[int, float] = {}
        cursor = since_ms
        for _ in range(MAX_PAGES):
            page: list[Mapping[str, Any]] = self._read(
                op, partial(self._client.fetch_funding_rate_history, perp, cursor, PAGE)
            )
            last = cursor - 1
            for item in page or []:
                ts, rate = item.get("timestamp"), _number(item.get("fundingRate"))
                if not isinstance(ts, int) or rate is None:
                    raise InvalidPayloadError(self._name, op, f"{perp}: unusable reading {item!r}")
                last = max(last, ts)
                if since_ms <= ts <= until_ms:
                    rows[ts] = rate
            if last < cursor or last >= until_ms:
                break
            cursor = last + 1
        return pl.DataFrame(
            {
                "symbol": [pair] * len(rows),
                "ts": sorted(rows),
                "funding_rate": [rows[t] for t in sorted(rows)],
            },
            schema=FUNDING_SCHEMA,
        )

    def mark_candles(self) -> CandleSource:
        return _CcxtMarks(self)


class _CcxtMarks:
    def __init__(self, feeds: CcxtVenueFeeds) -> None:
        self._feeds = feeds

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        feeds, op = self._feeds, "fetch_mark_ohlcv"
        tf_ms = TIMEFRAME_MS[timeframe]
        perp = feeds._perpetual(symbol.value)
        now_ms = ms_from_utc(feeds._clock.now())
        candles: dict[int, tuple[float, ...]] = {}
        cursor = since_ms
        for _ in range(MAX_PAGES):
            page: list[list[object]] = feeds._read(
                op,
                partial(
                    feeds._client.fetch_ohlcv, perp, timeframe, cursor, PAGE, {"price": "mark"}
                ),
            )
            last = cursor - 1
            for row in page or []:
                candle = validate_candle(row, feeds._name, tf_ms)
                last = max(last, candle.ts)
                if since_ms <= candle.ts <= until_ms and candle.ts + tf_ms <= now_ms:
                    candles[candle.ts] = (
                        float(candle.open), float(candle.high), float(candle.low),
                        float(candle.close), float(candle.volume),
                    )  # fmt: skip
            if last < cursor or last >= until_ms:
                break
            cursor = last + tf_ms
        ts = sorted(candles)
        rows = [(symbol.value, t, *candles[t]) for t in ts]
        return pl.DataFrame(rows, schema=OHLCV_SCHEMA, orient="row")


def _reported(value: object) -> float | None:
    """A stated number as stated (an infinite or NaN one kept, for the gate to refuse), None
    when nothing is stated."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _dearest(value: object) -> float:
    """A network's fee for ranking: one not stated as a finite number ranks dearest."""
    fee = _reported(value)
    return fee if fee is not None and math.isfinite(fee) else math.inf


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None
