"""The scan's AWS data source: daily candles read back from the S3 lake as of a date."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.lake_market_data import LakeMarketData
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.market import DAILY_SCHEMA
from cryptosmarttrader.domain.universe import is_tradable_pair
from tests.support.aws import moto_stack

pytestmark = pytest.mark.realdata
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[S3ParquetLake]:
    with moto_stack(monkeypatch) as clients:
        lake = S3ParquetLake(clients.resources.lake_bucket, clients.s3)
        market = RecordedMarketData(data_dir)
        start, end = datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 6, 30, tzinfo=UTC)
        for pair in PAIRS:
            lake.write_candles(market.ohlcv(pair, "1d", start, end), "binance", "1d")
        yield lake


def test_lake_lists_its_symbols(lake: S3ParquetLake) -> None:
    assert lake.symbols("binance", "1d") == sorted(PAIRS)
    assert lake.symbols("kraken", "1d") == []


def test_daily_universe_from_lake_matches_the_recorded_candles(
    lake: S3ParquetLake, data_dir: Path
) -> None:
    # Given the lake holds real Binance daily candles for three pairs
    source = LakeMarketData(lake, "binance", lambda: lake.symbols("binance", "1d"))
    asof = datetime(2021, 5, 1, tzinfo=UTC)
    # When the scan asks for 30 days as of 2021-05-01
    frame = source.daily_universe(asof, 30)
    # Then it gets the 30 candles that had closed by as-of, each keyed by its close time
    assert frame.schema == pl.Schema(DAILY_SCHEMA)
    assert frame["symbol"].unique().sort().to_list() == sorted(PAIRS)
    asof_ms = int(asof.timestamp() * 1000)
    assert frame["ts"].max() == asof_ms
    assert frame.group_by("symbol").len()["len"].to_list() == [30, 30, 30]
    last_closed = asof - timedelta(days=1)  # the candle of 2021-04-30 closed at 2021-05-01
    btc = RecordedMarketData(data_dir).ohlcv("BTC/USDT", "1d", last_closed, last_closed)
    row = frame.filter((pl.col("symbol") == "BTC/USDT") & (pl.col("ts") == asof_ms))
    assert row["close"][0] == btc["close"][0]
    assert row["volume"][0] == pytest.approx(btc["volume"][0] * btc["close"][0])
    assert frame["market_cap"].null_count() == frame.height


def test_stable_and_wrapped_pairs_are_not_candidates() -> None:
    assert is_tradable_pair("SOL/USDT")
    assert not is_tradable_pair("USDC/USDT")
    assert not is_tradable_pair("wbtc/usdt")
