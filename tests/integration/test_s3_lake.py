"""S3 Parquet lake on moto: partition layout, idempotent merges, deterministic bytes, reads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake, symbol_slug
from cryptosmarttrader.domain.market import DAY_MS, OHLCV_SCHEMA
from tests.support.aws import moto_stack

H = 3_600_000
D0 = 1_704_067_200_000  # 2024-01-01T00:00Z


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch) as clients:
        yield clients


@pytest.fixture
def lake(aws: AwsClients) -> S3ParquetLake:
    return S3ParquetLake(aws.resources.lake_bucket, aws.s3)


def _bars(symbol: str, start_ms: int, n: int, step: int = H, base: float = 100.0) -> pl.DataFrame:
    ts = [start_ms + i * step for i in range(n)]
    close = [base + i for i in range(n)]
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": ts,
            "open": close,
            "high": [c + 1 for c in close],
            "low": [c - 1 for c in close],
            "close": close,
            "volume": [10.0] * n,
        },
        schema=OHLCV_SCHEMA,
    )


def _objects(aws: AwsClients) -> dict[str, bytes]:
    out = {}
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=aws.resources.lake_bucket):
        for o in page.get("Contents", []):
            body = aws.s3.get_object(Bucket=aws.resources.lake_bucket, Key=o["Key"])["Body"]
            out[o["Key"]] = body.read()
    return out


def test_writes_one_object_per_symbol_and_utc_date(aws: AwsClients, lake: S3ParquetLake) -> None:
    # Given 30 hourly BTC bars from 2024-01-01T00:00Z (spanning two dates) and one ETH bar
    frame = pl.concat([_bars("BTC/USDT", D0, 30), _bars("ETH/USDT", D0 + 5 * H, 1)])
    # When written
    keys = lake.write_candles(frame, "binance", "1h")
    # Then the partitions follow the contract layout
    assert keys == [
        "exchange=binance/timeframe=1h/symbol=BTC-USDT/date=2024-01-01/part.parquet",
        "exchange=binance/timeframe=1h/symbol=BTC-USDT/date=2024-01-02/part.parquet",
        "exchange=binance/timeframe=1h/symbol=ETH-USDT/date=2024-01-01/part.parquet",
    ]
    assert sorted(_objects(aws)) == keys


def test_rewriting_the_same_input_changes_nothing(aws: AwsClients, lake: S3ParquetLake) -> None:
    # Given a lake holding 30 bars
    frame = _bars("BTC/USDT", D0, 30)
    lake.write_candles(frame, "binance", "1h")
    before = _objects(aws)
    # When the same candles are written again (a rerun)
    rewritten = lake.write_candles(frame, "binance", "1h")
    # Then nothing is written and the bytes are identical
    assert rewritten == []
    assert _objects(aws) == before
    got = lake.read_candles(
        "binance",
        "1h",
        "BTC/USDT",
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 3, tzinfo=UTC),
    )
    assert got.height == 30


def test_overlapping_writes_merge_without_duplicates(lake: S3ParquetLake) -> None:
    # Given bars 0..19 in the lake
    lake.write_candles(_bars("BTC/USDT", D0, 20), "binance", "1h")
    # When bars 10..29 arrive (10 overlap, with revised values)
    lake.write_candles(_bars("BTC/USDT", D0 + 10 * H, 20, base=500.0), "binance", "1h")
    # Then the lake holds 30 unique bars in order, the newer values winning the overlap
    got = lake.read_candles(
        "binance",
        "1h",
        "BTC/USDT",
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 2, 23, tzinfo=UTC),
    )
    assert got["ts"].to_list() == [D0 + i * H for i in range(30)]
    assert got["close"][10] == 500.0
    assert got.schema == pl.Schema(OHLCV_SCHEMA)


def test_bytes_do_not_depend_on_write_order(aws: AwsClients, lake: S3ParquetLake) -> None:
    frame = _bars("BTC/USDT", D0, 24)
    lake.write_candles(frame, "binance", "1h")
    first = _objects(aws)
    aws.s3.delete_object(Bucket=aws.resources.lake_bucket, Key=next(iter(first)))
    lake.write_candles(frame.reverse(), "binance", "1h")
    assert _objects(aws) == first


def test_read_filters_the_requested_window(lake: S3ParquetLake) -> None:
    lake.write_candles(_bars("SOL/USDT", D0, 5, step=DAY_MS), "kraken", "1d")
    got = lake.read_candles(
        "kraken",
        "1d",
        "SOL/USDT",
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 4, tzinfo=UTC),
    )
    assert got["ts"].to_list() == [D0 + DAY_MS, D0 + 2 * DAY_MS, D0 + 3 * DAY_MS]
    assert lake.read_candles(
        "kraken",
        "1d",
        "ADA/USDT",
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 4, tzinfo=UTC),
    ).is_empty()


def test_path_like_symbols_are_refused() -> None:
    assert symbol_slug("BTC/USDT") == "BTC-USDT"
    with pytest.raises(ValueError, match="partition"):
        symbol_slug("../etc")


def test_incomplete_frames_are_refused(lake: S3ParquetLake) -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        lake.write_candles(pl.DataFrame({"symbol": ["X/Y"], "ts": [1]}), "binance", "1h")


@pytest.mark.realdata
def test_real_binance_candles_round_trip_exactly(data_dir: Path, lake: S3ParquetLake) -> None:
    # Given one year of real BTC/USDT daily candles
    start, end = datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 12, 31, tzinfo=UTC)
    real = RecordedMarketData(data_dir).ohlcv("BTC/USDT", "1d", start, end)
    # When written twice and read back
    written = lake.write_candles(real, "binance", "1d")
    assert real.height == 365
    assert [k.split("/")[-2] for k in written] == [f"month=2021-{m:02d}" for m in range(1, 13)]
    assert lake.write_candles(real, "binance", "1d") == []
    back = lake.read_candles("binance", "1d", "BTC/USDT", start, end)
    # Then every value is identical
    assert back.equals(real.sort("ts"))


def test_daily_and_4h_bars_are_one_object_per_month_hourly_one_per_date(
    aws: AwsClients, lake: S3ParquetLake
) -> None:
    # Given 40 daily bars from 2024-01-01, 10 days of 4h bars and 30 hours of 1h bars
    lake.write_candles(_bars("SOL/USDT", D0, 40, step=DAY_MS), "binance", "1d")
    lake.write_candles(_bars("SOL/USDT", D0, 60, step=4 * H), "binance", "4h")
    lake.write_candles(_bars("SOL/USDT", D0, 30), "binance", "1h")
    periods = sorted(k.split("/")[1] + " " + k.split("/")[3] for k in _objects(aws))
    # Then daily and 4h bars sit in month objects, hourly bars in date objects
    assert periods == [
        "timeframe=1d month=2024-01", "timeframe=1d month=2024-02",
        "timeframe=1h date=2024-01-01", "timeframe=1h date=2024-01-02",
        "timeframe=4h month=2024-01",
    ]  # fmt: skip
    # and every bar reads back, with the dates its bars opened on
    window = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert lake.read_candles("binance", "1d", "SOL/USDT", *window).height == 40
    assert len(lake.days("binance", "1d", "SOL/USDT")) == 40
    assert lake.read_candles("binance", "4h", "SOL/USDT", *window).height == 60


def test_daily_objects_of_the_earlier_one_per_date_layout_are_still_read(
    aws: AwsClients, lake: S3ParquetLake
) -> None:
    # Given a lake written before: one object per date for daily bars (Jan 1-3)
    bucket = aws.resources.lake_bucket
    legacy = _bars("SOL/USDT", D0, 3, step=DAY_MS)
    for i in range(3):
        buf = io.BytesIO()
        legacy.slice(i, 1).write_parquet(buf)
        key = f"exchange=binance/timeframe=1d/symbol=SOL-USDT/date=2024-01-0{i + 1}/part.parquet"
        aws.s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    # and a stray object under the prefix that is no partition
    stray = "exchange=binance/timeframe=1d/symbol=SOL-USDT/notes/part.parquet"
    aws.s3.put_object(Bucket=bucket, Key=stray, Body=b"not parquet")
    # When the next bars arrive (Jan 3 again, re-stated, and Jan 4) into the month object
    restated = _bars("SOL/USDT", D0 + 2 * DAY_MS, 2, step=DAY_MS, base=500.0)
    assert [k.split("/")[-2] for k in lake.write_candles(restated, "binance", "1d")] == [
        "month=2024-01"
    ]
    # Then the read joins both layouts, the month object winning on the same bar
    got = lake.read_candles(
        "binance",
        "1d",
        "SOL/USDT",
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 31, tzinfo=UTC),
    )
    assert got["ts"].to_list() == [D0 + i * DAY_MS for i in range(4)]
    assert got["close"].to_list() == [100.0, 101.0, 500.0, 501.0]
    assert len(lake.days("binance", "1d", "SOL/USDT")) == 4


def test_two_writers_of_one_month_object_never_drop_each_others_bars(
    aws: AwsClients, lake: S3ParquetLake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a month object holding the bar of March 1st
    march = 1_709_251_200_000  # 2024-03-01T00:00Z
    lake.write_candles(_bars("SOL/USDT", march, 1, step=DAY_MS), "binance", "1d")
    # When writer A reads it, writer B writes the 2nd in between, then A writes the 3rd
    other = S3ParquetLake(aws.resources.lake_bucket, aws.s3)
    read = S3ParquetLake._get_versioned
    raced: list[bool] = []

    def slow_reader(self: S3ParquetLake, key: str) -> tuple[bytes | None, str | None]:
        answer = read(self, key)
        if self is lake and not raced:
            raced.append(True)
            other.write_candles(_bars("SOL/USDT", march + DAY_MS, 1, step=DAY_MS), "binance", "1d")
        return answer

    monkeypatch.setattr(S3ParquetLake, "_get_versioned", slow_reader)
    lake.write_candles(_bars("SOL/USDT", march + 2 * DAY_MS, 1, step=DAY_MS), "binance", "1d")
    # Then A's conditional PUT failed, A merged again on B's object, and all three bars are kept
    assert raced == [True]
    got = lake.read_candles(
        "binance",
        "1d",
        "SOL/USDT",
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 31, tzinfo=UTC),
    )
    assert got["ts"].to_list() == [march, march + DAY_MS, march + 2 * DAY_MS]


def test_a_write_lists_only_the_partitions_from_its_first_one_on(
    aws: AwsClients, lake: S3ParquetLake
) -> None:
    # Given 60 days of hourly BTC bars in the lake (60 objects) and an ETH object
    lake.write_candles(_bars("BTC/USDT", D0, 60 * 24), "binance", "1h")
    lake.write_candles(_bars("ETH/USDT", D0, 24), "binance", "1h")
    listed: list[str] = []

    def record(parsed: dict[str, object], **_: object) -> None:
        listed.extend(o["Key"] for o in parsed.get("Contents", []))  # type: ignore[attr-defined]

    aws.s3.meta.events.register("after-call.s3.ListObjectsV2", record)
    # When the next batch arrives: revised bars of days 58 and 59 and two new days
    keys = lake.write_candles(
        _bars("BTC/USDT", D0 + 58 * DAY_MS, 4 * 24, base=900.0), "binance", "1h"
    )
    # Then the listing started at the batch's first partition (not at the series' first day)
    assert listed and min(listed) == keys[0]
    assert len(listed) == 2  # days 58 and 59: the only stored partitions from there on
    assert [k.split("/")[-2] for k in keys] == [f"date=2024-02-{d}" for d in (28, 29)] + [
        "date=2024-03-01",
        "date=2024-03-02",
    ]
    # and the stored partitions were merged as before: every bar once, the batch's values winning
    got = lake.read_candles(
        "binance",
        "1h",
        "BTC/USDT",
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 3, 3, tzinfo=UTC),
    )
    assert got["ts"].to_list() == [D0 + i * H for i in range(62 * 24)]
    assert got["close"][58 * 24] == 900.0
    assert got["close"][58 * 24 - 1] == 100.0 + 58 * 24 - 1


def test_a_write_of_month_objects_skips_the_earlier_date_objects_and_stops_past_its_last(
    aws: AwsClients, lake: S3ParquetLake
) -> None:
    # Given daily bars of Jan..Apr 2024 (one object per month) and, under the earlier layout, a
    # date object of January, which sorts before every month object
    lake.write_candles(_bars("BTC/USDT", D0, 121, step=DAY_MS), "binance", "1d")
    old_key = "exchange=binance/timeframe=1d/symbol=BTC-USDT/date=2024-01-05/part.parquet"
    aws.s3.put_object(Bucket=aws.resources.lake_bucket, Key=old_key, Body=b"PAR1")
    listed: list[str] = []

    def record(parsed: dict[str, object], **_: object) -> None:
        listed.extend(o["Key"] for o in parsed.get("Contents", []))  # type: ignore[attr-defined]

    aws.s3.meta.events.register("after-call.s3.ListObjectsV2", record)
    # When February's bars are revised
    feb = D0 + 31 * DAY_MS
    keys = lake.write_candles(_bars("BTC/USDT", feb, 29, step=DAY_MS, base=7.0), "binance", "1d")
    # Then only February onwards was listed, and February's object was merged (it existed)
    assert keys == ["exchange=binance/timeframe=1d/symbol=BTC-USDT/month=2024-02/part.parquet"]
    assert old_key not in listed and min(listed) == keys[0]
    got = lake.read_candles(
        "binance",
        "1d",
        "BTC/USDT",
        datetime(2024, 2, 1, tzinfo=UTC),
        datetime(2024, 2, 29, tzinfo=UTC),
    )
    assert got["close"].to_list() == [7.0 + i for i in range(29)]
