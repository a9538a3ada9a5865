"""The real-order venue through real ccxt against a local fake Binance spot API (no internet).

ccxt's own ``binance`` class builds, signs and parses every request; only its URLs point at
``devtools/cst_devtools/fake_binance.py`` on localhost, which verifies each signature and fills market
orders at the open of the recorded real 1h candles. The ExecutionService runs on the in-memory
stores of ``tests/fakes.py`` (``tests/support/live_venue.Stores``).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ccxt
import pytest

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, OrderRefusedError, ccxt_client
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import (
    FatalExchangeError,
    NotSupportedByExchange,
    OrderStateUnknownError,
    OrderType,
    RetryableExchangeError,
    RetryPolicy,
    capabilities_for,
)
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.risk import MarketQuote
from cryptosmarttrader.domain.sanitize import sanitize_text
from cryptosmarttrader.domain.types import ClientOrderId, Money, Price, Quantity, Side, Symbol
from cryptosmarttrader.domain.venue import VenueMode
from cryptosmarttrader.services.execution import ExecutionService
from cst_devtools import fake_binance as fake_binance_module
from cst_devtools.fake_binance import FakeBinance, serve
from tests.support.execution import LosesTheAnswer
from tests.support.live_venue import GIVE_UP_MS, PATIENT_MS, Stores, fake_binance, on_fake

pytestmark = pytest.mark.realdata

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW = datetime(2022, 5, 10, 10, 0, tzinfo=UTC)  # the 10:00 BTC/USDT bar opens at 31397.68
BTC = Symbol("BTC/USDT")
COID = ClientOrderId("3f9a1c2e5b7d4f60a8192b3c4d5e6f70")


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Venue:
    fake: FakeBinance
    clock: FixedClock
    venue: CcxtVenue
    url: str

    def client(self, **credentials: str) -> ccxt.Exchange:
        creds = {"apiKey": API_KEY, "secret": SECRET, **credentials}
        return on_fake(
            ccxt_client("binance", VenueMode.TESTNET, creds, api_base_url=self.url), self.fake
        )


@pytest.fixture
def venue(market: RecordedMarketData) -> Iterator[Venue]:
    clock = FixedClock(NOW)
    fake = fake_binance(market, clock)
    with serve(fake) as url:
        rig = Venue(fake, clock, None, url)  # type: ignore[arg-type]
        rig.venue = CcxtVenue(
            rig.client(),
            clock,
            VenueMode.TESTNET,
            RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
            sleep=lambda _s: None,
        )
        yield rig


# -- sizing: precision, lot size, minimum notional --------------------------------------------


@pytest.mark.parametrize("host_off_ms", [-300_000, 90_000])
def test_live_venue_signs_on_binances_clock_when_the_host_clock_is_off(
    venue: Venue, host_off_ms: int
) -> None:
    # Given a host clock 5 minutes behind, or 90 s ahead of, Binance's (recvWindow 10 s; Binance
    # refuses a timestamp more than 1 s ahead of its clock)
    venue.fake.server_clock_offset_ms = -host_off_ms
    # When an order is placed (the venue's rules are loaded first) and looked up
    order = venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"),
                                     None, COID)  # fmt: skip
    found = venue.venue.fetch_order_by_client_id(BTC, COID)
    # Then both signed requests were accepted: ccxt measured the offset (GET /api/v3/time) and
    # signed on Binance's clock
    assert order.status is OrderStatus.FILLED and found is not None
    assert found.client_order_id == COID.value
    assert any(path == "/api/v3/time" for _, path, _ in venue.fake.requests)


def test_live_venue_rounds_the_amount_down_to_the_lot_step(venue: Venue) -> None:
    # When 0.0312345 BTC is ordered (the LOT_SIZE step of BTCUSDT is 0.00001)
    order = venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.0312345"),
                                     None, COID)  # fmt: skip
    # Then 0.03123 was sent (rounded down, never up) in Binance's own client-id field
    sent = [p for m, path, p in venue.fake.requests if (m, path) == ("POST", "/api/v3/order")]
    assert len(sent) == 1
    assert sent[0]["quantity"] == "0.03123"
    assert sent[0]["newClientOrderId"] == COID.value
    assert order.amount == Quantity.of("0.03123")
    assert order.client_order_id == COID.value


def test_live_venue_refuses_an_order_below_the_minimum_notional_without_sending(
    venue: Venue,
) -> None:
    # Given BTC at 31397.68 and Binance's NOTIONAL minimum of 5 USDT: 0.00015 BTC is ~4.71 USDT
    with pytest.raises(OrderRefusedError) as refused:
        venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.00015"),
                                 None, COID)  # fmt: skip
    # Then nothing was sent and the reason carries the numbers; the order was not inflated
    assert venue.fake.posts() == 0
    assert "below the minimum notional 5" in str(refused.value)
    assert "not inflated" in str(refused.value)


def test_live_venue_refuses_an_amount_that_rounds_down_to_zero(venue: Venue) -> None:
    with pytest.raises(OrderRefusedError, match="rounds down to 0"):
        venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.000009"),
                                 None, COID)  # fmt: skip
    assert venue.fake.posts() == 0


def test_fake_exchange_enforces_binance_filters_on_an_unrounded_amount(venue: Venue) -> None:
    # Given a raw ccxt call that bypasses the venue adapter's rounding (ccxt truncates to the
    # step itself, so the unrounded amount is sent as a string with a raw parameter)
    client = venue.client()
    client.load_markets()
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        client.private_post_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0312345"}
        )


# -- signed requests -------------------------------------------------------------------------


def test_fake_exchange_rejects_a_wrong_signature_and_a_wrong_api_key(venue: Venue) -> None:
    wrong_secret = venue.client(secret="X" + SECRET[1:])
    with pytest.raises(ccxt.AuthenticationError, match="Signature for this request"):
        wrong_secret.fetch_balance()
    wrong_key = venue.client(apiKey="Y" + API_KEY[1:])
    with pytest.raises(ccxt.AuthenticationError, match="Invalid API-key"):
        wrong_key.fetch_balance()
    # and the right ones pass, with the fake's balances
    balance = venue.client().fetch_balance()
    assert balance["USDT"]["free"] == 10000.0


# -- the fake's connections, its withheld answers, its recorded series -----------------------


def test_fake_exchange_keeps_a_clients_connection_across_requests(venue: Venue) -> None:
    # Given one HTTP connection to the fake, two requests on it
    conn = http.client.HTTPConnection(urlparse(venue.url).netloc, timeout=PATIENT_MS / 1000)
    answers, sockets = [], []
    try:
        for _ in range(2):
            conn.request("GET", "/api/v3/ping")
            answer = conn.getresponse()
            answers.append((answer.status, answer.version, answer.will_close, answer.read()))
            sockets.append(conn.sock)
    finally:
        conn.close()
    # Then both were answered over that one connection, kept open as Binance's HTTP/1.1 keeps it
    assert answers == [(200, 11, False, b"{}")] * 2
    assert sockets[0] is not None and sockets[0] is sockets[1]


def test_fake_exchange_tells_which_request_it_withholds_and_the_client_gives_up_on_it(
    venue: Venue,
) -> None:
    fake = venue.fake
    fake.fail_next("POST", "/api/v3/order", "rate_limit")
    fake.fail_next("POST", "/api/v3/order", "timeout_after_booking")
    fake.fail_next("GET", "/api/v3/account", "timeout_before_booking")
    # the next create is refused with a 429 (answered at once), the next balance read withheld
    assert not fake.withholds("POST", "/api/v3/order")
    assert fake.withholds("GET", "/api/v3/account")
    assert not fake.withholds("DELETE", "/api/v3/order")
    fake.fail_next("GET", "/api/v3/time", "timeout_before_booking")
    assert not fake.withholds("GET", "/api/v3/time")  # a public endpoint ignores its faults
    # asking consumes nothing: the 429 still comes first, then the create is withheld
    assert fake.take_fault("POST", "/api/v3/order") == "rate_limit"
    assert fake.withholds("POST", "/api/v3/order")
    # a client on the fake times out on the withheld read (ccxt's RequestTimeout, from the
    # socket) and the next read is answered
    client = venue.client()
    with pytest.raises(ccxt.RequestTimeout):
        client.fetch_balance()
    assert not fake.withholds("GET", "/api/v3/account")
    assert client.fetch_balance()["USDT"]["free"] == 10000.0


def test_a_client_that_gave_up_on_a_withheld_create_goes_on_once_the_fake_booked_it(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fake whose thread books a request only after the client gave up on it (held back
    # three times the client's patience for a withheld answer, as a loaded machine can)
    private = venue.fake.private

    def late(method: str, path: str, params: dict[str, str]) -> Any:
        if (method, path) == ("POST", "/api/v3/order"):
            time.sleep(3 * GIVE_UP_MS / 1000)
        return private(method, path, params)

    monkeypatch.setattr(venue.fake, "private", late)
    venue.fake.fail_next("POST", "/api/v3/order", "timeout_after_booking")
    client = venue.client()
    client.load_markets()
    # When a create times out
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "market", "buy", 0.01, None,
                            {"newClientOrderId": COID.value})  # fmt: skip
    # Then the client went on only once the order was booked: what a fault "after booking" means
    assert [o["clientOrderId"] for o in venue.fake.orders(COID.value)] == [COID.value]


def test_fake_exchanges_on_one_data_folder_read_a_symbols_series_once(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_binance_module, "_RECORDED", {})
    reads: list[str] = []

    class Counted(RecordedMarketData):
        def ohlcv(self, symbol: str, *args: Any, **kwargs: Any) -> Any:
            reads.append(symbol)
            return super().ohlcv(symbol, *args, **kwargs)

    # Given two fakes, each on its own market data over the same folder
    first = FakeBinance(API_KEY, SECRET, Counted(data_dir), lambda: NOW)
    second = FakeBinance(API_KEY, SECRET, Counted(data_dir), lambda: NOW)
    first.warm("BTCUSDT")
    # Then the second answers from the series the first read: the 10:00 bar opens at 31397.68
    ten = int(NOW.timestamp() * 1000)
    [(ts, open_price, _volume)] = second._bars("BTCUSDT", ten, ten)
    assert (ts, open_price) == (ten, Decimal("31397.68"))
    assert second._ranges("BTCUSDT", ten, ten)[0][:2] == (ten, Decimal("31397.68"))
    assert reads == ["BTC/USDT"]


# -- fills from trades, refusals, reconciliation ---------------------------------------------


def test_live_venue_books_partial_fills_and_real_fees_from_the_trades(venue: Venue) -> None:
    # Given a venue matching at most 0.02 BTC per hour bar
    venue.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    first = venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.03"),
                                     None, COID)  # fmt: skip
    # Then the 10:00 bar filled 0.02 at its real open; Binance took 0.1% of it in BTC
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert first.filled == Decimal("0.02") - Decimal("0.00002")
    assert first.average == Price.of("31397.68")
    assert first.fee == Decimal("0.00002") * Decimal("31397.68")
    # When the 11:00 bar has opened
    venue.clock.advance(timedelta(hours=1))
    done = venue.venue.fetch_order_by_client_id(BTC, COID)
    assert done is not None and done.status is OrderStatus.FILLED
    bars = [(o, v) for _, o, v in venue.fake._bars("BTCUSDT", 1652176800000, 1652180400000)]
    open_11 = bars[1][0]
    # the average is volume-weighted over the two real opens, the quantity net of commission
    assert done.average == Price((Decimal("0.02") * Decimal("31397.68") + Decimal("0.01") * open_11)
                                 / Decimal("0.03"))  # fmt: skip
    assert done.filled == Decimal("0.03") - Decimal("0.00003")
    assert venue.fake.balances["BTC"] == done.filled


def _list_bnb(venue: Venue) -> None:
    """An account paying its fees with BNB, on a venue that lists BNBUSDT. The recorded
    exchangeInfo holds no BNBUSDT definition: BTCUSDT's is copied under that name here, visibly,
    only so the pair is listed; every BNB price is the recorded BNBUSDT 1h candle."""
    venue.fake.symbols["BNBUSDT"] = {
        **venue.fake.symbols["BTCUSDT"], "symbol": "BNBUSDT", "baseAsset": "BNB"
    }  # fmt: skip
    venue.fake.bnb_fees = True
    venue.fake.balances["BNB"] = Decimal("1")
    venue.fake.warm("BNBUSDT")


def test_live_venue_values_a_commission_paid_in_bnb_at_the_venues_bnb_price(
    venue: Venue,
) -> None:
    # Given an account that pays its fees with BNB ("pay fees with BNB" switched on)
    _list_bnb(venue)
    placed = venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"),
                                      None, COID)  # fmt: skip
    # Then the whole 0.01 BTC reached the account, and the BNB commission is in the fee at the
    # venue's own BNB/USDT price (the open of the recorded 10:00 bar), never left out
    assert placed.status is OrderStatus.FILLED
    assert placed.filled == Decimal("0.01")
    bnb_open = venue.fake._bars("BNBUSDT", 1652176800000, 1652176800000)[0][1]
    in_bnb = (Decimal("0.01") * Decimal("31397.68") * Decimal("0.00075") / bnb_open).quantize(
        Decimal("1E-8"), rounding=ROUND_DOWN
    )
    assert venue.fake.balances["BNB"] == Decimal("1") - in_bnb
    assert placed.fee == in_bnb * bnb_open
    assert Decimal("0.2") < placed.fee < Decimal("0.25")  # 0.075% of 313.98 USDT


def test_live_venue_an_unvaluable_bnb_commission_is_reconciled_later_not_guessed(
    venue: Venue,
) -> None:
    # Given a BNB commission whose price cannot be read when the order is booked
    _list_bnb(venue)
    real_tickers = venue.venue.fetch_tickers
    outage = {"on": True}

    def tickers(symbols: list[Symbol]) -> Any:
        if outage["on"] and Symbol("BNB/USDT") in symbols:
            raise RetryableExchangeError("binance", "fetch_tickers", "429 Too Many Requests")
        return real_tickers(symbols)

    venue.venue.fetch_tickers = tickers  # type: ignore[method-assign]
    # Then the placed order is an unknown outcome to reconcile (never a refusal, never re-sent)
    with pytest.raises(OrderStateUnknownError, match="fills not readable"):
        venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"), None, COID)
    assert venue.fake.posts() == 1
    # and the next reconciliation, once the price is readable, books it with the commission valued
    with pytest.raises(RetryableExchangeError, match="429"):
        venue.venue.fetch_order_by_client_id(BTC, COID)
    outage["on"] = False
    found = venue.venue.fetch_order_by_client_id(BTC, COID)
    assert found is not None and found.status is OrderStatus.FILLED
    assert found.filled == Decimal("0.01") and found.fee > 0
    assert venue.fake.posts() == 1


def test_live_venue_reads_the_accounts_balances_for_reconciliation(venue: Venue) -> None:
    # Given a filled buy of 0.01 BTC at the real 10:00 open, with Binance's commission in BTC
    venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"), None, COID)
    # Then the account's totals are what the venue holds: the coin net of commission, the cash
    # less the cost, no zero balance
    assert venue.venue.fetch_balances() == {
        "BTC": Decimal("0.00999"),
        "USDT": Decimal("10000") - Decimal("0.01") * Decimal("31397.68"),
    }


def test_live_venue_insufficient_balance_is_a_refusal(venue: Venue) -> None:
    venue.fake.balances["USDT"] = Decimal("100")
    with pytest.raises(FatalExchangeError, match="insufficient balance") as err:
        venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"),
                                 None, COID)  # fmt: skip
    assert not isinstance(err.value, OrderStateUnknownError)
    assert venue.fake.orders() == []


def test_live_venue_retries_a_rate_limited_read_and_never_a_create(venue: Venue) -> None:
    venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"), None, COID)
    # a 429 on the lookup: retried (reads are safe to repeat) and answered
    venue.fake.fail_next("GET", "/api/v3/order", "rate_limit")
    found = venue.venue.fetch_order_by_client_id(BTC, COID)
    assert found is not None and found.status is OrderStatus.FILLED
    lookups = [1 for m, p, _ in venue.fake.requests if (m, p) == ("GET", "/api/v3/order")]
    assert len(lookups) == 2
    # a 429 on a create: state unknown, not retried (one POST), to be reconciled by client id
    other = ClientOrderId("0b1c2d3e4f5061728394a5b6c7d8e9f0")
    venue.fake.fail_next("POST", "/api/v3/order", "rate_limit")
    with pytest.raises(OrderStateUnknownError, match="reconcile by client id"):
        venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"), None,
                                 other)  # fmt: skip
    assert venue.fake.posts() == 2
    assert venue.venue.fetch_order_by_client_id(BTC, other) is None


def test_live_venue_unknown_order_and_cancel_by_client_id(venue: Venue) -> None:
    assert venue.venue.fetch_order_by_client_id(BTC, COID) is None
    venue.venue.cancel_order(BTC, COID)  # unknown: already not open, nothing to do
    # an order the slow venue has not matched yet (placed between bars) is cancelled by client id
    venue.clock.advance(timedelta(minutes=30))
    placed = venue.venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.01"),
                                      None, COID)  # fmt: skip
    assert placed.status is OrderStatus.ACCEPTED
    venue.venue.cancel_order(BTC, COID)
    found = venue.venue.fetch_order_by_client_id(BTC, COID)
    assert found is not None and found.status is OrderStatus.CANCELED
    assert any(
        m == "DELETE" and p.get("origClientOrderId") == COID.value
        for m, _, p in venue.fake.requests
    )


def test_live_venue_error_messages_carry_no_signature_or_key(venue: Venue) -> None:
    # Given a lookup that times out: ccxt's RequestTimeout names the URL with the signed query
    venue.fake.fail_next("GET", "/api/v3/order", "timeout_before_booking")
    raw_client = venue.client(verbose=True)  # type: ignore[arg-type]
    raw_client.load_markets()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(ccxt.RequestTimeout) as raw:
        raw_client.fetch_order(None, BTC.value, {"clientOrderId": COID.value})
    signature = str(raw.value).split("signature=")[1].split()[0]
    assert len(signature) == 64 and API_KEY in printed.getvalue()  # what must be caught
    for text in (str(raw.value), printed.getvalue()):
        clean = sanitize_text(text)
        assert signature not in clean and API_KEY not in clean and SECRET not in clean
    # and the venue's own error (mapped once) never carries them either
    venue.fake.fail_next("GET", "/api/v3/order", "timeout_before_booking")
    venue.fake.fail_next("GET", "/api/v3/order", "timeout_before_booking")
    venue.fake.fail_next("GET", "/api/v3/order", "timeout_before_booking")
    with pytest.raises(RetryableExchangeError) as mapped:
        venue.venue.fetch_order_by_client_id(BTC, COID)
    assert "signature=[REDACTED]" in str(mapped.value)
    assert "timestamp=" in str(mapped.value)  # the rest of the request is kept for diagnosis


# -- modes -------------------------------------------------------------------------------------


def test_testnet_mode_uses_the_binance_spot_testnet_and_refuses_venues_without_one() -> None:
    creds = {"apiKey": "k", "secret": "s"}
    testnet = ccxt_client("binance", VenueMode.TESTNET, creds)
    assert testnet.urls["api"]["private"].startswith("https://testnet.binance.vision/")
    live = ccxt_client("binance", VenueMode.LIVE, creds)
    assert live.urls["api"]["private"].startswith("https://api.binance.com/")
    # ccxt throttles every request at the venue's rate (the tests on the fake set it to 0)
    assert testnet.enableRateLimit and live.enableRateLimit
    assert testnet.rateLimit == live.rateLimit == capabilities_for("binance").rate_limit_ms == 50
    assert testnet.timeout == live.timeout == 10_000
    with pytest.raises(NotSupportedByExchange, match="no spot sandbox"):
        ccxt_client("kraken", VenueMode.TESTNET, creds)
    with pytest.raises(NotSupportedByExchange, match="retired its sandbox"):
        ccxt_client("kucoin", VenueMode.TESTNET, {**creds, "password": "p"})
    with pytest.raises(NotSupportedByExchange, match="paper"):
        ccxt_client("binance", VenueMode.PAPER, creds)
    with pytest.raises(ValueError, match="local address"):
        ccxt_client("binance", VenueMode.TESTNET, creds, api_base_url="https://example.com")


# -- end to end through the ExecutionService ----------------------------------------------------


@dataclass
class Books:
    stores: Stores
    metrics: InMemoryMetrics

    def service(self, venue: Venue, exchange: object | None = None) -> ExecutionService:
        """A fresh service over the same stores: what a restart builds."""
        return self.stores.service(exchange or venue.venue, self.metrics)

    def orders(self) -> list[dict[str, Any]]:
        return self.stores.orders.list_orders()

    def position(self) -> dict[str, Any] | None:
        return self.stores.positions.get(BTC.value)


@pytest.fixture
def books(venue: Venue) -> Books:
    return Books(Stores(venue.clock), InMemoryMetrics())


def _decision(qty: str = "0.03") -> OrderIntent:
    return OrderIntent("live-venue-test", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                       Quantity.of(qty), Price.of("31400"))  # fmt: skip


QUOTE = MarketQuote(NOW - timedelta(minutes=1), Decimal("500000000"))
EQUITY = Money(Decimal("100000"))


def test_live_venue_decision_to_partial_fill_to_fill_to_position(
    venue: Venue, books: Books
) -> None:
    venue.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    service = books.service(venue)
    # When the decision is submitted
    result = service.submit(_decision(), equity=EQUITY, quote=QUOTE)
    # Then it is one order at the venue under its client id, partially filled on the 10:00 bar
    assert result.status == OrderStatus.PARTIALLY_FILLED.value
    [order] = books.orders()
    assert order["mode"] == "testnet"
    assert venue.fake.orders(order["client_order_id"])[0]["status"] == "PARTIALLY_FILLED"
    position = books.position()
    assert position is not None and Decimal(str(position["quantity"])) == Decimal("0.01998")
    # When the next cycle runs after the 11:00 bar opened
    venue.clock.advance(timedelta(hours=1))
    books.service(venue).reconcile()
    [order] = books.orders()
    assert order["status"] == OrderStatus.FILLED.value
    # Then the position holds exactly what reached the account, the fee is the trades' fee
    position = books.position()
    assert position is not None
    assert Decimal(str(position["quantity"])) == venue.fake.balances["BTC"] == Decimal("0.02997")
    assert Decimal(str(order["fee"])) > 0
    assert venue.fake.posts() == 1


def test_live_venue_crash_between_send_and_record_reconciles_to_exactly_one_order(
    venue: Venue, books: Books
) -> None:
    # Given a process killed right after the venue accepted the order
    killed = LosesTheAnswer(
        venue.venue, lambda _: KeyboardInterrupt("killed between send and record")
    )
    with pytest.raises(KeyboardInterrupt):
        books.service(venue, killed).submit(_decision(), equity=EQUITY, quote=QUOTE)
    [order] = books.orders()
    assert order["status"] == OrderStatus.SUBMITTED.value
    # When a fresh process starts (reconcile on start), and the same decision comes again
    restarted = books.service(venue)
    restarted.reconcile()
    again = restarted.submit(_decision(), equity=EQUITY, quote=QUOTE)
    # Then the order is found by its client id and recorded once; nothing was re-sent
    assert again.status == "duplicate"
    [order] = books.orders()
    assert order["status"] == OrderStatus.FILLED.value
    assert venue.fake.posts() == 1
    assert len(venue.fake.orders(order["client_order_id"])) == 1
    position = books.position()
    assert position is not None and Decimal(str(position["quantity"])) == Decimal("0.02997")


def test_live_venue_a_create_refused_with_a_429_is_settled_as_not_placed_never_resent(
    venue: Venue, books: Books
) -> None:
    # Given a venue that answers the create with its rate-limit refusal (HTTP 429, -1003)
    venue.fake.fail_next("POST", "/api/v3/order", "rate_limit")
    service = books.service(venue)
    result = service.submit(_decision(), equity=EQUITY, quote=QUOTE)
    # Then the order is looked up by its client id at once, found absent, and recorded REJECTED
    # with why: not left SUBMITTED for hours, never sent a second time
    assert result.status == OrderStatus.REJECTED.value, result
    [order] = books.orders()
    assert order["status"] == OrderStatus.REJECTED.value
    assert "429 Too Many Requests" in str(order["reject_reason"])
    assert "not placed" in str(order["reject_reason"])
    assert venue.fake.posts() == 1 and venue.fake.orders() == []
    assert books.metrics.total("OrdersRejectedByExchange") == 1
    # and the same decision again is a duplicate of the recorded refusal: nothing is sent
    assert books.service(venue).submit(_decision(), equity=EQUITY, quote=QUOTE).status == (
        "duplicate"
    )
    assert venue.fake.posts() == 1


def test_live_venue_a_timeout_is_not_settled_like_a_429(venue: Venue, books: Books) -> None:
    # a timeout before booking: the request may still be in flight, so the order waits
    venue.fake.fail_next("POST", "/api/v3/order", "timeout_before_booking")
    result = books.service(venue).submit(_decision(), equity=EQUITY, quote=QUOTE)
    assert result.status == OrderStatus.SUBMITTED.value
    [order] = books.orders()
    assert order["status"] == OrderStatus.SUBMITTED.value


def test_live_venue_timeout_after_booking_is_reconciled_not_resent(
    venue: Venue, books: Books
) -> None:
    venue.fake.fail_next("POST", "/api/v3/order", "timeout_after_booking")
    result = books.service(venue).submit(_decision(), equity=EQUITY, quote=QUOTE)
    assert result.status == OrderStatus.FILLED.value
    assert venue.fake.posts() == 1


def test_live_venue_timeout_before_booking_is_settled_as_not_placed_and_never_resent(
    venue: Venue, books: Books
) -> None:
    venue.fake.fail_next("POST", "/api/v3/order", "timeout_before_booking")
    result = books.service(venue).submit(_decision(), equity=EQUITY, quote=QUOTE)
    assert result.status == OrderStatus.SUBMITTED.value
    assert "not resent" in result.reason
    # a cycle within the request's recvWindow plus the query lag margin: still waited for
    venue.clock.advance(timedelta(minutes=3))
    books.service(venue).reconcile()
    [order] = books.orders()
    assert order["status"] == OrderStatus.SUBMITTED.value
    # an hour later the venue can no longer execute it: absent by its client ID, not placed
    venue.clock.advance(timedelta(hours=1))
    books.service(venue).reconcile()
    books.service(venue).reconcile()
    assert venue.fake.posts() == 1 and venue.fake.orders() == []
    [order] = books.orders()
    assert order["status"] == OrderStatus.EXPIRED.value
    assert "request window" in str(order["expire_reason"])
    assert "not placed" in str(order["expire_reason"])


def test_live_venue_refusal_below_minimum_is_recorded_with_its_reason(
    venue: Venue, books: Books
) -> None:
    result = books.service(venue).submit(_decision("0.00015"), equity=EQUITY, quote=QUOTE)
    assert result.status == OrderStatus.REJECTED.value
    [order] = books.orders()
    assert "below the minimum notional" in order["reject_reason"]
    assert venue.fake.posts() == 0


def test_live_venue_a_scan_decision_sent_on_the_testnet_is_recorded_as_testnet(
    venue: Venue, books: Books
) -> None:
    # Given a NEW order recorded by the scan (which does not know the venue: mode "paper")
    store = books.stores.orders
    intent = _decision()
    assert store.put_new(
        {
            "client_order_id": intent.client_order_id.value,
            "symbol": BTC.value,
            "side": "buy",
            "intent": "open",
            "quantity": Decimal("0.03"),
            "reference_price": Decimal("31400"),
            "strategy": intent.strategy,
            "signal_bar_ms": intent.signal_bar_ms,
            "position_key": None,
            "status": "NEW",
            "mode": "paper",
            "created_at": NOW.isoformat(),
            "valid_until": (NOW + timedelta(hours=2)).isoformat(),
        }
    )
    # When the execution cycle on a testnet deployment sends it
    books.service(venue).reconcile()
    # Then the record says where it was really sent
    [order] = books.orders()
    assert order["status"] == OrderStatus.FILLED.value
    assert order["mode"] == "testnet"
