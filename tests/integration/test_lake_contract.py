"""One contract per lake port, run against its S3 adapter on moto and against its in-memory
fake (``tests/fakes.py``): the candles (``LakeStore``: ``adapters/s3_lake.py``), the market caps
(``MarketCapStore``: ``adapters/s3_market_caps.py``) and the agents' side data (``FundingStore``,
``SentimentStore``, ``WithdrawalStore``: ``adapters/s3_agent_inputs.py``). The same object keys,
merges, refusals, reads and orders, so the logic tests that run on the fakes hold on S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from cryptosmarttrader.adapters.s3_agent_inputs import SENTIMENT_SCHEMA, S3AgentInputs
from cryptosmarttrader.adapters.s3_lake import MERGE_ATTEMPTS, S3ParquetLake
from cryptosmarttrader.adapters.s3_market_caps import S3MarketCapLake
from cryptosmarttrader.domain.agents.arbitrage import WITHDRAWAL_SCHEMA
from cryptosmarttrader.domain.agents.funding import FUNDING_SCHEMA
from cryptosmarttrader.domain.coins import MARKET_CAP_SCHEMA
from cryptosmarttrader.domain.market import DAY_MS, OHLCV_SCHEMA
from tests.fakes import InMemoryAgentInputs, InMemoryLake, InMemoryMarketCapLake
from tests.support.aws import moto_stack

H = 3_600_000
D0 = 1_704_067_200_000  # 2024-01-01T00:00Z
JAN1 = datetime(2024, 1, 1, tzinfo=UTC)
FAR = datetime(2025, 12, 31, tzinfo=UTC)


@dataclass
class Lake:
    candles: Any
    caps: Any
    inputs: Any


@pytest.fixture(params=["s3", "in-memory"])
def lake(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    if request.param == "in-memory":
        yield Lake(InMemoryLake(), InMemoryMarketCapLake(), InMemoryAgentInputs())
        return
    with moto_stack(monkeypatch) as aws:
        bucket = aws.resources.lake_bucket
        yield Lake(
            S3ParquetLake(bucket, aws.s3),
            S3MarketCapLake(bucket, aws.s3),
            S3AgentInputs(bucket, aws.s3),
        )


def _bars(symbol: str, start_ms: int, n: int, step: int = H, base: float = 100.0) -> pl.DataFrame:
    close = [base + i for i in range(n)]
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [start_ms + i * step for i in range(n)],
            "open": close,
            "high": [c + 1 for c in close],
            "low": [c - 1 for c in close],
            "close": close,
            "volume": [10.0] * n,
        },
        schema=OHLCV_SCHEMA,
    )


# --------------------------------------------------------------------------- LakeStore


def test_candles_go_to_one_partition_per_date_or_month_and_the_written_keys_come_back_sorted(
    lake: Lake,
) -> None:
    # Given 30 hourly bars across two UTC dates and 40 daily bars across two months
    hourly = lake.candles.write_candles(_bars("BTC/USDT", D0 + 6 * H, 30), "binance", "1h")
    daily = lake.candles.write_candles(_bars("ETH/USDT", D0, 40, DAY_MS), "binance", "1d")
    # Then the keys are the adapter's partitions, sorted
    assert hourly == [
        "exchange=binance/timeframe=1h/symbol=BTC-USDT/date=2024-01-01/part.parquet",
        "exchange=binance/timeframe=1h/symbol=BTC-USDT/date=2024-01-02/part.parquet",
    ]
    assert daily == [
        "exchange=binance/timeframe=1d/symbol=ETH-USDT/month=2024-01/part.parquet",
        "exchange=binance/timeframe=1d/symbol=ETH-USDT/month=2024-02/part.parquet",
    ]


def test_a_rerun_writes_nothing_and_an_overlap_rewrites_only_its_partition_newer_row_winning(
    lake: Lake,
) -> None:
    lake.candles.write_candles(_bars("BTC/USDT", D0, 48), "binance", "1h")
    # When the same input is written again, Then nothing is written
    assert lake.candles.write_candles(_bars("BTC/USDT", D0, 48), "binance", "1h") == []
    # When bar 30 comes again with another close, Then only its date is rewritten
    again = _bars("BTC/USDT", D0 + 30 * H, 1, base=999.0)
    assert lake.candles.write_candles(again, "binance", "1h") == [
        "exchange=binance/timeframe=1h/symbol=BTC-USDT/date=2024-01-02/part.parquet"
    ]
    got = lake.candles.read_candles("binance", "1h", "BTC/USDT", JAN1, FAR)
    assert got.height == 48
    assert got["ts"].to_list() == [D0 + i * H for i in range(48)]
    assert got.filter(pl.col("ts") == D0 + 30 * H)["close"].to_list() == [999.0]


def test_reads_are_cut_to_the_window_sorted_and_empty_for_an_unknown_series(lake: Lake) -> None:
    # written out of order
    lake.candles.write_candles(_bars("BTC/USDT", D0, 48).reverse(), "binance", "1h")
    got = lake.candles.read_candles(
        "binance",
        "1h",
        "BTC/USDT",
        datetime(2024, 1, 1, 5, tzinfo=UTC),
        datetime(2024, 1, 1, 6, tzinfo=UTC),
    )
    assert got["ts"].to_list() == [D0 + i * H for i in range(5, 7)]
    assert got.schema == pl.Schema(OHLCV_SCHEMA)
    none = lake.candles.read_candles("binance", "1h", "SOL/USDT", JAN1, FAR)
    assert none.is_empty()
    assert none.schema == pl.Schema(OHLCV_SCHEMA)


def test_the_series_and_their_dates_are_listed_in_ascending_order(lake: Lake) -> None:
    lake.candles.write_candles(_bars("SOL/USDT", D0 + 40 * DAY_MS, 3, DAY_MS), "binance", "1d")
    lake.candles.write_candles(_bars("BTC/USDT", D0, 2, DAY_MS), "binance", "1d")
    lake.candles.write_candles(_bars("ADA/USDT", D0, 1, DAY_MS), "kraken", "1d")
    assert lake.candles.symbols("binance", "1d") == ["BTC/USDT", "SOL/USDT"]
    assert lake.candles.symbols("binance", "1h") == []
    assert lake.candles.days("binance", "1d", "SOL/USDT") == [
        date(2024, 2, 10),
        date(2024, 2, 11),
        date(2024, 2, 12),
    ]


@pytest.mark.parametrize("symbol", ["../etc", "BTC/../USDT", "/BTC", ""])
def test_path_like_symbols_are_refused_on_write_and_read(lake: Lake, symbol: str) -> None:
    with pytest.raises(ValueError, match="lake partition"):
        lake.candles.write_candles(_bars(symbol, D0, 1), "binance", "1h")
    with pytest.raises(ValueError, match="lake partition"):
        lake.candles.read_candles("binance", "1h", symbol, JAN1, FAR)


def test_incomplete_or_keyless_frames_and_inverted_windows_are_refused(lake: Lake) -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        lake.candles.write_candles(_bars("BTC/USDT", D0, 2).drop("volume"), "binance", "1h")
    nulls = _bars("BTC/USDT", D0, 2).with_columns(ts=pl.lit(None, pl.Int64()))
    with pytest.raises(ValueError, match="null ts or symbol"):
        lake.candles.write_candles(nulls, "binance", "1h")
    with pytest.raises(ValueError, match="before start"):
        lake.candles.read_candles("binance", "1h", "BTC/USDT", FAR, JAN1)
    assert lake.candles.write_candles(_bars("BTC/USDT", D0, 0), "binance", "1h") == []


def test_concurrent_writers_of_one_new_partition_never_drop_each_others_bars(lake: Lake) -> None:
    # Given as many writers creating the same month object at once as the adapter makes
    # conditional PUTs of one object (each loses at most once to each other writer, so none
    # gives up: more writers than that is S3 contention, not this contract), each with its day
    n = MERGE_ATTEMPTS
    writes = [_bars("SOL/USDT", D0 + i * DAY_MS, 1, DAY_MS) for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(lambda bars: lake.candles.write_candles(bars, "binance", "1d"), writes))
    # Then every writer's bar is kept (conditional create, merge again on conflict)
    got = lake.candles.read_candles("binance", "1d", "SOL/USDT", JAN1, FAR)
    assert got["ts"].to_list() == [D0 + i * DAY_MS for i in range(n)]


# --------------------------------------------------------------------------- MarketCapStore


def _caps(rows: list[tuple[str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=MARKET_CAP_SCHEMA, orient="row")


def test_market_caps_merge_into_month_objects_and_read_cut_to_coins_and_window(lake: Lake) -> None:
    first = _caps([("bitcoin", D0 + 40 * DAY_MS, 2.0), ("bitcoin", D0, 1.0), ("ethereum", D0, 5.0)])
    assert lake.caps.write_market_caps(first) == [
        "dataset=market_cap/source=coingecko/month=2024-01/part.parquet",
        "dataset=market_cap/source=coingecko/month=2024-02/part.parquet",
    ]
    assert lake.caps.write_market_caps(first) == []
    assert lake.caps.write_market_caps(_caps([("bitcoin", D0, 1.5)])) == [
        "dataset=market_cap/source=coingecko/month=2024-01/part.parquet"
    ]
    got = lake.caps.read_market_caps(["ethereum", "bitcoin"], JAN1, FAR)
    assert got.rows() == [
        ("bitcoin", D0, 1.5),
        ("bitcoin", D0 + 40 * DAY_MS, 2.0),
        ("ethereum", D0, 5.0),
    ]
    jan = lake.caps.read_market_caps(["bitcoin"], JAN1, datetime(2024, 1, 31, tzinfo=UTC))
    assert jan.rows() == [("bitcoin", D0, 1.5)]
    assert lake.caps.read_market_caps([], JAN1, FAR).schema == pl.Schema(MARKET_CAP_SCHEMA)
    assert lake.caps.read_market_caps(["solana"], JAN1, FAR).is_empty()
    with pytest.raises(ValueError, match="before start"):
        lake.caps.read_market_caps(["bitcoin"], FAR, JAN1)
    with pytest.raises(ValueError, match="null coin or ts"):
        lake.caps.write_market_caps(_caps([(None, D0, 1.0)]))  # type: ignore[list-item]


# --------------------------------------------------------------------------- side data


def test_funding_merges_per_pair_and_month_and_reads_the_window_sorted(lake: Lake) -> None:
    rows = pl.DataFrame(
        [("BTC/USDT", D0 + 8 * H, 0.0002), ("BTC/USDT", D0, 0.0001), ("ETH/USDT", D0, 0.0003)],
        schema=FUNDING_SCHEMA,
        orient="row",
    )
    assert lake.inputs.write_funding(rows, "binance") == [
        "dataset=funding/exchange=binance/symbol=BTC-USDT/month=2024-01/part.parquet",
        "dataset=funding/exchange=binance/symbol=ETH-USDT/month=2024-01/part.parquet",
    ]
    assert lake.inputs.write_funding(rows, "binance") == []
    got = lake.inputs.read_funding("binance", "BTC/USDT", JAN1, datetime(2024, 1, 1, 8, tzinfo=UTC))
    assert got.rows() == [("BTC/USDT", D0, 0.0001), ("BTC/USDT", D0 + 8 * H, 0.0002)]
    assert lake.inputs.read_funding("binance", "SOL/USDT", JAN1, FAR).schema == pl.Schema(
        FUNDING_SCHEMA
    )
    with pytest.raises(ValueError, match="lake partition"):
        lake.inputs.write_funding(rows, "Bin/ance")


def test_sentiment_merges_per_year_the_newer_reading_winning(lake: Lake) -> None:
    dec31 = D0 - DAY_MS
    rows = pl.DataFrame(
        [(D0, 40.0, "Fear"), (dec31, 55.0, "Greed")], schema=SENTIMENT_SCHEMA, orient="row"
    )
    assert lake.inputs.write_sentiment(rows, "fear_greed") == [
        "dataset=sentiment/source=fear_greed/year=2023/part.parquet",
        "dataset=sentiment/source=fear_greed/year=2024/part.parquet",
    ]
    assert lake.inputs.write_sentiment(rows, "fear_greed") == []
    newer = pl.DataFrame([(D0, 20.0, "Extreme Fear")], schema=SENTIMENT_SCHEMA, orient="row")
    assert lake.inputs.write_sentiment(newer, "fear_greed") == [
        "dataset=sentiment/source=fear_greed/year=2024/part.parquet"
    ]
    got = lake.inputs.read_sentiment("fear_greed", datetime(2023, 6, 1, tzinfo=UTC), FAR)
    assert got.rows() == [(dec31, 55.0, "Greed"), (D0, 20.0, "Extreme Fear")]
    assert lake.inputs.read_sentiment("fear_greed", JAN1, JAN1).rows() == [
        (D0, 20.0, "Extreme Fear")
    ]
    assert lake.inputs.read_sentiment("other", JAN1, FAR).schema == pl.Schema(SENTIMENT_SCHEMA)


def test_withdrawals_merge_on_coin_and_time_and_the_last_runs_status_is_kept(lake: Lake) -> None:
    def obs(coin: str, ts: int, fee: float) -> tuple[Any, ...]:
        return ("kucoin", coin, True, True, fee, 0.001, ts)

    rows = pl.DataFrame(
        [obs("ETH", D0, 0.01), obs("BTC", D0, 0.0005), obs("BTC", D0 + H, 0.0004)],
        schema=WITHDRAWAL_SCHEMA,
        orient="row",
    )
    assert lake.inputs.write_withdrawals(rows, "kucoin") == [
        "dataset=withdrawals/exchange=kucoin/month=2024-01/part.parquet"
    ]
    assert lake.inputs.write_withdrawals(rows, "kucoin") == []
    got = lake.inputs.read_withdrawals("kucoin", JAN1, datetime(2024, 1, 1, 0, 30, tzinfo=UTC))
    assert [(r[1], r[6]) for r in got.rows()] == [("BTC", D0), ("ETH", D0)]
    assert lake.inputs.read_withdrawals("binance", JAN1, FAR).schema == pl.Schema(WITHDRAWAL_SCHEMA)
    # the status of the venue's last run: none recorded, then the latest one
    assert lake.inputs.read_withdrawal_status("binance") is None
    lake.inputs.write_withdrawal_status("binance", D0, "no read-only keys")
    lake.inputs.write_withdrawal_status("binance", D0 + H, None)
    assert lake.inputs.read_withdrawal_status("binance") == (D0 + H, None)
    with pytest.raises(ValueError, match="lake partition"):
        lake.inputs.write_withdrawal_status("../x", D0, None)
