"""CcxtExchange replayed against recorded real exchange payloads (no network).

Each venue's ccxt client keeps its real request building and parsing; only the instance's HTTP
``fetch`` is replaced by a replay that serves files from tests/fixtures/exchanges/<venue>/
(sources in that folder's README) and records every request it receives.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import polars as pl
import pytest

from cryptosmarttrader.adapters.ccxt_exchange import SERVER_TIME_MAX_AGE_S, CcxtExchange
from cryptosmarttrader.adapters.ccxt_venue import ccxt_client
from cryptosmarttrader.domain.aggregates import Fill, Position
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import (
    CAPABILITIES,
    ExchangeId,
    FatalExchangeError,
    InvalidPayloadError,
    MarketRulesUnknownError,
    NotSupportedByExchange,
    OrderStateUnknownError,
    OrderType,
    RetryableExchangeError,
    RetryPolicy,
)
from cryptosmarttrader.domain.market import OHLCV_SCHEMA
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    Price,
    Quantity,
    Side,
    Symbol,
    utc_from_ms,
)
from cryptosmarttrader.domain.venue import VenueMode

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exchanges"
OUR_ID = ClientOrderId("9f2c4e1a7b3d5f608192a3b4c5d6e7f8a9b0c1d2e3f405162738495a6b7c8d9e")
BTC = Symbol("BTC/USDT")
LTC = Symbol("LTC/USDT")
HOUR_MS = 3_600_000


def load(venue: str, name: str) -> Any:
    return json.loads((FIXTURES / venue / name).read_text())


@dataclass
class Replay:
    """Stands in for ccxt's HTTP layer: URL path fragment -> recorded JSON (or an exception)."""

    routes: dict[str, list[Any]]
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def __call__(
        self, url: str, method: str = "GET", headers: Any = None, body: str | None = None
    ) -> Any:
        self.requests.append((method, url, body))
        for fragment, answers in self.routes.items():
            if fragment in urlparse(url).path:
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, BaseException):
                    raise answer
                return answer
        raise AssertionError(f"no recorded payload for {method} {url}")

    def params(self, index: int = -1) -> dict[str, list[str]]:
        _, url, body = self.requests[index]
        return parse_qs(body or urlparse(url).query)


def _client(venue: ExchangeId) -> ccxt.Exchange:
    creds = {
        # Placeholders so ccxt signs private requests; nothing is sent anywhere.
        ExchangeId.KRAKEN: {"apiKey": "replay", "secret": "cmVwbGF5"},
        ExchangeId.BINANCE: {"apiKey": "replay", "secret": "replay"},
        ExchangeId.KUCOIN: {"apiKey": "replay", "secret": "replay", "password": "replay"},
    }[venue]
    client: ccxt.Exchange = getattr(ccxt, venue.value)({"enableRateLimit": True, **creds})
    client.rateLimit = 0  # keep the throttle on, without making the suite wait
    if venue is ExchangeId.BINANCE:
        client.options["crossMarginPairsData"] = []
        client.options["isolatedMarginPairsData"] = []
        raw = load("binance", "markets_exchangeinfo_symbols.json")
        client.set_markets([client.parse_market(m) for m in raw])
    else:
        client.set_markets(load(venue.value, "markets.json"))
    if venue is ExchangeId.KUCOIN:
        # Pin the classic (non-unified, non-HF) account; live ccxt probes it with an extra call.
        client.options["uta"] = False
        client.options["hf"] = False
    return client


@dataclass
class Harness:
    exchange: CcxtExchange
    replay: Replay
    sleeps: list[float]


def harness(
    venue: ExchangeId,
    routes: dict[str, list[Any]],
    now: datetime = datetime(2024, 3, 14, tzinfo=UTC),
    policy: RetryPolicy | None = None,
) -> Harness:
    client = _client(venue)
    if venue is ExchangeId.KRAKEN and "/Time" not in routes:
        # Kraken's clock, read before an order's deadline is set: the host's here
        routes = {**routes, "/Time": [_kraken_time(int(time.time()))]}
    replay = Replay(routes)
    client.fetch = replay
    sleeps: list[float] = []
    exchange = CcxtExchange(
        client,
        CAPABILITIES[venue],
        FixedClock(now),
        policy or RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=4.0, max_total_s=60),
        sleep=sleeps.append,
        unit_random=lambda: 0.5,
        monotonic=lambda: 0.0,
    )
    return Harness(exchange, replay, sleeps)


# ---------------------------------------------------------------------------------------------
# Market data
# ---------------------------------------------------------------------------------------------


def test_kraken_ohlcv_keeps_the_recorded_gap_and_drops_the_open_candle() -> None:
    # Given Kraken's recorded 1h OHLC page (a gap after 03:00 UTC, last candle 2024-02-01 15:00)
    # and a clock inside that last hour, so the venue's last candle is still open
    now = datetime(2024, 2, 1, 15, 30, tzinfo=UTC)
    h = harness(ExchangeId.KRAKEN, {"/OHLC": [load("kraken", "ohlc_btcusdt_1h.json")]}, now)

    # When fetching from 2024-01-30 15:23:11 UTC up to the clock
    frame = h.exchange.fetch_ohlcv(BTC, "1h", 1706628191000, 1706801400000)

    # Then the closed candles come back as recorded, the gap is not filled, the open one dropped
    assert frame.schema == pl.Schema(OHLCV_SCHEMA)
    assert frame["ts"].to_list() == [1706630400000, 1706634000000, 1706637600000, 1706641200000]
    assert frame.row(0) == (
        "BTC/USDT",
        1706630400000,
        43366.3,
        43529.2,
        43234.2,
        43485.0,
        12.51327406,
    )
    assert h.replay.params(0)["pair"] == ["XBTUSDT"]


def test_binance_ohlcv_paginates_with_the_venue_page_limit_until_until_ms() -> None:
    # Given Binance's recorded three 1h klines, served as two pages (2 + 1) then an empty page
    klines = load("binance", "klines_btcusdt_1h.json")
    h = harness(ExchangeId.BINANCE, {"/klines": [klines[:2], klines[2:], []]})

    # When fetching a window that ends at the third candle
    frame = h.exchange.fetch_ohlcv(BTC, "1h", 1706630400000, 1706637600000)

    # Then every page was requested with limit=1000 and the cursor advanced past the last candle
    assert frame["ts"].to_list() == [1706630400000, 1706634000000, 1706637600000]
    starts = [h.replay.params(i)["startTime"] for i in range(len(h.replay.requests))]
    assert starts == [["1706630400000"], ["1706637600000"]]
    assert all(h.replay.params(i)["limit"] == ["1000"] for i in range(len(h.replay.requests)))
    assert frame["close"].to_list() == [43488.71, 43374.8, 43361.11]


def test_kucoin_ohlcv_is_sorted_ascending_from_the_newest_first_payload() -> None:
    # Given KuCoin's recorded candles, which the venue returns newest first
    h = harness(
        ExchangeId.KUCOIN,
        {
            "/market/candles": [
                load("kucoin", "candles_btcusdt_1h.json"),
                {"code": "200000", "data": []},
            ]
        },
    )

    # When fetching them
    frame = h.exchange.fetch_ohlcv(BTC, "1h", 1706630400000, 1706637600000)

    # Then they come back ascending with KuCoin's open/close/high/low order mapped correctly
    assert frame["ts"].to_list() == [1706630400000, 1706634000000, 1706637600000]
    assert frame.row(0)[2:] == (43383.7, 43521.9, 43222.8, 43501.0, 101.30420492)


def test_ohlcv_with_a_zero_price_is_rejected_not_repaired() -> None:
    # Given Binance's recorded klines with one close price replaced by zero
    klines = load("binance", "klines_btcusdt_1h.json")
    klines[1][4] = "0.00000000"
    h = harness(ExchangeId.BINANCE, {"/klines": [klines, []]})

    # When / Then the whole call is rejected with the reason
    with pytest.raises(InvalidPayloadError, match="close must be > 0"):
        h.exchange.fetch_ohlcv(BTC, "1h", 1706630400000, 1706637600000)


def test_unsupported_timeframe_is_a_typed_not_supported() -> None:
    h = harness(ExchangeId.KRAKEN, {})
    with pytest.raises(NotSupportedByExchange, match="kraken fetch_ohlcv: timeframe '8h'"):
        h.exchange.fetch_ohlcv(BTC, "8h", 0, HOUR_MS)
    assert h.replay.requests == []


@pytest.mark.parametrize(
    ("venue", "route", "fixture", "last", "bid", "ask"),
    [
        (ExchangeId.KRAKEN, "/Ticker", "ticker_btcusdt.json", "73380.6", "73380.6", "73380.7"),
        (
            ExchangeId.BINANCE,
            "/ticker/24hr",
            "ticker_24hr_btcusdt.json",
            "73369.84",
            "73369.83",
            "73369.84",
        ),
        (ExchangeId.KUCOIN, "/market/stats", "stats_btcusdt.json", "67400", "67399.9", "67400"),
    ],
)
def test_tickers_parse_to_decimal_prices(
    venue: ExchangeId, route: str, fixture: str, last: str, bid: str, ask: str
) -> None:
    # Given each venue's recorded BTC/USDT ticker
    h = harness(venue, {route: [load(venue.value, fixture)]})

    # When fetching it
    ticker = h.exchange.fetch_tickers([BTC])[BTC]

    # Then prices are exact Decimals
    assert (ticker.last, ticker.bid, ticker.ask) == (Price.of(last), Price.of(bid), Price.of(ask))


@pytest.mark.parametrize("bad_last", [None, "0", "-1"])
def test_ticker_with_null_zero_or_negative_last_price_is_rejected(bad_last: str | None) -> None:
    # Given Binance's recorded ticker with the last price blanked, zeroed or negated
    payload = load("binance", "ticker_24hr_btcusdt.json")
    payload["lastPrice"] = bad_last
    h = harness(ExchangeId.BINANCE, {"/ticker/24hr": [payload]})

    # When / Then it is rejected with a reason naming the exchange and operation
    with pytest.raises(InvalidPayloadError, match=r"binance fetch_tickers: BTC/USDT last price"):
        h.exchange.fetch_tickers([BTC])


@pytest.mark.parametrize(
    ("venue", "route", "fixture", "best_bid", "best_ask"),
    [
        (ExchangeId.BINANCE, "/depth", "depth_btcusdt.json", "42574.3", "42574.31"),
        (
            ExchangeId.KUCOIN,
            "/market/orderbook/level2",
            "orderbook_btcusdt.json",
            "67539.7",
            "67539.8",
        ),
    ],
)
def test_order_books_parse(
    venue: ExchangeId, route: str, fixture: str, best_bid: str, best_ask: str
) -> None:
    h = harness(venue, {route: [load(venue.value, fixture)]})
    book = h.exchange.fetch_order_book(BTC, 20)
    assert (book.bids[0].price, book.asks[0].price) == (Price.of(best_bid), Price.of(best_ask))
    assert len(book.bids) == len(book.asks) == 2


def test_crossed_order_book_is_rejected() -> None:
    # Given Binance's recorded depth with the best ask moved below the best bid
    payload = load("binance", "depth_btcusdt.json")
    payload["asks"][0][0] = "42574.20000000"
    h = harness(ExchangeId.BINANCE, {"/depth": [payload]})

    with pytest.raises(InvalidPayloadError, match="crossed book"):
        h.exchange.fetch_order_book(BTC, 5)


def test_markets_come_back_as_validated_models() -> None:
    h = harness(ExchangeId.KUCOIN, {})
    markets = {m.symbol: m for m in h.exchange.fetch_markets()}
    assert markets[LTC].exchange_symbol == "LTC-USDT"
    assert markets[LTC].price_tick == Decimal("0.001")
    assert markets[BTC].taker_fee == Decimal("0.001")


def test_funding_rates_on_a_spot_only_venue_are_not_supported() -> None:
    h = harness(ExchangeId.KRAKEN, {})
    with pytest.raises(NotSupportedByExchange, match="kraken fetch_funding_rates"):
        h.exchange.fetch_funding_rates(Symbol("BTC/USD"), 0, HOUR_MS)


# ---------------------------------------------------------------------------------------------
# Errors and retries
# ---------------------------------------------------------------------------------------------


def test_read_retries_429_and_5xx_then_succeeds_with_jittered_backoff() -> None:
    # Given a rate limit, then a 5xx, then Binance's recorded ticker
    answers: list[Any] = [
        ccxt.RateLimitExceeded("binance 429"),
        ccxt.ExchangeNotAvailable("binance 503"),
        load("binance", "ticker_24hr_btcusdt.json"),
    ]
    h = harness(ExchangeId.BINANCE, {"/ticker/24hr": answers})

    # When fetching the ticker
    ticker = h.exchange.fetch_tickers([BTC])[BTC]

    # Then it succeeded on the third attempt after waits of U*1s and U*2s (U = 0.5)
    assert ticker.last == Price.of("73369.84")
    assert h.sleeps == [0.5, 1.0]


def test_read_gives_up_after_max_attempts_with_a_retryable_error() -> None:
    h = harness(ExchangeId.KUCOIN, {"/market/stats": [ccxt.RequestTimeout("timed out")]})
    with pytest.raises(RetryableExchangeError, match="kucoin fetch_tickers: RequestTimeout"):
        h.exchange.fetch_tickers([BTC])
    assert len(h.replay.requests) == 3


def test_fatal_errors_are_not_retried() -> None:
    h = harness(ExchangeId.KRAKEN, {"/Ticker": [ccxt.BadSymbol("EQuery:Unknown asset pair")]})
    with pytest.raises(FatalExchangeError, match="kraken fetch_tickers: BadSymbol"):
        h.exchange.fetch_tickers([BTC])
    assert len(h.replay.requests) == 1
    assert h.sleeps == []


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def test_kraken_create_order_sends_cl_ord_id() -> None:
    # Given Kraken's recorded AddOrder acknowledgement
    h = harness(ExchangeId.KRAKEN, {"/AddOrder": [load("kraken", "add_order_ltcusdt.json")]})

    # When placing a market buy with our 64-hex decision ID
    order = h.exchange.create_order(
        LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID
    )

    # Then the request carried the 32-hex prefix as cl_ord_id, and the ack maps to our model
    assert h.replay.params()["cl_ord_id"] == [OUR_ID.value[:32]]
    assert h.replay.params()["pair"] == ["LTCUSDT"]
    assert order.exchange_order_id == "OL7LNO-R4SAD-6UINEU"
    assert order.status is OrderStatus.ACCEPTED


def _kraken_time(unix_s: int) -> dict[str, Any]:
    """Kraken's ``GET /0/public/Time`` answer (docs.kraken.com, "Get Server Time")."""
    return {"error": [], "result": {"unixtime": unix_s, "rfc1123": "(not read)"}}


@pytest.mark.parametrize("host_off_ms", [0, -300_000, 120_000, 15_000])
def test_kraken_create_order_sends_a_deadline_on_krakens_clock(host_off_ms: int) -> None:
    # Given Kraken's clock at 2024-03-14 00:00:00 and a host clock off it by host_off_ms
    # (5 minutes behind, 2 minutes or 15 s ahead: each beyond the 10 s window)
    server_ms = 1_710_374_400_000
    h = harness(
        ExchangeId.KRAKEN,
        {
            "/AddOrder": [load("kraken", "add_order_ltcusdt.json")],
            "/Time": [_kraken_time(server_ms // 1000)],
        },
    )
    h.exchange._client.milliseconds = lambda: server_ms + host_off_ms  # type: ignore[method-assign]
    # When placing two orders
    for _ in range(2):
        h.exchange.create_order(LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID)
    # Then each request carries the deadline after which Kraken's engine rejects it, the
    # venue's request window ahead of Kraken's clock (it takes 0.5 s to 60 s), not the host's
    window = CAPABILITIES[ExchangeId.KRAKEN].request_window_ms
    assert window is not None and 2_000 <= window <= 60_000
    (deadline,) = h.replay.params()["deadline"]
    assert datetime.fromisoformat(deadline) == datetime.fromtimestamp(
        (server_ms + window) / 1000, tz=UTC
    )
    # and the server time was read once for both
    assert sum("/Time" in url for _, url, _ in h.replay.requests) == 1


def _kraken_on_movable_clocks(
    times: list[Any], *, host_ms: int
) -> tuple[Harness, list[int], list[float]]:
    """A Kraken harness answering ``/Time`` with ``times`` in turn, whose host clock
    (``host[0]``, ms) and monotonic clock (``elapsed[0]``, s) the test moves."""
    h = harness(
        ExchangeId.KRAKEN,
        {"/AddOrder": [load("kraken", "add_order_ltcusdt.json")], "/Time": times},
    )
    host = [host_ms]
    h.exchange._client.milliseconds = lambda: host[0]  # type: ignore[method-assign]
    # ccxt's request throttle reads the same host clock: stepped back, it would wait out the
    # step (up to a minute of sleep) before the next request; the deadline is what is tested
    h.exchange._client.enableRateLimit = False
    elapsed = [0.0]
    h.exchange._monotonic = lambda: elapsed[0]
    return h, host, elapsed


def test_kraken_server_time_is_read_again_after_its_max_age() -> None:
    server_s = 1_710_374_400
    h, host, elapsed = _kraken_on_movable_clocks(
        [_kraken_time(server_s), _kraken_time(server_s + 700)], host_ms=server_s * 1000 - 60_000
    )
    h.exchange.create_order(LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID)
    # When the host clock is stepped 30 s further back 700 s later
    elapsed[0], host[0] = SERVER_TIME_MAX_AGE_S + 100, host[0] + 700_000 - 30_000
    h.exchange.create_order(LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID)
    # Then the offset was measured again: the deadline is still on Kraken's clock
    (deadline,) = h.replay.params()["deadline"]
    window = CAPABILITIES[ExchangeId.KRAKEN].request_window_ms or 0
    assert datetime.fromisoformat(deadline) == datetime.fromtimestamp(
        server_s + 700 + window / 1000, tz=UTC
    )


@pytest.mark.parametrize("step_ms", [120_000, -90_000])
def test_kraken_deadline_ignores_a_host_clock_stepped_while_the_server_time_is_cached(
    step_ms: int,
) -> None:
    # Given Kraken's server time read with the host clock a minute behind it
    server_s = 1_710_374_400
    h, host, elapsed = _kraken_on_movable_clocks(
        [_kraken_time(server_s)], host_ms=server_s * 1000 - 60_000
    )
    h.exchange.create_order(LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID)
    # When, 30 s later, the host clock has been stepped (NTP) by step_ms, the cache still fresh
    elapsed[0], host[0] = 30.0, host[0] + 30_000 + step_ms
    h.exchange.create_order(LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID)
    # Then the deadline is still the window ahead of Kraken's clock (30 s after its reading)
    assert sum("/Time" in url for _, url, _ in h.replay.requests) == 1
    (deadline,) = h.replay.params()["deadline"]
    window = CAPABILITIES[ExchangeId.KRAKEN].request_window_ms or 0
    assert datetime.fromisoformat(deadline) == datetime.fromtimestamp(
        server_s + 30 + window / 1000, tz=UTC
    )


def test_kraken_order_is_not_sent_when_the_server_time_cannot_be_read() -> None:
    # Given Kraken's server time read timing out (every attempt)
    h = harness(
        ExchangeId.KRAKEN,
        {
            "/AddOrder": [load("kraken", "add_order_ltcusdt.json")],
            "/Time": [ccxt.RequestTimeout("kraken GET https://api.kraken.com/0/public/Time")],
        },
    )
    # When placing an order, Then nothing is sent, with the reason (not placed, not refused)
    with pytest.raises(MarketRulesUnknownError, match="server time cannot be read"):
        h.exchange.create_order(LTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, OUR_ID)
    assert not any("/AddOrder" in url for _, url, _ in h.replay.requests)


def test_binance_create_order_sends_new_client_order_id() -> None:
    h = harness(ExchangeId.BINANCE, {"/api/v3/order": [load("binance", "new_order_btcusdt.json")]})
    order = h.exchange.create_order(
        BTC, Side.BUY, OrderType.LIMIT, Quantity.of("0.00085"), Price.of("13500"), OUR_ID
    )
    sent = h.replay.params()
    assert sent["newClientOrderId"] == [OUR_ID.value[:36]]
    assert (sent["quantity"], sent["price"]) == (["0.00085"], ["13500"])
    assert order.exchange_order_id == "16383176297"
    assert order.status is OrderStatus.ACCEPTED
    assert order.price == Price.of("13500")


def test_kucoin_create_order_sends_client_oid() -> None:
    h = harness(ExchangeId.KUCOIN, {"/orders": [load("kucoin", "create_order.json")]})
    order = h.exchange.create_order(
        BTC, Side.SELL, OrderType.LIMIT, Quantity.of("0.001"), Price.of("67400"), OUR_ID
    )
    _, _, body = h.replay.requests[-1]
    assert json.loads(body or "{}")["clientOid"] == OUR_ID.value[:40]
    assert order.exchange_order_id == "5bd6e9286d99522a52e458de"
    assert order.client_order_id == OUR_ID.value[:40]


@pytest.mark.parametrize(
    ("transient", "refused"),
    [
        (ccxt.RequestTimeout("read timed out"), False),  # may still be in flight
        (ccxt.ExchangeNotAvailable("502"), False),
        (ccxt.RateLimitExceeded("binance -1003 Too many requests"), True),  # the venue's answer
        (ccxt.DDoSProtection("binance 429 Too Many Requests"), True),
    ],
)
def test_create_order_timeout_is_state_unknown_and_never_retried(
    transient: Exception, refused: bool
) -> None:
    h = harness(ExchangeId.BINANCE, {"/api/v3/order": [transient]})
    with pytest.raises(OrderStateUnknownError, match="reconcile by client id") as err:
        h.exchange.create_order(
            BTC, Side.BUY, OrderType.LIMIT, Quantity.of("0.001"), Price.of("13500"), OUR_ID
        )
    assert err.value.client_order_id == OUR_ID.value[:36]
    assert err.value.rate_limited is refused
    assert len(h.replay.requests) == 1
    assert h.sleeps == []


def test_create_order_insufficient_funds_is_fatal() -> None:
    h = harness(ExchangeId.KUCOIN, {"/orders": [ccxt.InsufficientFunds("balance insufficient")]})
    with pytest.raises(FatalExchangeError, match="kucoin create_order: InsufficientFunds"):
        h.exchange.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("1"), None, OUR_ID)


def test_binance_reconciles_by_orig_client_order_id() -> None:
    h = harness(
        ExchangeId.BINANCE, {"/api/v3/order": [load("binance", "order_ltcusdt_filled.json")]}
    )
    order = h.exchange.fetch_order_by_client_id(LTC, OUR_ID)
    assert h.replay.params()["origClientOrderId"] == [OUR_ID.value[:36]]
    assert order is not None
    assert order.status is OrderStatus.FILLED
    assert order.filled == Decimal("0.1")
    assert order.average == Price.of("90.8")


@pytest.mark.parametrize(
    ("executed", "quote"), [("0.00000000", "0.00000000"), ("0.04000000", "3.63200000")]
)
def test_binance_pending_cancel_is_a_cancel_pending_order_with_its_fill(
    executed: str, quote: str
) -> None:
    # Given Binance's recorded order, as the venue reports it while a cancel is in progress
    # (raw PENDING_CANCEL, which ccxt reports as "canceling"), nothing or part of it filled
    order_json = load("binance", "order_ltcusdt_filled.json")
    order_json.update(status="PENDING_CANCEL", executedQty=executed, cummulativeQuoteQty=quote)
    h = harness(ExchangeId.BINANCE, {"/api/v3/order": [order_json]})

    # When it is looked up by client ID
    order = h.exchange.fetch_order_by_client_id(LTC, OUR_ID)

    # Then it reads as CANCEL_PENDING (still at the venue, may still fill), with its fill
    assert order is not None
    assert order.status is OrderStatus.CANCEL_PENDING
    assert order.filled == Decimal(executed)


DAY_MS = 24 * HOUR_MS


def test_a_resting_stop_filled_weeks_after_its_placement_reaches_a_pruned_position() -> None:
    # Given a stop sell placed on Binance 40 days ago, filled in full today (its updateTime)
    placed_ms, filled_ms = 1_679_571_174_472, 1_679_571_174_472 + 40 * DAY_MS
    order_json = load("binance", "order_ltcusdt_filled.json")
    order_json.update(type="STOP_LOSS", time=str(placed_ms), workingTime=str(placed_ms))
    order_json.update(updateTime=str(filled_ms))
    h = harness(ExchangeId.BINANCE, {"/api/v3/order": [order_json]})
    # and its position, whose hundreds of orders filled since the placement were pruned
    start = utc_from_ms(placed_ms) + timedelta(days=1)
    position = Position(Symbol("LTC/USDT"))
    for n in range(401):  # every 2 hours for 33 days, the last a buy: 0.1 held
        side = Side.BUY if n % 2 == 0 else Side.SELL
        at = start + n * timedelta(hours=2)
        fill = Fill(ClientOrderId(f"{n:032x}"), side, Decimal("0.1"), Price.of("90"), at)
        position = position.apply(fill).position
    assert position.quantity == Decimal("0.1")
    assert position.pruned_through is not None and position.pruned_through > start
    # When the stop is reconciled and its fill applied at the fill time the venue reported
    order = h.exchange.fetch_order_by_client_id(LTC, OUR_ID)
    assert order is not None and order.status is OrderStatus.FILLED and order.ts_ms is not None
    # Then its fill time is when it traded, not when it was placed
    assert order.ts_ms == filled_ms
    assert order.average is not None
    stop = Fill(OUR_ID, order.side, order.filled, order.average, utc_from_ms(order.ts_ms))
    # and the genuine fill is applied, not refused as a replay of a pruned order
    out = position.apply(stop)
    assert out.changed and out.applied == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Kraken: no last trade time, ``closetm`` as the last update
        ({"lastTradeTimestamp": None, "lastUpdateTimestamp": 2_000}, 2_000),
        # KuCoin: ``updatedAt`` as the last update
        ({"lastUpdateTimestamp": 3_000}, 3_000),
        ({"lastTradeTimestamp": 4_000, "lastUpdateTimestamp": 5_000}, 4_000),
        # a finished order of a venue reporting neither: the placement
        ({}, 1_000),
    ],
)
def test_a_filled_orders_time_is_its_last_trade_else_its_last_update(
    raw: dict[str, Any], expected: int
) -> None:
    h = harness(ExchangeId.KRAKEN, {})
    payload = {"id": "O1", "symbol": "LTC/USDT", "side": "sell", "type": "limit"}
    payload.update(status="closed", filled=0.1, amount=0.1, average=90.0, timestamp=1_000)
    order = h.exchange._order({**payload, **raw}, "fetch_order", fallback_symbol=LTC)
    assert order.ts_ms == expected
    # an order that filled nothing keeps its placement time
    unfilled = h.exchange._order(
        {**payload, **raw, "status": "open", "filled": 0}, "fetch_order", fallback_symbol=LTC
    )
    assert unfilled.ts_ms == 1_000


def test_an_open_order_partly_filled_without_a_trade_time_traded_by_now() -> None:
    # Given a Kraken stop placed 40 days ago, partly filled and still open: Kraken reports its
    # opening time only (closetm comes when it closes)
    now = datetime(2024, 3, 14, tzinfo=UTC)
    h = harness(ExchangeId.KRAKEN, {}, now=now)
    placed = int((now - timedelta(days=40)).timestamp() * 1000)
    payload = {"id": "O1", "symbol": "LTC/USDT", "side": "sell", "type": "limit"}
    payload.update(status="open", filled=0.05, amount=0.1, average=90.0, timestamp=placed)
    payload.update(lastTradeTimestamp=None, lastUpdateTimestamp=None)
    order = h.exchange._order(payload, "fetch_order", fallback_symbol=LTC)
    # Then its part's time is the reading's, not the placement (which a pruned position would
    # refuse as a replay)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.ts_ms == int(now.timestamp() * 1000)


def test_binance_unknown_client_id_reconciles_to_none() -> None:
    h = harness(
        ExchangeId.BINANCE, {"/api/v3/order": [ccxt.OrderNotFound("-2013 Order does not exist.")]}
    )
    assert h.exchange.fetch_order_by_client_id(LTC, OUR_ID) is None


def test_kucoin_reconciles_via_the_client_order_endpoint() -> None:
    h = harness(
        ExchangeId.KUCOIN, {"/client-order/": [load("kucoin", "order_ltcusdt_filled.json")]}
    )
    order = h.exchange.fetch_order_by_client_id(LTC, OUR_ID)
    assert OUR_ID.value[:40] in h.replay.requests[-1][1]
    assert order is not None
    assert (order.status, order.filled) == (OrderStatus.FILLED, Decimal("0.01"))


def test_kraken_reconciles_through_open_orders_filtered_by_cl_ord_id() -> None:
    h = harness(ExchangeId.KRAKEN, {"/OpenOrders": [load("kraken", "open_orders_ltcusdt.json")]})
    order = h.exchange.fetch_order_by_client_id(LTC, OUR_ID)
    assert h.replay.params()["cl_ord_id"] == [OUR_ID.value[:32]]
    assert order is not None
    assert order.exchange_order_id == "OIIQBL-6PV3A-7M2AJJ"
    assert order.status is OrderStatus.ACCEPTED


def test_cancel_of_an_already_filled_order_sends_no_cancel() -> None:
    h = harness(
        ExchangeId.KUCOIN, {"/client-order/": [load("kucoin", "order_ltcusdt_filled.json")]}
    )
    h.exchange.cancel_order(LTC, OUR_ID)
    assert [m for m, _, _ in h.replay.requests] == ["GET"]


def test_most_traded_ranks_listed_pairs_by_quote_volume_from_one_bulk_request() -> None:
    # Given Binance's recorded 24 h ticker for BTC/USDT, served by the bulk endpoint (an array of
    # the same objects), next to a copy whose last price is blanked (an invalid ticker)
    good = load("binance", "ticker_24hr_btcusdt.json")
    broken = {**load("binance", "ticker_24hr_btcusdt.json"), "symbol": "LTCUSDT", "lastPrice": None}
    h = harness(ExchangeId.BINANCE, {"/ticker/24hr": [[good, broken]]})

    # When asking for the most traded USDT pairs
    top = h.exchange.most_traded("USDT", 5)

    # Then the valid, listed pair is returned and the invalid ticker is left out, in one request
    assert top == [BTC]
    assert len([r for r in h.replay.requests if "/ticker/24hr" in r[1]]) == 1
    assert "symbol" not in h.replay.params()  # the bulk form: no per-symbol requests


def test_binance_pending_new_acknowledgement_is_an_accepted_order() -> None:
    # Given Binance's recorded acknowledgement, with the raw status of an accepted order that
    # is not working yet (ccxt passes unknown raw statuses through unchanged)
    ack = load("binance", "new_order_btcusdt.json")
    ack["status"] = "PENDING_NEW"
    h = harness(ExchangeId.BINANCE, {"/api/v3/order": [ack]})

    # When the order is placed
    order = h.exchange.create_order(
        BTC, Side.BUY, OrderType.LIMIT, Quantity.of("0.00085"), Price.of("13500"), OUR_ID
    )

    # Then the venue holds it: accepted, not rejected
    assert order.status is OrderStatus.ACCEPTED
    assert order.exchange_order_id == "16383176297"


def test_an_unparseable_acknowledgement_is_state_unknown_not_a_refusal() -> None:
    # Given an acknowledgement our parser refuses (a status no mapping knows)
    ack = load("binance", "new_order_btcusdt.json")
    ack["status"] = "AWAITING_MATCH"  # changed from "NEW"
    h = harness(ExchangeId.BINANCE, {"/api/v3/order": [ack]})

    # When the order is placed, Then the call's outcome is unknown (reconcile by client id):
    # the venue answered, so the order may well exist; it is not reported as refused
    with pytest.raises(OrderStateUnknownError, match="reconcile by client id") as err:
        h.exchange.create_order(
            BTC, Side.BUY, OrderType.LIMIT, Quantity.of("0.00085"), Price.of("13500"), OUR_ID
        )
    assert "AWAITING_MATCH" in str(err.value)
    assert len(h.replay.requests) == 1  # never resent


def test_kucoin_and_binance_clients_sign_on_the_venues_clock_and_kraken_keeps_its_nonce() -> None:
    # Given the real-order clients, and a host clock 2 minutes ahead of the venue's
    server_ms = 1_710_374_400_000
    creds = {"apiKey": "replay", "secret": "cmVwbGF5", "password": "replay"}
    kucoin = ccxt_client(ExchangeId.KUCOIN, VenueMode.LIVE, creds)
    binance = ccxt_client(ExchangeId.BINANCE, VenueMode.LIVE, creds)
    for client, answer in (
        (kucoin, {"code": "200000", "data": server_ms}),  # GET /api/v1/timestamp
        (binance, {"serverTime": server_ms}),  # GET /api/v3/time
    ):
        client.milliseconds = lambda: server_ms + 120_000  # type: ignore[method-assign]
        client.fetch = lambda *_a, answer=answer, **_k: answer  # type: ignore[method-assign]
        # ccxt measures the offset at each markets load when adjustForTimeDifference is set
        assert client.options["adjustForTimeDifference"] is True
        client.load_time_difference()
    # Then KuCoin's KC-API-TIMESTAMP and Binance's timestamp are on the venue's clock
    signed = kucoin.sign("accounts", ["private", "GET"], "GET", {})
    assert signed["headers"]["KC-API-TIMESTAMP"] == str(server_ms)
    assert f"timestamp={server_ms}" in binance.sign("account", ["private", "GET"], "GET", {})["url"]
    # and Kraken's client is left alone: its nonce must only increase (moving it back with the
    # offset would refuse a key used before), its deadline is set by the adapter
    kraken = ccxt_client(ExchangeId.KRAKEN, VenueMode.LIVE, creds)
    assert not kraken.options.get("adjustForTimeDifference")
