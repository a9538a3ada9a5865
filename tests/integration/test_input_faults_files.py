"""Silently accepted input is gone: an empty candle file, bars 30 minutes off the grid (a
time-zone error), fractional or implausible timestamps and rows out of order each produce a
quality finding with a reason, in the recorded-data loader, the ingest service (lake) and
`cst data check`. Real recorded Binance files, damaged the way files get damaged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.recorded_data import DataSourceError, RecordedMarketData
from cryptosmarttrader.cli.data import app as data_app
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.market import OHLCV_SCHEMA
from cryptosmarttrader.services.ingest import (
    REJECTIONS_PK,
    IngestConfig,
    IngestService,
    MarketDataReplaySource,
)
from tests.fakes import InMemoryLake, InMemoryStateStore

pytestmark = pytest.mark.realdata

H = 3_600_000
FIRST = 1_609_459_200_000  # 2021-01-01T00:00Z
LAST = FIRST + 10 * 24 * H  # ten days of hourly bars per damaged file
AT = datetime(2021, 1, 11, 1, tzinfo=UTC)


def strict_json(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _rows(data_dir: Path, base: str) -> list[list[float]]:
    rows = json.loads((data_dir / "binance_spot" / "1h" / f"{base}_USDT-1h.json").read_bytes())
    return [r for r in rows if FIRST <= r[0] < LAST]


def _dump(rows: list[list[float]]) -> str:
    return "[" + ",\n".join(json.dumps(r) for r in rows) + "]"


def damaged_files(data_dir: Path) -> dict[str, tuple[str, str]]:
    """base → (file text, the finding it must produce)."""
    shifted = [[r[0] + 30 * 60_000, *r[1:]] for r in _rows(data_dir, "SOL")]  # a +00:30 zone
    fractional = [list(r) for r in _rows(data_dir, "ADA")]
    fractional[5][0] += 0.5
    seconds = [list(r) for r in _rows(data_dir, "XRP")]
    seconds[3][0] //= 1000  # one timestamp in seconds
    unordered = _rows(data_dir, "DOGE")
    unordered[10], unordered[11] = unordered[11], unordered[10]
    return {
        "ETH": ("[]", "EMPTY"),
        "SOL": (_dump(shifted), "MISALIGNED"),
        "ADA": (_dump(fractional), "BAD_TIMESTAMP"),
        "XRP": (_dump(seconds), "BAD_TIMESTAMP"),
        "DOGE": (_dump(unordered), "UNORDERED"),
        "LINK": ("[[1609459200000, 1.0, 2.0", "UNREADABLE"),
    }


@pytest.fixture(scope="module")
def damaged(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir: real CoinGecko files and futures (links), hourly spot files of BTC (real,
    cut to the same ten days) and of the damaged pairs; no 1d/4h files."""
    root = tmp_path_factory.mktemp("damaged")
    coins = root / "coingecko_daily" / "coins"
    coins.mkdir(parents=True)
    for coin in ("bitcoin", "ethereum"):
        (coins / f"{coin}.csv").symlink_to(data_dir / "coingecko_daily" / "coins" / f"{coin}.csv")
    (root / "binance_futures").symlink_to(data_dir / "binance_futures")
    hourly = root / "binance_spot" / "1h"
    hourly.mkdir(parents=True)
    for tf in ("1d", "4h"):
        (root / "binance_spot" / tf).mkdir()
    (hourly / "BTC_USDT-1h.json").write_text(_dump(_rows(data_dir, "BTC")))
    for base, (text, _) in damaged_files(data_dir).items():
        (hourly / f"{base}_USDT-1h.json").write_text(text)
    return root


def test_data_check_reports_every_damaged_file_and_still_checks_the_others(
    data_dir: Path, damaged: Path
) -> None:
    # When the damaged dir is checked
    result = CliRunner().invoke(data_app, ["check", "--data", str(damaged), "--json"])
    # Then the check completes with strict JSON, one finding per damaged file, with a reason
    assert result.exit_code == 0, result.output
    report = strict_json(result.stdout)
    assert isinstance(report, dict)
    hourly = [f for f in report["findings"] if f["source"] == "binance_spot_1h"]
    by_pair = {}
    for f in hourly:
        by_pair.setdefault(f["symbol"], {})[f["code"]] = f
    for base, (_, code) in damaged_files(data_dir).items():
        finding = by_pair[f"{base}/USDT"][code]
        assert finding["reason"], finding
        assert finding["severity"] == ("warning" if code == "UNORDERED" else "error")
    assert "10 of" not in by_pair["SOL/USDT"]["MISALIGNED"]["reason"]
    assert "0:30" in by_pair["SOL/USDT"]["MISALIGNED"]["reason"]
    # and BTC, the intact file, is checked and kept
    summary = {s["source"]: s for s in report["sources"]}["binance_spot_1h"]
    excluded = {f["symbol"] for f in hourly if f["severity"] == "error"}
    assert "BTC/USDT" not in excluded and "DOGE/USDT" not in excluded
    assert summary["excluded"] == len(excluded) == 5


@pytest.mark.parametrize(("base", "code"), [("ETH", "EMPTY"), ("SOL", "MISALIGNED"),
                                            ("ADA", "BAD_TIMESTAMP"), ("XRP", "BAD_TIMESTAMP"),
                                            ("LINK", "UNREADABLE")])  # fmt: skip
def test_the_loader_refuses_the_damaged_file_with_its_finding(
    damaged: Path, base: str, code: str
) -> None:
    market = RecordedMarketData(damaged)
    with pytest.raises(DataSourceError, match=code) as err:
        market.ohlcv(f"{base}/USDT", "1h", datetime(2021, 1, 1, tzinfo=UTC), AT)
    assert f"{base}_USDT-1h.json" in str(err.value)


def test_the_loader_serves_out_of_order_rows_in_time_order(damaged: Path) -> None:
    frame = RecordedMarketData(damaged).ohlcv(
        "DOGE/USDT", "1h", datetime(2021, 1, 1, tzinfo=UTC), AT
    )
    assert frame["ts"].is_sorted() and frame.height == 240


def test_ingest_rejects_each_damaged_file_with_its_reason_and_writes_only_clean_series(
    data_dir: Path, damaged: Path
) -> None:
    # Given the damaged recorded files replayed as an exchange
    lake = InMemoryLake()
    state = InMemoryStateStore()
    service = IngestService(
        MarketDataReplaySource(RecordedMarketData(damaged)),
        lake,
        state,
        InMemoryMetrics(),
        FixedClock(AT),
        IngestConfig(initial_lookback_bars=None),
    )
    cases = damaged_files(data_dir)
    # When every pair is ingested
    report = service.run("binance", "1h", ["BTC/USDT", *(f"{b}/USDT" for b in cases)])
    out = {o.symbol: o for o in report.outcomes}
    # Then the intact series is in the lake, and each damaged file is rejected with its code
    assert out["BTC/USDT"].status == "ok" and out["BTC/USDT"].ingested == 240
    for base, (_, code) in cases.items():
        outcome = out[f"{base}/USDT"]
        if code == "UNORDERED":  # values intact: ingested, and the finding is reported
            assert outcome.status == "ok" and outcome.ingested == 240
            assert any("UNORDERED" in w for w in outcome.warnings)
            continue
        assert outcome.status == "rejected", (base, outcome)
        assert code in outcome.reason and code in outcome.rejected_codes
        assert not lake.days("binance", "1h", f"{base}/USDT")
        stored = [
            i["sk"]
            for i in state.query(REJECTIONS_PK)
            if i["sk"].startswith(f"binance#1h#{base}/USDT#")
        ]
        assert stored, base


class RawSource:
    """An exchange stand-in answering raw rows the way a client library hands them over."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def fetch_ohlcv(
        self, symbol: object, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        return self.frame


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("fractional", "BAD_TIMESTAMP"),
        ("seconds", "BAD_TIMESTAMP"),
        ("shifted", "MISALIGNED"),
    ],
)
def test_ingest_never_coerces_timestamps_from_an_exchange(
    data_dir: Path, change: str, code: str
) -> None:
    # Given real BTC/USDT hourly rows as an exchange client returns them (float timestamps)
    rows = _rows(data_dir, "BTC")
    frame = pl.DataFrame(
        [[r[0], *r[1:]] for r in rows],
        schema=["ts", "open", "high", "low", "close", "volume"],
        orient="row",
    ).with_columns(pl.lit("BTC/USDT").alias("symbol"), pl.col("ts").cast(pl.Float64))
    bad = pl.int_range(pl.len()) == 7
    ts = {
        "fractional": pl.when(bad).then(pl.col("ts") + 0.5).otherwise(pl.col("ts")),
        "seconds": pl.when(bad).then(pl.col("ts") // 1000).otherwise(pl.col("ts")),
        "shifted": pl.col("ts") + 30 * 60_000,
    }[change]
    frame = frame.with_columns(ts=ts).select(list(OHLCV_SCHEMA))
    lake = InMemoryLake()
    service = IngestService(
        RawSource(frame), lake, InMemoryStateStore(), InMemoryMetrics(), FixedClock(AT),
        IngestConfig(initial_lookback_bars=None),
    )  # fmt: skip
    # When ingested
    outcome = service.run("binance", "1h", ["BTC/USDT"]).outcomes[0]
    # Then nothing is written and the reason is stored
    assert outcome.status == "rejected", outcome
    assert code in outcome.rejected_codes
    assert not lake.days("binance", "1h", "BTC/USDT")


def test_data_check_reports_an_empty_and_an_unordered_coingecko_file(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given real CoinGecko files: one cut to its header, one with two rows swapped
    coins = tmp_path / "coingecko_daily" / "coins"
    coins.mkdir(parents=True)
    source = data_dir / "coingecko_daily" / "coins"
    (coins / "bitcoin.csv").symlink_to(source / "bitcoin.csv")
    header, *rows = (source / "ethereum.csv").read_text().splitlines()
    (coins / "ethereum.csv").write_text(header + "\n")
    rows[100], rows[101] = rows[101], rows[100]
    (coins / "litecoin.csv").write_text("\n".join([header, *rows]) + "\n")
    # When checked
    result = CliRunner().invoke(data_app, ["check", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    findings = [f for f in strict_json(result.stdout)["findings"] if f["source"] == "coingecko"]  # type: ignore[index]
    codes = {(f["symbol"], f["code"]): f["severity"] for f in findings}
    # Then the empty file is an error finding and the swapped rows a warning, with reasons
    assert codes[("ethereum", "EMPTY")] == "error"
    assert codes[("litecoin", "UNORDERED")] == "warning"
    assert ("bitcoin", "EMPTY") not in codes
