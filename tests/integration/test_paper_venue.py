"""The paper venue on real Binance hourly bars, with its book in memory and in the state table.

A market order fills on the first bar opening at or after it was placed, and only once that bar
has opened by the venue's clock; until then it is ACCEPTED. The book in the state table outlives
the venue object, as a real exchange outlives our process. The book's logic runs on the state
table's in-memory fake (``tests/fakes.py``, held to the DynamoDB adapter's contract by
``test_store_contract.py``); only the concurrent lookups, which rely on DynamoDB's conditional
write, run on moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.paper_exchange import (
    InMemoryPaperBook,
    PaperBook,
    PaperExchange,
    StatePaperBook,
)
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import FatalExchangeError, OrderNotFoundError, OrderType
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.types import ClientOrderId, Quantity, Side, Symbol
from tests.fakes import InMemoryStateStore
from tests.support.aws import moto_stack

pytestmark = pytest.mark.realdata

PLACED = datetime(2022, 5, 10, 9, 20, tzinfo=UTC)  # the 10:00 BTC/USDT bar is the next one
BTC = Symbol("BTC/USDT")
COID = ClientOrderId("0123456789abcdef0123456789abcdef")


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@pytest.fixture
def dynamodb_book(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatePaperBook]:
    with moto_stack(monkeypatch, now=PLACED) as aws:
        yield StatePaperBook(DynamoStateStore(aws.resources.state_table, aws.dynamodb))


def _bar(market: RecordedMarketData, at: datetime) -> dict[str, float]:
    frame = market.ohlcv("BTC/USDT", "1h", at, at)
    assert frame.height == 1
    return frame.row(0, named=True)


@pytest.mark.parametrize("kind", ["memory", "state"])
def test_order_waits_for_its_bar_then_fills_on_it_across_restarts(
    market: RecordedMarketData, kind: str
) -> None:
    book: PaperBook = (
        InMemoryPaperBook() if kind == "memory" else StatePaperBook(InMemoryStateStore())
    )
    clock = FixedClock(PLACED)
    venue = PaperExchange(market, clock, book=book)

    placed = venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.5"), None, COID)
    assert placed.status is OrderStatus.ACCEPTED and placed.filled == 0
    assert venue.fetch_order_by_client_id(BTC, COID).status is OrderStatus.ACCEPTED  # type: ignore[union-attr]

    # a new venue object over the same book (the next Lambda invocation) after 10:00 opened
    clock.current = PLACED + timedelta(minutes=50)
    again = PaperExchange(market, clock, book=book)
    filled = again.fetch_order_by_client_id(BTC, COID)
    assert filled is not None and filled.status is OrderStatus.FILLED
    bar = _bar(market, datetime(2022, 5, 10, 10, tzinfo=UTC))
    assert filled.ts_ms == int(bar["ts"])
    assert filled.average is not None and filled.average.value > Decimal(repr(bar["open"]))
    assert filled.fee is not None and filled.fee > 0
    # the same fill whenever it is asked for, and the same client id cannot trade twice
    clock.current += timedelta(hours=5)
    assert again.fetch_order_by_client_id(BTC, COID) == filled
    with pytest.raises(FatalExchangeError, match="duplicate client order id"):
        again.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.5"), None, COID)


def test_concurrent_lookups_fill_an_order_exactly_once(
    market: RecordedMarketData, dynamodb_book: StatePaperBook
) -> None:
    clock = FixedClock(PLACED)
    PaperExchange(market, clock, book=dynamodb_book).create_order(
        BTC, Side.SELL, OrderType.MARKET, Quantity.of("0.2"), None, COID
    )
    clock.current = PLACED + timedelta(hours=1)
    venues = [PaperExchange(market, clock, book=dynamodb_book) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = list(pool.map(lambda v: v.fetch_order_by_client_id(BTC, COID), venues))
    assert {o.status for o in seen if o is not None} == {OrderStatus.FILLED}
    assert len({(o.average, o.fee, o.ts_ms) for o in seen if o is not None}) == 1


def test_order_placed_after_the_bar_opened_fills_at_once(market: RecordedMarketData) -> None:
    clock = FixedClock(datetime(2022, 5, 10, 10, tzinfo=UTC))  # the 10:00 bar is open now
    venue = PaperExchange(market, clock)
    order = venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, COID)
    assert order.status is OrderStatus.FILLED and order.filled == Decimal("0.1")


def test_an_order_whose_bar_never_arrives_expires(market: RecordedMarketData) -> None:
    class NoBarsYet:
        """The lake before the next candle was ingested (real bars, cut at the placement)."""

        def ohlcv(
            self, symbol: str, timeframe: str, start: datetime, end: datetime
        ) -> pl.DataFrame:
            frame = market.ohlcv(symbol, timeframe, start - timedelta(days=1), end)
            return frame.filter(pl.col("ts") < int(PLACED.timestamp() * 1000))

    clock = FixedClock(PLACED)
    venue = PaperExchange(NoBarsYet(), clock, max_wait=timedelta(hours=2))
    venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, COID)
    clock.current += timedelta(hours=1)
    assert venue.fetch_order_by_client_id(BTC, COID).status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    clock.current += timedelta(hours=2)
    expired = venue.fetch_order_by_client_id(BTC, COID)
    assert expired is not None and expired.status is OrderStatus.EXPIRED and expired.filled == 0


def test_cancel_works_on_an_open_order_only(market: RecordedMarketData) -> None:
    clock = FixedClock(PLACED)
    venue = PaperExchange(market, clock)
    venue.create_order(BTC, Side.BUY, OrderType.MARKET, Quantity.of("0.1"), None, COID)
    venue.cancel_order(BTC, COID)
    assert venue.fetch_order_by_client_id(BTC, COID).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    clock.current += timedelta(hours=2)  # a cancelled order never fills afterwards
    assert venue.fetch_order_by_client_id(BTC, COID).status is OrderStatus.CANCELED  # type: ignore[union-attr]
    with pytest.raises(OrderNotFoundError, match="not open"):
        venue.cancel_order(BTC, COID)


def test_unknown_symbol_is_refused_like_a_venue_would(market: RecordedMarketData) -> None:
    venue = PaperExchange(market, FixedClock(PLACED))
    with pytest.raises(FatalExchangeError, match="unknown symbol"):
        venue.create_order(
            Symbol("NOPE/USDT"), Side.BUY, OrderType.MARKET, Quantity.of("1"), None, COID
        )
