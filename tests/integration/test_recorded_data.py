"""RecordedMarketData over the real shared data set (and broken copies of a few real files)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import (
    FUNDING_SCHEMA,
    DataSourceError,
    RecordedMarketData,
)
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS, OHLCV_SCHEMA
from cryptosmarttrader.domain.types import ms_from_utc

pytestmark = pytest.mark.realdata

ASOF = datetime(2021, 6, 1, tzinfo=UTC)
SAMPLE_COINS = ("bitcoin", "ethereum", "dogecoin", "tether", "aave", "0x")


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


def copy_coins(data_dir: Path, dest: Path, coins: tuple[str, ...] = SAMPLE_COINS) -> Path:
    """A data dir holding copies of a few real coin files (tests then alter the copies)."""
    coins_dir = dest / "coingecko_daily" / "coins"
    coins_dir.mkdir(parents=True)
    for coin in coins:
        shutil.copy(data_dir / "coingecko_daily" / "coins" / f"{coin}.csv", coins_dir)
    return dest


def test_daily_universe_covers_every_coin_in_schema(
    market: RecordedMarketData,
) -> None:
    # Given the full CoinGecko set (cold cache)
    fresh = RecordedMarketData(market.data_dir)
    # When a 200-day universe is read (its speed is measured by bench/bench_scan.py, not here)
    frame = fresh.daily_universe(datetime(2023, 12, 31, tzinfo=UTC), 200)
    # Then every coin with data in the window is there, in schema, inside the window
    assert frame.schema == pl.Schema(DAILY_SCHEMA)
    assert frame["symbol"].n_unique() == 572
    asof_ms = ms_from_utc(datetime(2023, 12, 31, tzinfo=UTC))
    assert frame["ts"].max() == asof_ms
    assert frame["ts"].min() > asof_ms - 200 * DAY_MS
    assert frame.equals(frame.sort("symbol", "ts"))


def test_daily_universe_values_are_the_recorded_ones(market: RecordedMarketData) -> None:
    frame = market.daily_universe(datetime(2023, 12, 31, tzinfo=UTC), 2)
    btc = frame.filter(pl.col("symbol") == "bitcoin").row(-1, named=True)
    # Last line of bitcoin.csv: 1703980800000,42220.61140121376,14727224645.41767,...
    assert btc["ts"] == 1703980800000
    assert btc["close"] == pytest.approx(42220.61140121376, rel=0, abs=0)
    assert btc["volume"] == pytest.approx(14727224645.41767, rel=0, abs=0)


def test_no_look_ahead_truncated_and_altered_futures_give_identical_results(
    data_dir: Path, tmp_path: Path, market: RecordedMarketData
) -> None:
    # Given copies of real files truncated at asof, and copies whose future rows are altered
    asof_ms = ms_from_utc(ASOF)
    truncated = copy_coins(data_dir, tmp_path / "truncated")
    altered = copy_coins(data_dir, tmp_path / "altered")
    for coin in SAMPLE_COINS:
        full = pl.read_csv(data_dir / "coingecko_daily" / "coins" / f"{coin}.csv")
        full.filter(pl.col("timestamp") <= asof_ms).write_csv(
            truncated / "coingecko_daily" / "coins" / f"{coin}.csv"
        )
        full.with_columns(
            price=pl.when(pl.col("timestamp") > asof_ms)
            .then(pl.col("price") * 1000)
            .otherwise(pl.col("price"))
        ).write_csv(altered / "coingecko_daily" / "coins" / f"{coin}.csv")
    # When the same universe is read from the full, truncated and altered sets
    want = market.daily_universe(ASOF, 365).filter(pl.col("symbol").is_in(SAMPLE_COINS))
    got_truncated = RecordedMarketData(truncated).daily_universe(ASOF, 365)
    got_altered = RecordedMarketData(altered).daily_universe(ASOF, 365)
    # Then all three are identical
    assert want.height > 5 * 300
    assert got_truncated.equals(want)
    assert got_altered.equals(want)


def test_cache_is_invalidated_when_a_source_file_changes(data_dir: Path, tmp_path: Path) -> None:
    root = copy_coins(data_dir, tmp_path, ("bitcoin",))
    market = RecordedMarketData(root)
    before = market.daily_universe(ASOF, 10)
    path = root / "coingecko_daily" / "coins" / "bitcoin.csv"
    pl.read_csv(path).filter(pl.col("timestamp") < ms_from_utc(ASOF)).write_csv(path)
    after = market.daily_universe(ASOF, 10)
    assert after.height == before.height - 1


def test_naive_datetime_and_bad_lookback_are_refused(market: RecordedMarketData) -> None:
    with pytest.raises(DataSourceError, match="naive"):
        market.daily_universe(datetime(2021, 1, 1), 10)  # noqa: DTZ001
    with pytest.raises(DataSourceError, match="lookback_days"):
        market.daily_universe(ASOF, 0)


def test_data_span_is_the_documented_one(market: RecordedMarketData) -> None:
    first, last = market.data_span()
    assert datetime.fromtimestamp(first / 1000, UTC).date().isoformat() == "2013-04-28"
    assert datetime.fromtimestamp(last / 1000, UTC).date().isoformat() == "2023-12-31"


def test_metadata_flags_stablecoins_and_wrapped_tokens(market: RecordedMarketData) -> None:
    meta = market.coins_metadata()
    assert market.metadata_exclusions == {}
    assert meta["tether"].is_stablecoin
    assert not meta["tether"].is_wrapped
    assert meta["dai"].is_stablecoin
    assert meta["wrapped-bitcoin"].is_wrapped
    assert not meta["wrapped-bitcoin"].is_stablecoin
    assert meta["weth"].is_wrapped
    assert not meta["bitcoin"].is_stablecoin
    assert not meta["bitcoin"].is_wrapped
    assert meta["bitcoin"].genesis_date is not None
    assert meta["bitcoin"].genesis_date.isoformat() == "2009-01-03"


def test_ohlcv_reads_spot_candles_inside_the_range(market: RecordedMarketData) -> None:
    start = datetime(2020, 3, 12, tzinfo=UTC)
    frame = market.ohlcv("BTC/USDT", "1h", start, start + timedelta(hours=23))
    assert frame.schema == pl.Schema(OHLCV_SCHEMA)
    assert frame.height == 24
    assert frame["ts"].to_list() == [ms_from_utc(start) + i * 3_600_000 for i in range(24)]
    assert (frame["symbol"] == "BTC/USDT").all()


def test_available_pairs_lists_the_33_usdt_pairs(market: RecordedMarketData) -> None:
    pairs = market.available_pairs("1d")
    assert len(pairs) == 33
    assert "BTC/USDT" in pairs
    assert all(p.endswith("/USDT") for p in pairs)


def test_funding_and_mark_prices(market: RecordedMarketData) -> None:
    start, end = datetime(2021, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)
    funding = market.funding_rates("BTC/USDT", start, end)
    assert funding.schema == pl.Schema(FUNDING_SCHEMA)
    assert funding.height == 999
    assert funding["ts"][0] == 1630396800007  # recorded jitter kept as is
    mark = market.mark_prices("BTC/USDT", start, end)
    assert mark.schema == pl.Schema(OHLCV_SCHEMA)
    assert mark.height > 1000


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.ohlcv("DOGE/BTC", "1d", ASOF, ASOF), "expected BASE/USDT"),
        (lambda m: m.ohlcv("NOPE/USDT", "1d", ASOF, ASOF), "unknown symbol 'NOPE/USDT'"),
        (lambda m: m.ohlcv("BTC/USDT", "15m", ASOF, ASOF), "timeframe '15m'"),
        (lambda m: m.funding_rates("ETH/USDT", ASOF, ASOF), "unknown symbol 'ETH/USDT'"),
    ],
)
def test_unknown_symbols_and_timeframes_are_named(
    market: RecordedMarketData, call: object, message: str
) -> None:
    with pytest.raises(DataSourceError, match=message):
        call(market)  # type: ignore[operator]


def test_missing_data_dir_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="does not exist"):
        RecordedMarketData(tmp_path / "nope")
    with pytest.raises(DataSourceError, match=r"missing folder .*coins"):
        RecordedMarketData(tmp_path).daily_universe(ASOF, 10)


def test_renamed_column_is_named_with_the_file(data_dir: Path, tmp_path: Path) -> None:
    root = copy_coins(data_dir, tmp_path, ("bitcoin", "aave"))
    path = root / "coingecko_daily" / "coins" / "aave.csv"
    text = path.read_text().replace("price", "close", 1)
    path.write_text(text)
    with pytest.raises(DataSourceError, match=r"aave\.csv.*missing \['price'\]"):
        RecordedMarketData(root).daily_universe(ASOF, 10)


def test_non_numeric_csv_value_is_named_with_the_file(data_dir: Path, tmp_path: Path) -> None:
    root = copy_coins(data_dir, tmp_path, ("bitcoin", "aave"))
    path = root / "coingecko_daily" / "coins" / "aave.csv"
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    lines[5] = ",".join([cells[0], "n/a", *cells[2:]])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataSourceError, match=r"aave\.csv: non-numeric"):
        RecordedMarketData(root).daily_universe(ASOF, 10)


def spot_copy(data_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "binance_spot" / "1d"
    folder.mkdir(parents=True)
    shutil.copy(data_dir / "binance_spot" / "1d" / "BTC_USDT-1d.json", folder)
    return folder / "BTC_USDT-1d.json"


def test_truncated_json_is_reported(data_dir: Path, tmp_path: Path) -> None:
    path = spot_copy(data_dir, tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataSourceError, match=r"BTC_USDT-1d\.json: malformed or truncated JSON"):
        RecordedMarketData(tmp_path).ohlcv("BTC/USDT", "1d", ASOF, ASOF)


def test_wrong_array_width_is_reported(data_dir: Path, tmp_path: Path) -> None:
    path = spot_copy(data_dir, tmp_path)
    rows = json.loads(path.read_bytes())
    rows[7] = rows[7][:5]
    path.write_text(json.dumps(rows))
    with pytest.raises(DataSourceError, match="row 7 has 5 values, expected 6"):
        RecordedMarketData(tmp_path).ohlcv("BTC/USDT", "1d", ASOF, ASOF)


def test_string_value_in_json_is_reported(data_dir: Path, tmp_path: Path) -> None:
    path = spot_copy(data_dir, tmp_path)
    rows = json.loads(path.read_bytes())
    rows[3][4] = "4108.37"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataSourceError, match="non-numeric value"):
        RecordedMarketData(tmp_path).ohlcv("BTC/USDT", "1d", ASOF, ASOF)


def test_a_candle_file_is_parsed_once_per_process_and_again_when_it_changes(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptosmarttrader.adapters import recorded_data

    path = spot_copy(data_dir, tmp_path)
    parsed: list[Path] = []
    parse = recorded_data._parse_ohlcv_file

    def counting(p: Path, symbol: str) -> pl.DataFrame:
        parsed.append(p)
        return parse(p, symbol)

    monkeypatch.setattr(recorded_data, "_parse_ohlcv_file", counting)
    # Given two readers of the same data (a warm Lambda's next invocation, another command)
    first = RecordedMarketData(tmp_path).ohlcv("BTC/USDT", "1d", ASOF - timedelta(days=9), ASOF)
    again = RecordedMarketData(tmp_path).ohlcv("BTC/USDT", "1d", ASOF - timedelta(days=9), ASOF)
    # Then the file was parsed once and both read the same bars
    assert parsed == [path] and again.equals(first)
    # When the file is replaced by one of the same size and timestamp (one volume altered,
    # same number of digits; written beside it and renamed over it, as a data refresh does)
    body = path.read_bytes()
    volume = repr(float(first["volume"][-1])).encode()
    assert body.count(volume) == 1
    altered = volume.replace(volume[:1], b"9" if volume[:1] != b"9" else b"8", 1)
    stat = path.stat()
    fresh = path.with_suffix(".new")
    fresh.write_bytes(body.replace(volume, altered))
    os.utime(fresh, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fresh.replace(path)
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    # Then the next read parses it again and sees the new value
    changed = RecordedMarketData(tmp_path).ohlcv("BTC/USDT", "1d", ASOF - timedelta(days=9), ASOF)
    assert len(parsed) == 2
    assert changed["volume"][-1] == float(altered) != first["volume"][-1]


def test_a_candle_file_read_through_symlinks_is_parsed_once_and_a_replaced_link_again(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptosmarttrader.adapters import recorded_data

    path = spot_copy(data_dir, tmp_path / "original")
    parsed: list[Path] = []
    parse = recorded_data._parse_ohlcv_file

    def counting(p: Path, symbol: str) -> pl.DataFrame:
        parsed.append(p)
        return parse(p, symbol)

    monkeypatch.setattr(recorded_data, "_parse_ohlcv_file", counting)
    window = (ASOF - timedelta(days=9), ASOF)
    # Given the file read from its own folder, then from a data dir of symlinks to it
    first = RecordedMarketData(tmp_path / "original").ohlcv("BTC/USDT", "1d", *window)
    linked = tmp_path / "linked" / "binance_spot" / "1d" / path.name
    linked.parent.mkdir(parents=True)
    linked.symlink_to(path)
    again = RecordedMarketData(tmp_path / "linked").ohlcv("BTC/USDT", "1d", *window)
    # Then it was parsed once and both read the same bars
    assert parsed == [path] and again.equals(first)
    # When the link is replaced by a file of its own (an altered copy of the same size)
    body = path.read_bytes()
    volume = repr(float(first["volume"][-1])).encode()
    altered = volume.replace(volume[:1], b"9" if volume[:1] != b"9" else b"8", 1)
    linked.unlink()
    linked.write_bytes(body.replace(volume, altered))
    # Then that path is parsed again and serves its own bars, and the original keeps its own
    changed = RecordedMarketData(tmp_path / "linked").ohlcv("BTC/USDT", "1d", *window)
    assert parsed == [path, linked]
    assert changed["volume"][-1] == float(altered) != first["volume"][-1]
    original = RecordedMarketData(tmp_path / "original").ohlcv("BTC/USDT", "1d", *window)
    assert original.equals(first) and len(parsed) == 2


def test_a_window_of_a_candle_file_is_checked_once_per_version_and_a_rejected_one_every_time(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptosmarttrader.adapters import recorded_data

    path = spot_copy(data_dir, tmp_path / "good")
    checked: list[tuple[int, int]] = []
    check = recorded_data.check_ohlcv

    def counting(window: pl.DataFrame, *args: object, **kwargs: object) -> object:
        checked.append((int(window["ts"].min()), int(window["ts"].max())))  # type: ignore[arg-type]
        return check(window, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(recorded_data, "check_ohlcv", counting)
    week, fortnight = (ASOF - timedelta(days=6), ASOF), (ASOF - timedelta(days=13), ASOF)
    # Given a window read twice (the next day of a replay, a warm Lambda's next scan), once
    # more as the venue's candles (the same file), and another window of the same file
    market = RecordedMarketData(tmp_path / "good")
    first = market.ohlcv("BTC/USDT", "1d", *week)
    again = RecordedMarketData(tmp_path / "good").ohlcv("BTC/USDT", "1d", *week)
    venue = market.venue_ohlcv("binance", "BTC/USDT", "1d", *week)
    longer = market.ohlcv("BTC/USDT", "1d", *fortnight)
    # Then each window was checked once, and every reader got the same bars in its own frame
    assert len(checked) == 2 and first.height == 7 and longer.height == 14
    assert again.equals(first) and venue.equals(first) and again is not first
    # When the file is rewritten (one volume of the window altered)
    body = path.read_bytes()
    volume = repr(float(first["volume"][-1])).encode()
    assert body.count(volume) == 1
    altered = volume.replace(volume[:1], b"9" if volume[:1] != b"9" else b"8", 1)
    path.write_bytes(body.replace(volume, altered))
    # Then the window is checked again and serves the new bar
    changed = market.ohlcv("BTC/USDT", "1d", *week)
    assert len(checked) == 3 and changed["volume"][-1] == float(altered)

    # Given a file with a negative low inside the window
    bad = spot_copy(data_dir, tmp_path / "bad")
    rows = json.loads(bad.read_bytes())
    (index,) = [i for i, r in enumerate(rows) if r[0] == ms_from_utc(ASOF - timedelta(days=2))]
    rows[index][3] = -1.0
    bad.write_text(json.dumps(rows))
    # Then every read of that window is checked and refused, never served from a cache
    for _ in range(2):
        with pytest.raises(DataSourceError, match="BTC/USDT"):
            RecordedMarketData(tmp_path / "bad").ohlcv("BTC/USDT", "1d", *week)
    assert len(checked) == 5


def test_the_checked_windows_kept_for_a_file_never_hold_more_bars_than_the_file(
    data_dir: Path, tmp_path: Path
) -> None:
    from cryptosmarttrader.adapters import recorded_data

    path = spot_copy(data_dir, tmp_path)
    market = RecordedMarketData(tmp_path)
    # Given a replay that asks for a year of daily bars ending on each of 200 days (each window
    # asked once: a long backtest's lookbacks, a report's spans)
    for day in range(200):
        end = ASOF - timedelta(days=day)
        assert market.ohlcv("BTC/USDT", "1d", end - timedelta(days=364), end).height == 365
    # Then the windows kept with the file hold at most as many bars as the file itself (a few
    # hundred small windows, or a few long ones), not 200 copies of most of it
    st = path.stat()
    entry = recorded_data._PARSED[(st.st_dev, st.st_ino, "BTC/USDT")]
    kept = sum(window.height for window in entry.windows.values())
    assert 0 < kept <= entry.frame.height, (kept, entry.frame.height, len(entry.windows))
    # and the last window asked is kept
    last = ASOF - timedelta(days=199)
    assert (
        entry.windows[("1d", ms_from_utc(last - timedelta(days=364)), ms_from_utc(last))].height
        == 365
    )


def test_the_coingecko_set_is_read_once_per_process_and_again_when_a_file_changes(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_coins(data_dir, tmp_path, ("bitcoin", "ethereum"))
    reads: list[int] = []
    read_csv = pl.read_csv

    def counting(*args: object, **kwargs: object) -> pl.DataFrame:
        reads.append(1)
        return read_csv(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl, "read_csv", counting)
    # Given two readers of the same folder (a replay's scan and its execution cycle)
    first = RecordedMarketData(root).daily_universe(ASOF, 10)
    again = RecordedMarketData(root).daily_universe(ASOF, 10)
    # Then the CSVs were read once and both see the same rows
    assert len(reads) == 1 and again.equals(first)
    # When a file is replaced by one of the same size and modification time (a price altered,
    # written beside it and renamed over it, as a data refresh does)
    path = root / "coingecko_daily" / "coins" / "bitcoin.csv"
    body = path.read_bytes()
    price = repr(float(first.filter(pl.col("symbol") == "bitcoin")["close"][-1])).encode()
    assert body.count(price) == 1
    altered = price.replace(price[:1], b"9" if price[:1] != b"9" else b"8", 1)
    stat = path.stat()
    fresh = path.with_suffix(".new")
    fresh.write_bytes(body.replace(price, altered))
    os.utime(fresh, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fresh.replace(path)
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    # Then the next reader reads the folder again and sees the new price
    changed = RecordedMarketData(root).daily_universe(ASOF, 10)
    assert len(reads) == 2
    bitcoin = changed.filter(pl.col("symbol") == "bitcoin")["close"][-1]
    assert bitcoin == float(altered) != first.filter(pl.col("symbol") == "bitcoin")["close"][-1]
