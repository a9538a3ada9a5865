"""Kraken quotes its liquid book in USD, Binance and KuCoin in USDT: the deployed arbitrage
agent converts Kraken's USD close with Kraken's own ``USDT/USD`` candle of the same hour, and
never compares a USD price with a USDT price as if equal.

The deployed scan's reader (``wiring.lake_agent_data``) reads the in-memory lake
(``tests/fakes.py``, held to the S3 adapter by ``test_lake_contract.py``); the candles are
hand-written (the conversion's arithmetic is what is checked, as in the agent's unit tests: no
Kraken history is recorded). The ingest side runs the deployed ingest handler with Kraken's
scheduled hourly event on moto (the handler as deployed: its event, wiring and resources).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import polars as pl
import pytest
import time_machine

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.lake_agent_data import LakeAgentData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.agents.arbitrage import ArbitrageConfig, arbitrage_votes
from cryptosmarttrader.domain.market import OHLCV_SCHEMA
from cryptosmarttrader.domain.types import Symbol, ms_from_utc
from cryptosmarttrader.settings import AwsResources
from cryptosmarttrader.wiring import lake_agent_data
from infra.config import DeploymentConfig
from tests.fakes import InMemoryAgentInputs, InMemoryLake
from tests.support.aws import moto_stack

HOUR = 3_600_000
BAR = datetime(2024, 3, 14, 22, tzinfo=UTC)  # the last hour closed by the decision
ASOF = ms_from_utc(BAR) + HOUR + 30_000  # 23:00:30, 30 s after that candle closed
UNIVERSE = pl.DataFrame({"symbol": ["BTC/USDT"], "ts": [ASOF - HOUR]})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    from cryptosmarttrader.handlers import _common

    env = {"CST_DATA_SOURCE": "ccxt", "POWERTOOLS_TRACE_DISABLED": "true"}
    _common.reset_caches()
    with moto_stack(monkeypatch, env=env) as clients:
        yield clients
    _common.reset_caches()


@pytest.fixture
def lake() -> InMemoryLake:
    return InMemoryLake()


def _candle(
    lake: InMemoryLake, exchange: str, symbol: str, close: float, at: datetime = BAR
) -> None:
    frame = pl.DataFrame(
        [(symbol, ms_from_utc(at), close, close, close, close, 10.0)],
        schema=OHLCV_SCHEMA,
        orient="row",
    )
    lake.write_candles(frame, exchange, "1h")


def _reader(lake: InMemoryLake) -> LakeAgentData:
    """The deployed scan's reader, its lake (never called here) swapped for the in-memory one."""
    deployed = lake_agent_data(cast(Any, None), AwsResources(), "binance")
    return replace(deployed, lake=lake, inputs=InMemoryAgentInputs())


def _state(lake: InMemoryLake) -> Any:
    return _reader(lake).state(UNIVERSE, ASOF)


def test_kraken_usd_close_is_converted_with_its_usdt_usd_candle_of_the_same_hour(
    lake: InMemoryLake,
) -> None:
    # Given BTC at 64,000 USDT on Binance and 64,192 USD on Kraken, where 1 USDT = 1.003 USD
    _candle(lake, "binance", "BTC/USDT", 64_000.0)
    _candle(lake, "kraken", "BTC/USD", 64_192.0)
    _candle(lake, "kraken", "USDT/USD", 1.003)

    # When the deployed scan's agents read the lake as of 23:00:30
    state = _state(lake)

    # Then Kraken's quote is its USD close in USDT (64,192 / 1.003 = 64,000): no spread
    kraken = state.tickers.filter(pl.col("exchange") == "kraken").to_dicts()
    assert kraken == [
        {"exchange": "kraken", "symbol": "BTC/USDT", "bid": pytest.approx(64_000.0),
         "ask": pytest.approx(64_000.0), "ts": ms_from_utc(BAR) + HOUR}
    ]  # fmt: skip
    # and the agent sees no deviation: a neutral vote (taken as equal, 64,192 would be 0.3 %
    # above Binance, beyond its 0.1 % fee: a bullish tilt that does not exist)
    votes = arbitrage_votes(["BTC/USDT"], ASOF, state.tickers, ArbitrageConfig())
    (row,) = votes.iter_rows(named=True)
    assert row["abstain_reason"] is None
    assert row["probability"] == pytest.approx(0.5) and row["confidence"] == pytest.approx(0.0)


@pytest.mark.parametrize("rate_at", [None, datetime(2024, 3, 14, 21, tzinfo=UTC)])
def test_without_the_same_hours_rate_kraken_is_not_compared_and_says_why(
    lake: InMemoryLake, rate_at: datetime | None
) -> None:
    # Given Kraken's USD close but no USDT/USD candle of that hour (none, or the hour before)
    _candle(lake, "binance", "BTC/USDT", 64_000.0)
    _candle(lake, "kucoin", "BTC/USDT", 64_010.0)
    _candle(lake, "kraken", "BTC/USD", 64_064.0)
    if rate_at is not None:
        _candle(lake, "kraken", "USDT/USD", 1.001, at=rate_at)

    # When the deployed scan's agents read the lake
    state = _state(lake)

    # Then Kraken's USD price is not taken for a USDT one: it is left out, with the reason
    assert set(state.tickers["exchange"]) == {"binance", "kucoin"}
    votes = arbitrage_votes(["BTC/USDT"], ASOF, state.tickers, ArbitrageConfig())
    assert votes["abstain_reason"].to_list() == [None]  # Binance and KuCoin still compare

    _candle(lake, "kucoin", "BTC/USDT", 64_010.0, at=datetime(2024, 3, 13, tzinfo=UTC))
    lone = replace(_reader(lake), venues=("binance", "kraken"))
    assert lone.state(UNIVERSE, ASOF).abstain_notes["arbitrage"]["BTC/USDT"] == (
        "no quote to compare (kraken: no USDT/USD candle of the same hour in the lake to "
        "convert its USD price into USDT (a USD price is never taken for a USDT one))"
    )


PEG = 1.0001  # USDT/USD closes repeat for hours (hand-written: no Kraken history is recorded)


@dataclass
class Recording:
    """The exchange the ingest asks: records which pairs it was asked; answers USDT/USD with the
    12 hourly candles before the run, all closing at the peg, and nothing for the others."""

    asked: list[str] = field(default_factory=list)

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        self.asked.append(symbol.value)
        if symbol.value != "USDT/USD":
            return pl.DataFrame(schema=OHLCV_SCHEMA)
        first = ms_from_utc(BAR) - 11 * HOUR
        rows = [("USDT/USD", first + i * HOUR, PEG, PEG, PEG, PEG, 1e6) for i in range(12)]
        return pl.DataFrame(rows, schema=OHLCV_SCHEMA, orient="row")


def test_krakens_hourly_ingest_adds_its_usdt_usd_market_to_its_universe(
    aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Kraken's stored USD universe and Kraken's scheduled hourly event
    from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
    from cryptosmarttrader.handlers import ingest
    from cryptosmarttrader.services.agent_ingest import UNIVERSE_PK

    DynamoStateStore(AwsResources().state_table, aws.dynamodb).put(
        UNIVERSE_PK,
        "kraken",
        {"pairs": ["BTC/USD", "ETH/USD"], "selected_at": BAR.isoformat(), "quote": "USD",
         "min_quote_volume_usd": "1000000.0", "max_pairs": 100},
    )  # fmt: skip
    (rule,) = [s for s in DeploymentConfig().ingest_schedules if s.exchange == "kraken"]
    exchange = Recording()
    monkeypatch.setattr(ingest, "_source", lambda name: exchange)

    # When the rule fires
    fired = BAR.replace(hour=23, minute=3)
    with time_machine.travel(fired, tick=False), redirect_stdout(io.StringIO()):
        result = ingest.handler(rule.event(), _Context())

    # Then the universe's pairs and Kraken's USDT/USD rate are ingested, the peg's 12 identical
    # closes kept (for a coin, 10 identical closes in a row reject the batch as a frozen feed)
    assert result["status"] == "ok"
    assert exchange.asked == ["BTC/USD", "ETH/USD", "USDT/USD"]
    assert result["report"]["usdt_rate"]["ingested"] == 12, result["report"]["usdt_rate"]
    lake = S3ParquetLake(AwsResources().lake_bucket, aws.s3)
    stored = lake.read_candles("kraken", "1h", "USDT/USD", BAR - timedelta(hours=11), BAR)
    assert stored["close"].to_list() == [PEG] * 12


@dataclass
class _Context:
    function_name: str = "cst-ingest"
    aws_request_id: str = "req-kraken"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-ingest"
