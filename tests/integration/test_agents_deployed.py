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
import os
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
from cryptosmarttrader.domain.agents.tally import AGENT_NAMES
from cryptosmarttrader.settings import AwsResources
from cryptosmarttrader.wiring import (
    ALLOW_TECHNICAL_ONLY_TRADING,
    NO_PROMOTED_MODEL,
    NO_PROMOTED_MODEL_TRADING,
)
from cst_devtools.local_aws import ensure_resources
from infra.config import DeploymentConfig
from tests.integration.test_agents_vote_realdata import bundle, fitted  # noqa: F401 - fixtures

pytestmark = [pytest.mark.realdata]

DAY = datetime(2021, 11, 12, tzinfo=UTC)
CONFIG = DeploymentConfig()
OPT_IN = ALLOW_TECHNICAL_ONLY_TRADING  # the deployment's opt-in to technical-only paper trades
# what ``_invoke`` sets on os.environ as a deployment's configuration would: cleared after each
# test (a leaked CST_UNIVERSE=all would widen every later scan of the worker)
DEPLOYMENT_ENV = (OPT_IN, "CST_MODEL_DIR", "CST_UNIVERSE")


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
    for key in ("AWS_ENDPOINT_URL", "CST_ALLOW_REPLAYS", *DEPLOYMENT_ENV):
        monkeypatch.delenv(key, raising=False)
    _forget()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        yield clients
    # ``_invoke`` sets these on os.environ as a deployment would: none may leak into later tests
    # of this worker (a leaked CST_MODEL_DIR would serve a model to every later scan)
    for key in DEPLOYMENT_ENV:
        os.environ.pop(key, None)
    _forget()


def _invoke(
    module: str, event: dict[str, Any], source: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The deployed function: the ingest reads the recording (the offline exchange), the scan
    reads the lake (``CST_DATA_SOURCE=ccxt``, as deployed); ``env`` adds what a deployment's
    configuration would set on the function (a cold start with it)."""
    import os

    os.environ["CST_DATA_SOURCE"] = source
    for key in DEPLOYMENT_ENV:
        os.environ.pop(key, None)
    os.environ.update(env or {})
    _forget()
    handler = importlib.import_module(f"cryptosmarttrader.handlers.{module}").handler
    with redirect_stdout(io.StringIO()):
        result = handler(event, Context(f"cst-{module}"))
    assert result["status"] == "ok", result
    return dict(result["report"])


def _ingest(event: dict[str, Any]) -> dict[str, Any]:
    return _invoke("ingest", event, "recorded")


def test_scheduled_ingest_feeds_every_agent_of_the_deployed_scan(
    stack: AwsClients,
    bundle: Path,  # noqa: F811 - the fixture
) -> None:
    (universe_rule,) = [u for u in CONFIG.universes if u.exchange == "binance"]
    kucoin_rule = next(u for u in CONFIG.universes if u.exchange == "kucoin")
    assert CONFIG.funding is not None and CONFIG.sentiment is not None
    with time_machine.travel(DAY - timedelta(minutes=10), tick=False) as clock:
        # 23:50 the universe rules: every recorded USDT pair above the liquidity floor
        # (the five most liquid pairs keep the test fast; the rule's floor is the deployed one)
        binance = universe = _ingest({**universe_rule.event(), "max_pairs": 5})
        kucoin = _ingest({**kucoin_rule.event(), "max_pairs": 5})
        assert "BTC/USDT" in binance["pairs"] and "BTC/USDT" in kucoin["pairs"]
        assert binance["excluded_reasons"]["beyond the 5 most liquid pairs"] > 0, binance
        assert kucoin["excluded_reasons"]["beyond the 5 most liquid pairs"] > 0, kucoin
        assert binance["min_quote_volume_usd"] == universe_rule.min_quote_volume_usd
        # 23:55 the market caps of the universe's coins, observed now and keyed at the coming
        # midnight; a first deployment backfills the history the regime's 200-day index needs
        # (the rule's event with a lookback, served from the recorded CoinGecko history)
        assert CONFIG.market_caps is not None
        clock.move_to(DAY - timedelta(minutes=5))
        caps = _ingest({**CONFIG.market_caps.event(), "lookback_days": 300})
        assert caps["ingested"] > 0, caps
        # (a recorded zero or missing cap is refused with its reason; nothing is "future")
        assert "future" not in caps["rejected_codes"], caps["rejections"]
        # 00:02-00:05 the candle rules' events, without symbols: the stored universe
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

        # 00:15 the scan rule's event: the agents read the lake as of the decision; the
        # registry holds no promoted model and the deployment has not opted in
        clock.move_to(DAY + timedelta(minutes=15))
        scan = _invoke("scan", CONFIG.scan.event(), "ccxt")
        # the same minute on a deployment that opts in to technical-only paper trading
        traded = _invoke("scan", CONFIG.scan.event(), "ccxt", {OPT_IN: "true"})
        # and with a fitted model served as the CLI's --model serves it (CST_MODEL_DIR)
        modelled = _invoke("scan", CONFIG.scan.event(), "ccxt", {"CST_MODEL_DIR": str(bundle)})

    # Then the agents that read the lake vote on at least one coin
    agents = scan["agents"]
    for name in (n for n in AGENT_NAMES if n not in {"early_mover", "arbitrage", "ml", "ensemble"}):
        assert agents[name]["votes"] >= 1, (name, agents[name])
    # except the arbitrage agent: the replayed universe runs ingest no withdrawal constraints
    # (none are recorded), and on the lake path an unseen constraint is an abstention that
    # names it, never a guessed fee
    assert universe["withdrawals"]["status"] == "not_recorded"
    arbitrage = agents["arbitrage"]
    assert arbitrage["votes"] == 0 and arbitrage["abstentions"] >= 1, arbitrage
    assert any(
        "no transfer route" in why and "no withdrawal data for" in why
        for why in arbitrage["abstention_reasons"]
    ), arbitrage
    # the regime reads the backfilled 200-day market-cap index
    assert scan["regime"] is not None, scan.get("regime_effect")
    # the early mover reads the cap the 23:55 run keyed at this midnight: it judges each coin's
    # size, and the five most liquid coins are all large caps, outside its scope (its vote on
    # a wider universe: the next test)
    assert agents["early_mover"]["abstentions"] == len(binance["pairs"])
    assert all(
        "outside the early-mover scope" in why
        for why in agents["early_mover"]["abstention_reasons"]
    ), agents["early_mover"]
    # every funding abstention says why (no perpetual for that pair in the lake)
    assert all("perpetual" in why for why in agents["funding"]["abstention_reasons"])
    # the ML predictor and the ensemble vote only with a model: none is promoted, they say so
    for name in ("ml", "ensemble"):
        assert agents[name]["votes"] == 0
        assert set(agents[name]["abstention_reasons"]) == {NO_PROMOTED_MODEL}, agents[name]
    # no promoted model, no opt-in: said in the basis and on every row, and nothing is ordered
    # (the BUYs of the technical agent are held)
    assert scan["decision_basis"].startswith(NO_PROMOTED_MODEL)
    assert scan["orders_created"] == 0
    assert scan["rows"] and all(NO_PROMOTED_MODEL in row["reasons"] for row in scan["rows"])
    assert not [row for row in scan["rows"] if row["action"] == "buy"]
    buys = {row["symbol"] for row in traded["rows"] if row["action"] == "buy"}
    assert buys, [(r["symbol"], r["action"], r["reasons"][-2:]) for r in traded["rows"]]
    held = {r["symbol"] for r in scan["rows"] if r["action"] == "hold"}
    assert buys <= held
    # with the opt-in the same scan trades on the technical agent, and every output says why
    assert traded["orders_created"] >= 1
    assert traded["decision_basis"].startswith(NO_PROMOTED_MODEL_TRADING)
    assert all(NO_PROMOTED_MODEL_TRADING in row["reasons"] for row in traded["rows"])
    # and with a fitted model the ML predictor and the ensemble vote too, on the same lake data
    for name in (n for n in AGENT_NAMES if n not in {"early_mover", "arbitrage"}):
        assert modelled["agents"][name]["votes"] >= 1, (name, modelled["agents"][name])
    assert not any(
        r.startswith("no promoted model") for row in modelled["rows"] for r in row["reasons"]
    )


def test_the_early_mover_votes_on_the_deployed_path_beyond_the_20_largest_coins(
    stack: AwsClients,
) -> None:
    # Given the deployed Binance universe rule wide enough to hold coins beyond the 20 largest
    # (its deployed max is 100; 26 keeps the test fast), their caps from the 23:55 run keyed at
    # the coming midnight (with two months of history, as a first deployment backfills), and
    # the 00:05 daily candles of that stored universe
    (universe_rule,) = [u for u in CONFIG.universes if u.exchange == "binance"]
    (daily,) = [s for s in CONFIG.ingest_schedules if s.timeframe == "1d"]
    assert CONFIG.market_caps is not None
    with time_machine.travel(DAY - timedelta(minutes=10), tick=False) as clock:
        binance = _ingest({**universe_rule.event(), "max_pairs": 26})
        assert len(binance["pairs"]) == 26, binance
        clock.move_to(DAY - timedelta(minutes=5))
        caps = _ingest({**CONFIG.market_caps.event(), "lookback_days": 60})
        assert caps["ingested"] > 0, caps
        clock.move_to(DAY + timedelta(minutes=5))
        assert _ingest({**daily.event(), "initial_lookback_bars": 60})["ingested"] > 0
        # When the 00:15 scan rule's event runs (no promoted model, no opt-in)
        clock.move_to(DAY + timedelta(minutes=15))
        scan = _invoke("scan", CONFIG.scan.event(), "ccxt")
    # Then the early mover votes on the smaller coins it can size, the 20 largest out of scope
    early = scan["agents"]["early_mover"]
    assert early["votes"] >= 1, early
    assert any("outside the early-mover scope" in why for why in early["abstention_reasons"])
    # and a coin abstains for an unknown cap only where the source has none for that midnight
    # (no recorded CoinGecko file, or a value the gate refused), never for the run's timing
    unknown = sum(n for why, n in early["abstention_reasons"].items() if "cap unknown" in why)
    midnight_ms = int(DAY.timestamp() * 1000)
    refused = {r["coin"] for r in caps["rejections"] if r["ts"] in (None, midnight_ms)}
    assert unknown >= 1 and refused, caps["rejections"]  # (fantom has no recorded file)
    assert unknown == len(refused) + len(caps["unmapped"]), (early, caps["rejections"])
    assert scan["orders_created"] == 0


def test_every_agent_votes_in_the_scan_function_of_a_replay_deployment(
    stack: AwsClients,
    bundle: Path,  # noqa: F811 - the fixture
) -> None:
    # Given a replay deployment (`data_source: recorded`, the stack `make demo` deploys): its
    # scan function reads the recorded real data as of the rule's minute, with a fitted model
    # served as the CLI's --model serves it, over every recorded coin (CST_UNIVERSE=all)
    with time_machine.travel(DAY + timedelta(minutes=15), tick=False):
        # When the scan rule's exact event reaches the deployed handler
        scan = _invoke(
            "scan",
            CONFIG.scan.event(),
            "recorded",
            {"CST_MODEL_DIR": str(bundle), "CST_UNIVERSE": "all"},
        )
    # Then each of the nine agents votes on at least one coin of real recorded data: funding
    # from the recorded BTC perpetual, arbitrage from Binance and KuCoin candles (saying the
    # withdrawal constraints it could not see: none are recorded for the past), sentiment from
    # the recorded Fear & Greed index, the early mover beyond the 20 largest coins
    agents = scan["agents"]
    assert set(agents) == set(AGENT_NAMES)
    for name in AGENT_NAMES:
        assert agents[name]["votes"] >= 1, (name, agents[name])
    assert scan["regime"] is not None
