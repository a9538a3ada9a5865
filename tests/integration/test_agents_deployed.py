"""The deployed path of the agents' inputs: the scheduled ingest events (universe by liquidity
floor, funding and mark, sentiment, candles) fill the lake from the recorded exchange standing
in for ccxt, and the scan Lambda's agents read them from the lake as of the decision.

Handlers run in-process against moto with the events the deployed rules send
(``infra.config``); the process clock is moved to each rule's minute on 2021-11-12, a day inside
every recorded source (Binance and KuCoin hourly, BTC funding and mark, Fear & Greed).
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.local_aws import ensure_resources
from cryptosmarttrader.settings import AwsResources
from infra.config import DeploymentConfig

pytestmark = [pytest.mark.realdata]

DAY = datetime(2021, 11, 12, tzinfo=UTC)
CONFIG = DeploymentConfig()


@dataclass
class Context:
    function_name: str
    aws_request_id: str = "req-agents"
    memory_limit_in_mb: int = 1024

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"


def _forget() -> None:
    from cryptosmarttrader.handlers import _common, ingest, scan

    _common.reset_caches()
    scan._service.cache_clear()
    ingest._source.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[AwsClients]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CST_EXCHANGE": "binance",
        "CST_STAGE": "staging",
        "CST_DATA_DIR": str(data_dir),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "CST_ALLOW_REPLAYS", "CST_MODEL_DIR"):
        monkeypatch.delenv(key, raising=False)
    _forget()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        yield clients
    _forget()


def _invoke(module: str, event: dict[str, Any], source: str) -> dict[str, Any]:
    """The deployed function: the ingest reads the recording (the offline exchange), the scan
    reads the lake (``CST_DATA_SOURCE=ccxt``, as deployed)."""
    import os

    os.environ["CST_DATA_SOURCE"] = source
    _forget()
    handler = importlib.import_module(f"cryptosmarttrader.handlers.{module}").handler
    with redirect_stdout(io.StringIO()):
        result = handler(event, Context(f"cst-{module}"))
    assert result["status"] == "ok", result
    return dict(result["report"])


def _ingest(event: dict[str, Any]) -> dict[str, Any]:
    return _invoke("ingest", event, "recorded")


def test_scheduled_ingest_feeds_every_agent_of_the_deployed_scan(stack: AwsClients) -> None:
    (universe_rule,) = [u for u in CONFIG.universes if u.exchange == "binance"]
    kucoin_rule = next(u for u in CONFIG.universes if u.exchange == "kucoin")
    assert CONFIG.funding is not None and CONFIG.sentiment is not None
    with time_machine.travel(DAY - timedelta(minutes=10), tick=False) as clock:
        # 23:50 the universe rules: every recorded USDT pair above the liquidity floor
        # (the five most liquid pairs keep the test fast; the rule's floor is the deployed one)
        binance = _ingest({**universe_rule.event(), "max_pairs": 5})
        kucoin = _ingest({**kucoin_rule.event(), "max_pairs": 5})
        assert "BTC/USDT" in binance["pairs"] and "BTC/USDT" in kucoin["pairs"]
        assert binance["excluded_reasons"]["beyond the 5 most liquid pairs"] > 0, binance
        assert binance["min_quote_volume_usd"] == universe_rule.min_quote_volume_usd
        # 23:55 the market caps of the universe's coins; 00:02-00:05 the candle rules' events,
        # without symbols: the stored universe
        assert CONFIG.market_caps is not None
        clock.move_to(DAY - timedelta(minutes=5))
        assert _ingest(CONFIG.market_caps.event())["ingested"] > 0
        clock.move_to(DAY + timedelta(minutes=2))
        for schedule in CONFIG.ingest_schedules:
            if schedule.exchange == "kraken":
                continue  # not recorded
            # the rule's event; a new series loads ~a year of daily bars, two days of hourly
            bars = 300 if schedule.timeframe == "1d" else 48
            report = _ingest({**schedule.event(), "initial_lookback_bars": bars})
            assert report["ingested"] > 0, report
            names = {s["symbol"] for s in report["symbols"]}
            expected = binance["pairs"] if schedule.exchange == "binance" else kucoin["pairs"]
            assert names == set(expected)
        # 00:07 funding and mark of the pairs with a perpetual; the sentiment index
        clock.move_to(DAY + timedelta(minutes=7))
        funding = _ingest(CONFIG.funding.event())
        assert funding["perpetuals"] >= 1 and funding["ingested"] > 0, funding
        btc = next(o for o in funding["funding"] if o["symbol"] == "BTC/USDT")
        assert btc["status"] == "ok" and btc["watermark_ms"] <= int(
            datetime.now(UTC).timestamp() * 1000
        )
        assert funding["mark"]["ingested"] > 0
        sentiment = _ingest(CONFIG.sentiment.event())
        assert sentiment["ingested"] > 0 and sentiment["watermark_ms"] <= int(
            DAY.timestamp() * 1000
        )
        # a rerun of the same minute writes nothing new (watermarks, idempotent merge)
        again = _ingest(CONFIG.funding.event())
        assert again["ingested"] == 0
        assert _ingest(CONFIG.sentiment.event())["status"] == "up_to_date"

        # 00:15 the scan rule's event: the agents read the lake as of the decision
        clock.move_to(DAY + timedelta(minutes=15))
        scan = _invoke("scan", CONFIG.scan.event(), "ccxt")
    agents = scan["agents"]
    for name in ("technical", "funding", "arbitrage", "sentiment", "liquidity"):
        assert agents[name]["votes"] >= 1, (name, agents[name])
    # the early mover needs the cap keyed at the decision's midnight, which the 23:55 run of
    # the day before cannot hold yet: it abstains, saying so
    assert set(agents["early_mover"]["abstention_reasons"]) == {
        "market cap unknown at the as-of date: size cannot be judged"
    }
    # the regime needs 200 days of the market-cap index; one day of caps is in the lake
    assert all("insufficient market history" in w for w in agents["regime"]["abstention_reasons"])
    # every funding abstention says why (no perpetual for that pair in the lake)
    assert all("perpetual" in why for why in agents["funding"]["abstention_reasons"])
    # no promoted model in the registry: said in the basis and on every row
    assert scan["decision_basis"].startswith("no promoted model: technical agent only")
    assert scan["rows"] and all(
        any(r.startswith("no promoted model") for r in row["reasons"]) for row in scan["rows"]
    )
