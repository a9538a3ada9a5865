"""A new live deployment backfills the market-cap history the regime needs.

The market-cap run gives every coin seen for the first time ``Backfill.days`` of CoinGecko
history (``/coins/{id}/market_chart``), largest coins first, throttled under CoinGecko's rate
limit, through the same gate into the same lake layout (moto S3); a coin is marked done only
after its rows are in the lake, so a rerun fetches nothing and a failed coin is taken up again.

Payloads: tests/fixtures/coingecko (the 2023-12-31 ``/coins/markets`` answer and the 300-day
``market_chart`` answers, every value a recorded CoinGecko value, see the README there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.coingecko_market_caps import (
    CoinGeckoMarketCaps,
    CoinGeckoMarketHistory,
    parse_market_chart,
)
from cryptosmarttrader.adapters.s3_market_caps import S3MarketCapLake
from cryptosmarttrader.domain.agents.registry import MarketState, detect_regime
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.coins import MarketCapSourceError
from cryptosmarttrader.domain.market import DAILY_SCHEMA
from cryptosmarttrader.services.market_caps import BACKFILL_PK, Backfill, MarketCapIngestService

FIXTURES = Path(__file__).parents[1] / "fixtures" / "coingecko"
NOW = datetime(2023, 12, 31, 0, 10, tzinfo=UTC)  # the snapshot's fetch time
SNAPSHOT_MS = 1_703_980_800_000  # 2023-12-31 00:00 UTC
PAIRS = ["BTC/USDT", "DOGE/USDT", "ETH/USDT", "SOL/USDT"]
CHARTED = ("bitcoin", "ethereum", "solana", "dogecoin")  # the snapshot's cap order
BUCKET = "caps-lake"


class Memory:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.items.get((pk, sk))

    def put(self, pk: str, sk: str, item: dict[str, Any]) -> None:
        self.items[(pk, sk)] = item


class Metrics:
    def add(self, name: str, value: float, dimensions: Any = None) -> None:
        pass


class CoinGecko:
    """Serves the recorded answers by URL; ``fail`` maps a coin to the errors it raises first."""

    def __init__(self, fail: dict[str, list[MarketCapSourceError]] | None = None) -> None:
        self.urls: list[str] = []
        self.fail = fail or {}

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if "/coins/markets" in url:
            return (FIXTURES / "coins_markets_usd_2023-12-31.json").read_bytes()
        coin = re.search(r"/coins/([^/]+)/market_chart", url)
        assert coin is not None, url
        if self.fail.get(coin[1]):
            raise self.fail[coin[1]].pop(0)
        path = FIXTURES / f"market_chart_{coin[1]}_usd_300d_2023-12-31.json"
        if not path.is_file():
            raise MarketCapSourceError(f"/coins/{coin[1]}/market_chart: HTTP 404", retryable=False)
        return path.read_bytes()

    def history_calls(self) -> int:
        return sum("market_chart" in u for u in self.urls)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3MarketCapLake]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield S3MarketCapLake(BUCKET, s3)


def _service(
    lake: S3MarketCapLake, web: CoinGecko, state: Memory, clock: Clock, max_coins: int = 30
) -> MarketCapIngestService:
    return MarketCapIngestService(
        CoinGeckoMarketCaps(lambda: NOW, get=web),
        lake,
        Metrics(),  # type: ignore[arg-type]
        FixedClock(NOW),
        history=CoinGeckoMarketHistory(
            get=web, min_interval_s=6.0, sleep=clock.sleep, monotonic=clock.monotonic
        ),
        state=state,  # type: ignore[arg-type]
        backfill=Backfill(days=300, max_coins=max_coins),
    )


def _csv(data_dir: Path, coin: str) -> pl.DataFrame:
    return pl.read_csv(data_dir / "coingecko_daily" / "coins" / f"{coin}.csv")


def _universe(lake: S3MarketCapLake) -> pl.DataFrame:
    """The coins' daily frame: lake caps beside CoinGecko's own recorded prices and volumes."""
    caps = lake.read_market_caps(CHARTED, NOW - timedelta(days=400), NOW)
    frames = []
    for coin in CHARTED:
        chart = json.loads((FIXTURES / f"market_chart_{coin}_usd_300d_2023-12-31.json").read_text())
        frames.append(
            pl.DataFrame(
                {
                    "symbol": coin,
                    "ts": [ts for ts, _ in chart["prices"]],
                    "close": [float(p) for _, p in chart["prices"]],
                    "volume": [float(v) for _, v in chart["total_volumes"]],
                }
            )
        )
    prices = pl.concat(frames)
    return (
        prices.join(caps.rename({"coin": "symbol"}), on=["symbol", "ts"], how="inner")
        .select(list(DAILY_SCHEMA))
        .cast(pl.Schema(DAILY_SCHEMA))
        .sort("symbol", "ts")
    )


def test_a_new_stack_backfills_300_days_so_the_first_scan_detects_a_regime(
    lake: S3MarketCapLake, data_dir: Path
) -> None:
    # Given a brand-new stack: the lake and the backfill state are empty
    web, state, clock = CoinGecko(), Memory(), Clock()
    # and, without a backfill, the snapshot alone leaves the regime without its history
    MarketCapIngestService(
        CoinGeckoMarketCaps(lambda: NOW, get=web),
        lake,
        Metrics(),
        FixedClock(NOW),  # type: ignore[arg-type]
    ).run("binance", PAIRS, lookback_days=1)
    alone = detect_regime(MarketState(universe=_universe(lake)), SNAPSHOT_MS)
    assert alone.regime is None, alone  # "no market index value on the as-of day"

    # When the first market-cap run of the stack runs with the backfill
    report = _service(lake, web, state, clock).run("binance", PAIRS, lookback_days=1)

    # Then every coin got its 300 days, largest cap first, each value exactly as recorded
    assert report.backfilled == list(CHARTED)
    assert report.backfill_pending == []
    assert report.backfill_ingested == 4 * 300
    charts = [u for u in web.urls if "market_chart" in u]
    assert [re.search(r"/coins/([^/]+)/", u)[1] for u in charts] == list(CHARTED)  # type: ignore[index]
    assert all("vs_currency=usd" in u and "days=300" in u and "interval=daily" in u for u in charts)
    stored = lake.read_market_caps(["bitcoin"], NOW - timedelta(days=400), NOW)
    recorded = _csv(data_dir, "bitcoin").filter(pl.col("timestamp").is_in(stored["ts"].to_list()))
    assert stored.height == 300
    assert stored["market_cap"].to_list() == recorded["market_cap"].to_list()
    # and the calls were spaced under CoinGecko's rate limit (one every 6 s)
    assert clock.sleeps == [6.0, 6.0, 6.0]
    # and each coin is marked done with what was loaded
    assert state.get(BACKFILL_PK, "bitcoin")["rows"] == 300  # type: ignore[index]
    # and the first scan of the stack detects a regime over the backfilled market index
    reading = detect_regime(MarketState(universe=_universe(lake)), SNAPSHOT_MS)
    assert reading.regime is not None, reading.reason


def test_a_rerun_fetches_no_history_and_writes_nothing(lake: S3MarketCapLake) -> None:
    web, state, clock = CoinGecko(), Memory(), Clock()
    _service(lake, web, state, clock).run("binance", PAIRS, lookback_days=1)
    calls = web.history_calls()

    again = _service(lake, web, state, clock).run("binance", PAIRS, lookback_days=1)

    assert web.history_calls() == calls
    assert again.backfilled == [] and again.backfill_ingested == 0
    assert again.objects_written == 0


def test_the_backfill_takes_the_largest_coins_first_and_the_rest_on_the_next_run(
    lake: S3MarketCapLake,
) -> None:
    web, state, clock = CoinGecko(), Memory(), Clock()

    first = _service(lake, web, state, clock, max_coins=2).run("binance", PAIRS, lookback_days=1)
    second = _service(lake, web, state, clock, max_coins=2).run("binance", PAIRS, lookback_days=1)

    assert first.backfilled == ["bitcoin", "ethereum"]
    assert first.backfill_pending == ["solana", "dogecoin"]
    assert second.backfilled == ["solana", "dogecoin"] and second.backfill_pending == []


def test_a_rate_limited_coin_is_retried_with_longer_waits_then_left_for_the_next_run(
    lake: S3MarketCapLake,
) -> None:
    limited = MarketCapSourceError("/coins/solana/market_chart: HTTP 429", retryable=True)
    web = CoinGecko(fail={"solana": [limited] * 4, "ethereum": [limited]})
    state, clock = Memory(), Clock()

    report = _service(lake, web, state, clock).run("binance", PAIRS, lookback_days=1)

    # ethereum: one 429, then served after a doubled wait; solana: 429 on every try
    assert report.backfilled == ["bitcoin", "ethereum", "dogecoin"]
    assert report.backfill_pending == ["solana"]
    assert state.get(BACKFILL_PK, "solana") is None
    assert {
        "coin": "solana",
        "ts": None,
        "reason": "backfill: unavailable: /coins/solana/market_chart: HTTP 429",
    } in report.rejections
    assert 12.0 in clock.sleeps and 48.0 in clock.sleeps  # 6 s x 2, x 4, x 8
    # and the next run takes it up (the source answers again)
    again = _service(lake, web, state, clock).run("binance", PAIRS, lookback_days=1)
    assert again.backfilled == ["solana"]


def test_a_coin_without_history_is_reported_and_a_bad_payload_names_the_field() -> None:
    bad = parse_market_chart(b'{"market_caps": [[1703980800000, "1e9"]]}', "bitcoin")
    assert bad.frame.is_empty()
    ((coin, reason),) = bad.rejected
    assert coin == "bitcoin" and reason.startswith("invalid_payload: market_chart market_caps.0.1")
    # the trailing point stamped at the request's moment is dropped; the midnights are kept
    body = json.dumps({"market_caps": [[SNAPSHOT_MS, 8.3e11], [SNAPSHOT_MS + 37_000, 8.4e11]]})
    kept = parse_market_chart(body.encode(), "bitcoin").frame
    assert kept["ts"].to_list() == [SNAPSHOT_MS]


def test_coins_beyond_the_runs_time_budget_are_deferred_to_the_next_run(
    lake: S3MarketCapLake,
) -> None:
    web, state, clock = CoinGecko(), Memory(), Clock()
    service = MarketCapIngestService(
        CoinGeckoMarketCaps(lambda: NOW, get=web),
        lake,
        Metrics(),  # type: ignore[arg-type]
        FixedClock(NOW),
        history=CoinGeckoMarketHistory(
            get=web, min_interval_s=6.0, sleep=clock.sleep, monotonic=clock.monotonic, budget_s=10
        ),
        state=state,  # type: ignore[arg-type]
    )

    report = service.run("binance", PAIRS, lookback_days=1)

    # bitcoin at 0 s, ethereum at 6 s, solana started at 6 s (fetched at 12 s); at 12 s the
    # 10 s budget is spent: dogecoin waits for the next run
    assert report.backfilled == ["bitcoin", "ethereum", "solana"]
    assert report.backfill_pending == ["dogecoin"]
    assert any(
        r["coin"] == "dogecoin" and r["reason"].startswith("backfill: deferred")
        for r in report.rejections
    )
