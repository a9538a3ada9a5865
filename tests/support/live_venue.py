"""The rig of the protective-exit tests against the local fake Binance: an ExecutionService
trading through real ccxt at the fake (every signature verified), on the recorded BTC/USDT bars
of 2022-05-10, its clock fixed where the test puts it.

The venue is what these tests are about; the service's stores (orders, positions, risk state)
and its kill-switch are the in-memory fakes of ``tests/fakes.py``, built as ``wiring`` builds
them on DynamoDB and SSM (each fake keeps its adapter's contract:
``tests/integration/test_store_contract.py``). A test that reads or writes the ledger directly
does it through ``rig.stores``, which hold the same records as the tables would.

A test module imports the fixtures (``market``, ``rig``) and the helpers it uses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ccxt
import pytest

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue, ccxt_client
from cryptosmarttrader.adapters.dynamodb_store import read_open_orders
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.book import OpenOrders
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import RetryPolicy
from cryptosmarttrader.domain.exit_rule import ExitRule
from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.risk import MarketQuote
from cryptosmarttrader.domain.types import Money, Price, Quantity, Side, Symbol
from cryptosmarttrader.domain.venue import VenueMode
from cryptosmarttrader.services.execution import ExecutionService
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.services.trading_cycle import TradingCycle
from cst_devtools.fake_binance import FakeBinance, serve
from tests.support.book import FakeBook

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
NOW = datetime(2022, 5, 10, 10, 0, tzinfo=UTC)  # the 10:00 BTC/USDT bar opens at 31397.68
BTC = Symbol("BTC/USDT")
# the first recorded bar whose low reaches 31000 is the 14:00 bar (open 31815.76, low
# 30819.98): a stop at 31000 triggers there, known once that bar closed at 15:00
STOP = Decimal("31000.004")
QUOTE = MarketQuote(NOW - timedelta(minutes=1), Decimal("500000000"))
EQUITY = Money(Decimal("100000"))


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Stores(FakeBook):
    """The execution service's stores and kill-switch on the in-memory fakes
    (:class:`~tests.support.book.FakeBook`)."""

    def service(self, exchange: Any, metrics: InMemoryMetrics) -> ExecutionService:
        """A fresh ExecutionService over these stores, trading on ``exchange``."""
        return ExecutionService(
            orders=self.orders,
            positions=self.positions,
            kill_switch=self.switch,
            risk=RiskStateService(self.state, self.switch, self.clock),
            exchange=exchange,
            clock=self.clock,
            metrics=metrics,
            mode=VenueMode.TESTNET.value,
        )


@dataclass
class Rig:
    fake: FakeBinance
    clock: FixedClock
    venue: CcxtVenue
    stores: Stores
    metrics: InMemoryMetrics

    def service(self, exchange: Any = None) -> ExecutionService:
        """A fresh service over the same stores and venue: what a restart builds."""
        return self.stores.service(exchange or self.venue, self.metrics)

    def cycle(self, market: RecordedMarketData, rule: ExitRule) -> TradingCycle:
        """The hourly trading cycle over a fresh service on this venue (balances read from it)."""
        service = self.service()
        return TradingCycle(
            execution=service,
            risk=service.risk,  # type: ignore[arg-type]
            market=market,
            metrics=self.metrics,
            starting_equity=Decimal("10000"),
            exit_rule=rule,
            balances=self.venue,
        )

    def switch(self, on: bool) -> None:
        self.stores.switch.set(on, "operator test" if on else "resolved", "operator")

    def orders(self, intent: Intent | None = None) -> list[dict[str, Any]]:
        every = self.stores.orders.list_orders()
        return [o for o in every if intent is None or o["intent"] == intent.value]

    def position(self) -> dict[str, Any]:
        return self.stores.positions.get(BTC.value) or {}

    def sent(self, method: str, kind: str | None = None) -> list[dict[str, str]]:
        return [
            p
            for m, path, p in self.fake.requests
            if m == method and path == "/api/v3/order" and (kind is None or p.get("type") == kind)
        ]


# a client on the fake waits this long for an answer the fake gives (a loaded machine can take
# seconds), and gives up after GIVE_UP_MS on the one the fake withholds (a timeout fault: the
# fake answers it after twice its ``client_timeout_s``, if at all)
PATIENT_MS = 10_000
GIVE_UP_MS = 100


def on_fake(client: ccxt.Exchange, fake: FakeBinance) -> ccxt.Exchange:
    """``client`` driven against ``fake``: refusing any host but the loopback (a test never
    reaches the internet); its timeout ``PATIENT_MS``, ``GIVE_UP_MS`` for a request the fake
    withholds (the timeout is real: ccxt raises its RequestTimeout from the socket's; the client
    goes on once the fake took that request, as a fault "after booking" means); its
    throttle on, at no wait (``rateLimit`` 0: the fake has no limit to respect; the production
    setting is checked by ``test_live_venue_fake_exchange.py``'s
    ``test_testnet_mode_uses_the_binance_spot_testnet_and_refuses_venues_without_one``)."""
    fetch = client.fetch
    client.rateLimit = 0

    def guarded(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parsed = urlparse(url)
        assert parsed.hostname == "127.0.0.1", f"ccxt tried to reach {url}"
        if not fake.withholds(method.upper(), parsed.path):
            client.timeout = PATIENT_MS
            return fetch(url, method, headers, body)
        client.timeout = GIVE_UP_MS
        try:
            return fetch(url, method, headers, body)
        finally:
            # the client gave up; it goes on once the fake took the request (booked it, for a
            # timeout after booking), however slow a loaded machine made the fake's thread
            assert fake.took_withheld(PATIENT_MS / 1000), f"the fake never took {method} {url}"

    client.fetch = guarded
    return client


def fake_binance(market: RecordedMarketData, clock: FixedClock) -> FakeBinance:
    """The fake Binance of these tests: 10,000 USDT and no BTC on the account, an answer it
    withholds (a timeout fault) given after 1 s if at all (the client gave up long before:
    :func:`on_fake`), BTC/USDT's recorded candles loaded before the clock starts ticking."""
    fake = FakeBinance(
        API_KEY,
        SECRET,
        market,
        clock.now,
        balances={"USDT": Decimal("10000"), "BTC": Decimal("0")},
        client_timeout_s=0.5,
    )
    fake.warm("BTCUSDT")
    return fake


@pytest.fixture
def rig(market: RecordedMarketData) -> Iterator[Rig]:
    clock = FixedClock(NOW)
    fake = fake_binance(market, clock)
    with serve(fake) as url:
        creds = {"apiKey": API_KEY, "secret": SECRET}
        client = ccxt_client("binance", VenueMode.TESTNET, creds, api_base_url=url)
        venue = CcxtVenue(
            on_fake(client, fake),
            clock,
            VenueMode.TESTNET,
            RetryPolicy(max_attempts=3, base_delay_s=0.0, max_delay_s=0.0),
            sleep=lambda _s: None,
        )
        yield Rig(fake, clock, venue, Stores(clock), InMemoryMetrics())


class LaggingIndex:
    """The orders ledger with its eventually consistent open-orders index lagging: once
    frozen, ``list_open`` answers what the index held then (a stop cancelled and settled since
    still shows as resting, with the status it had then; an order recorded since is missing).
    Reads by key stay consistent, as DynamoDB's are."""

    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger
        self._frozen: list[dict[str, Any]] | None = None

    def freeze(self) -> None:
        self._frozen = self._ledger.list_open()

    def list_open(self, symbol: str | None = None) -> list[dict[str, Any]]:
        if self._frozen is None:
            return self._ledger.list_open(symbol)  # type: ignore[no-any-return]
        return [dict(o) for o in self._frozen if symbol is None or o["symbol"] == symbol]

    def open_orders(self, symbol: str | None = None) -> OpenOrders:
        return read_open_orders(self.list_open(symbol))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def lagging(rig: Rig, exchange: Any = None) -> tuple[ExecutionService, LaggingIndex]:
    """A fresh service whose open-orders index lags (frozen by ``LaggingIndex.freeze``)."""
    service = rig.service(exchange)
    index = LaggingIndex(service.orders)
    service.orders = index  # type: ignore[assignment]
    return service, index


def entry(service: ExecutionService, qty: str = "0.03") -> None:
    intent = OrderIntent("protective-test", BTC, Side.BUY, Intent.OPEN, 1_652_140_800_000,
                         Quantity.of(qty), Price.of("31400"))  # fmt: skip
    result = service.submit(intent, equity=EQUITY, quote=QUOTE)
    assert result.sent, result.reason


def close(service: ExecutionService, strategy: str = "exit-rule") -> Any:
    held = Decimal(str(service.positions.get(BTC.value)["quantity"]))  # type: ignore[index]
    intent = OrderIntent(strategy, BTC, Side.SELL, Intent.CLOSE, 1_652_180_400_000,
                         Quantity(held), Price.of("31300"))  # fmt: skip
    fresh = MarketQuote(service.clock.now() - timedelta(minutes=1), QUOTE.volume_24h_quote)
    return service.submit(intent, equity=EQUITY, quote=fresh)


def stop_triggered_on_a_thin_book(rig: Rig, max_fill: str) -> Decimal:
    """An entry (0.03 BTC at the 10:00 open) protected by the stop at ``STOP``, which the
    14:00 bar triggers while the book fills at most ``max_fill`` BTC a bar: it sells that and
    keeps resting for the rest. The quantity still held, after the reconcile that booked it."""
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal(max_fill)
    rig.clock.advance(timedelta(hours=5))
    rig.service().reconcile()
    return Decimal(str(rig.position()["quantity"]))


def metric(rig: Rig, name: str) -> float:
    return rig.metrics.total(name)
