"""All nine agents vote on real recorded data in the scan (CLI and Lambda), each as of the
decision: the Fear & Greed index, BTC perpetual funding and mark prices, KuCoin beside Binance.
The regime the regime agent finds sizes new positions, and the API shows it.

2022-03-01 is inside every recorded source (funding 2021-08-31 → 2022-07-30, KuCoin hourly
2021-01 → 2022-10, Fear & Greed 2018 → 2023). The model is fitted walk-forward on data up to
2021-06-30 only, so the scan date is out of sample. The scan Lambda runs on moto (its deployed
wiring, then the API reading what it published); the regime's sizing is scan logic and runs on
the stores' in-memory fakes (``tests/support/scan.py``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.recorded_agent_data import (
    RECORDED_WITHDRAWALS_UNKNOWN,
    RecordedAgentData,
)
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.adapters.xgb_predictor import XgbTrainer
from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.agents.regime import Regime
from cryptosmarttrader.domain.agents.registry import REGIME_STRATEGIES, MarketState, run_agents
from cryptosmarttrader.domain.agents.tally import AGENT_NAMES
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.services.evaluate import (
    DIRECTIONAL_AGENTS,
    EvaluationConfig,
    fit_ensemble,
    registry_agents,
)
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import excluded_coins, recorded_analyzer
from tests.support.aws import moto_stack
from tests.support.scan import Stores

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ASOF = "2022-03-01"
ASOF_MS = int(datetime(2022, 3, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True)
class _Fitted:
    """What the documented ensemble fit wrote (the bundle directory) and printed."""

    directory: Path
    output: str


_FITS: dict[Path, _Fitted] = {}


@pytest.fixture(scope="module")
def fitted(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> _Fitted:
    """The documented `cst model fit-ensemble DIR --train-end 2021-06-30`: an ensemble and ML
    agent fitted walk-forward on data up to 2021-06-30 (a short fit), the side-data agents
    voting as the scan would have had them vote. Fitted once per test process: the scans here
    and the deployed scans of test_agents_deployed.py serve it (they only read it; the two
    modules run on one worker, tests/xdist_scheduling.py), and the test of the documented fit
    reads what the command wrote and printed."""
    if data_dir not in _FITS:
        directory = tmp_path_factory.mktemp("model") / "m"
        result = CliRunner().invoke(
            app,
            ["model", "fit-ensemble", str(directory), "--train-end", "2021-06-30",
             "--data", str(data_dir)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        _FITS[data_dir] = _Fitted(directory, result.output)
    return _FITS[data_dir]


@pytest.fixture(scope="module")
def bundle(fitted: _Fitted) -> Path:
    """The bundle `cst scan --model DIR` serves (see :func:`fitted`)."""
    return fitted.directory


def test_every_agent_votes_in_the_cli_scan_and_the_report_counts_them(
    bundle: Path, data_dir: Path, tmp_path: Path
) -> None:
    # When the documented command runs on a date every recorded source covers
    result = CliRunner().invoke(
        app,
        [
            "scan", "--data", str(data_dir), "--asof", ASOF, "--model", str(bundle),
            "--top", "5", "--json", "--state-dir", str(tmp_path / "state"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    agents = report["agents"]
    # Then each of the nine agents voted on at least one coin, and every count adds up
    assert set(AGENT_NAMES) <= set(agents)
    for name in AGENT_NAMES:
        counts = agents[name]
        assert counts["votes"] >= 1, (name, counts)
        assert sum(counts["abstention_reasons"].values()) == counts["abstentions"], name
    scored = agents["technical"]["votes"] + agents["technical"]["abstentions"]
    assert all(c["votes"] + c["abstentions"] == scored for c in agents.values())
    # And the agents that only the recorded side data makes vote say why they abstain elsewhere
    assert agents["funding"]["votes"] == 1  # BTC is the only recorded perpetual
    assert agents["funding"]["abstention_reasons"] == {
        "no recorded perpetual funding for this coin (recorded: BTC/USDT)": scored - 1
    }
    assert agents["sentiment"]["votes"] == scored  # a market-wide reading, for every coin
    # And the regime is reported with the exposure it selected
    regime = Regime(report["regime"])
    assert report["exposure"] == REGIME_STRATEGIES[regime].exposure
    assert report["regime_effect"].startswith(f"{regime.value}: new positions sized at")


def test_the_documented_ensemble_fit_weighs_the_recorded_sentiment(fitted: _Fitted) -> None:
    # When the documented command fits the ensemble on data up to 2021-06-30 (the recorded
    # Fear & Greed index covers every decision day of the fit from 2018-02 on; funding starts
    # 2021-08-31 and KuCoin 2021-01-01, after every training row's outcome window began)
    ensemble = json.loads((fitted.directory / "ensemble.json").read_text())["ensemble"]
    rows = dict(zip(ensemble["agents"], ensemble["voted_rows"], strict=True))
    weight = dict(zip(ensemble["agents"], ensemble["weights"], strict=True))
    # Then the document says what each weight was fitted on: the sentiment agent voted on every
    # training row (a market-wide reading as of each day), the uncovered agents on none
    assert rows["sentiment"] == ensemble["training_rows"] > 1000, ensemble
    assert rows["funding"] == rows["arbitrage"] == 0
    assert rows["technical"] > 0 and rows["ml"] > 0
    # And its weight was fitted on those votes: not the all-abstain default of exactly 0
    assert weight["sentiment"] != 0.0, ensemble
    assert f"sentiment {rows['sentiment']}" in " ".join(fitted.output.split())


@dataclass
class _Recording:
    """The scan's side-data reader, recording every decision time it is asked about."""

    inner: RecordedAgentData
    asked: list[int]

    def state(self, universe: pl.DataFrame, asof_ms: int) -> MarketState:
        self.asked.append(asof_ms)
        assert universe["ts"].max() <= asof_ms  # type: ignore[operator]
        return self.inner.state(universe, asof_ms)


@dataclass
class _Universe:
    """The recorded daily universe, recording how far each read reaches."""

    inner: RecordedMarketData
    reached: list[datetime]

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        self.reached.append(asof)
        return self.inner.daily_universe(asof, lookback_days)


def test_the_ensemble_fit_sees_every_side_agent_vote_where_the_data_covers_it_and_nothing_later(
    data_dir: Path,
) -> None:
    # Given a train-end whose training rows reach into the recorded funding (2021-08-31 on, BTC
    # only) and KuCoin (2021-01 on, 20 pairs) spans
    market = RecordedMarketData(data_dir)
    side = _Recording(RecordedAgentData(market), [])
    universe = _Universe(market, [])
    train_end = date(2022, 10, 1)
    cfg = EvaluationConfig(
        train_end=train_end,
        start=date(2022, 10, 16),
        end=date(2022, 11, 1),
        first_decision=date(2018, 1, 1),
        step_days=21,
    )
    # When the ensemble is fitted with the scan's side-data reader
    fitted = fit_ensemble(
        universe,  # type: ignore[arg-type]
        XgbTrainer(),
        cfg,
        excluded_symbols=excluded_coins(market),
        agents=registry_agents,
        agent_names=DIRECTIONAL_AGENTS,
        agent_data=side,
    )
    stacker = fitted.ensemble.stacker
    rows = dict(zip(stacker.agents, stacker.voted_rows, strict=True))
    weight = dict(zip(stacker.agents, stacker.weights, strict=True))
    # Then each side-data agent voted on training rows and got a weight fitted on those votes
    assert rows["sentiment"] == stacker.training_rows
    assert rows["funding"] > 0 and rows["arbitrage"] > 0, rows
    assert all(weight[a] != 0.0 for a in ("funding", "arbitrage", "sentiment")), weight
    # And nothing after train-end was read: no price row, no side-data state, and side data
    # only as of days whose outcome was known by train-end (the rows the ensemble learns from)
    end = datetime(train_end.year, train_end.month, train_end.day, tzinfo=UTC)
    assert universe.reached and max(universe.reached) <= end
    last_known = end - timedelta(days=cfg.horizon_days)
    assert side.asked and max(side.asked) <= int(last_known.timestamp() * 1000)
    assert all(ms % DAY_MS == 0 for ms in side.asked)  # each decision day's 00:00, as the scan


def test_every_agent_votes_in_a_scan_served_by_the_kind_of_model_the_registry_promotes(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given the ranking model `cst evaluate --save-model` writes (what `cst model
    # register-ranking` registers and a promotion serves to the deployed scan)
    model = tmp_path / "rank"
    saved = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(data_dir), "--train-end", "2021-06-30",
         "--start", "2021-07-08", "--end", "2021-09-30", "--step-days", "14",
         "--save-model", str(model)],
    )  # fmt: skip
    assert saved.exit_code == 0, saved.output
    # When the scan is served by it on a date every recorded source covers
    result = CliRunner().invoke(
        app,
        [
            "scan", "--data", str(data_dir), "--asof", ASOF, "--model", str(model),
            "--top", "5", "--json", "--state-dir", str(tmp_path / "state"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    agents = report["agents"]
    # Then each of the nine agents votes on at least one coin, and no other name stands for
    # the model: the ML predictor is the ranking model, the ensemble its calibration
    for name in AGENT_NAMES:
        assert agents[name]["votes"] >= 1, (name, agents[name])
    assert set(agents) == set(AGENT_NAMES)
    scored = agents["technical"]["votes"] + agents["technical"]["abstentions"]
    assert agents["ml"]["votes"] == agents["ensemble"]["votes"] == scored
    for row in report["rows"]:
        votes = {v["agent"]: v for v in row["votes"]}
        # the row's score is the ensemble's calibrated probability; the ML vote says it is a
        # rank percentile, not a calibrated probability, and names the model
        assert row["score"] == votes["ensemble"]["probability"]
        assert row["reasons"][0].startswith("calibrated P(")
        assert votes["ml"]["reasons"][0].startswith(f"ranking model {report['model_version']}")
        assert "not a calibrated probability" in votes["ml"]["reasons"][1]


def test_recorded_side_data_is_read_as_of_the_decision_and_gaps_are_stated(
    data_dir: Path,
) -> None:
    market = RecordedMarketData(data_dir)
    agent_data = RecordedAgentData(market)
    asof = datetime(2022, 3, 1, tzinfo=UTC)
    universe = check_daily(market.daily_universe(asof, 260), ASOF_MS).clean

    state = agent_data.state(universe, ASOF_MS)

    # Nothing after the decision: funding readings, closed mark and spot candles, quotes
    assert state.funding is not None and state.funding["ts"].max() <= ASOF_MS  # type: ignore[operator]
    assert state.mark is not None and (state.mark["ts"] + 8 * 3_600_000).max() <= ASOF_MS  # type: ignore[operator]
    assert state.tickers is not None and state.tickers["ts"].max() <= ASOF_MS  # type: ignore[operator]
    assert set(state.tickers["exchange"].unique().to_list()) == {"binance", "kucoin"}
    # and the Fear & Greed reading of the decision day is not used before that day has ended
    assert state.sentiment is not None
    assert max(r.ts for r in state.sentiment) == ASOF_MS - DAY_MS
    with (data_dir / "sentiment" / "fear_greed_index.csv").open() as fh:
        values = {row["date"]: float(row["value"]) for row in csv.DictReader(fh)}
    votes = run_agents(state, ASOF_MS)
    btc = {r["agent"]: r for r in votes.filter(pl.col("symbol") == "bitcoin").iter_rows(named=True)}
    assert f": {values['2022-02-28']:g} (" in btc["sentiment"]["reasons"][0]
    assert "reading of 2022-02-28" in btc["sentiment"]["reasons"][0]
    # BTC gets a funding vote (funding and basis) and an arbitrage vote net of both taker fees,
    # which says the withdrawal constraints it could not see (none are recorded): its spread
    # is an upper bound
    assert btc["funding"]["abstain_reason"] is None
    assert any("basis" in r for r in btc["funding"]["reasons"])
    assert btc["arbitrage"]["abstain_reason"] is None
    assert "net of taker fees" in btc["arbitrage"]["reasons"][1]
    assert "an upper bound" in btc["arbitrage"]["reasons"][1]
    assert btc["arbitrage"]["reasons"][2] == (
        f"withdrawal constraints unknown: {RECORDED_WITHDRAWALS_UNKNOWN}"
    )

    # Before the first recorded funding reading BTC abstains, saying so
    early = datetime(2021, 3, 1, tzinfo=UTC)
    early_ms = int(early.timestamp() * 1000)
    early_state = agent_data.state(
        check_daily(market.daily_universe(early, 260), early_ms).clean, early_ms
    )
    early_votes = run_agents(early_state, early_ms).filter(
        (pl.col("symbol") == "bitcoin") & (pl.col("agent") == "funding")
    )
    assert early_votes["abstain_reason"].to_list() == [
        "no funding data before 2021-08-31 for BTC/USDT"
    ]

    # Past the last recorded reading (2022-07-30) it abstains naming the end of the record, not
    # as if BTC had no perpetual; and within the agent's 16 h it still votes
    def btc_funding(at: datetime) -> dict[str, object]:
        ms = int(at.timestamp() * 1000)
        state = agent_data.state(check_daily(market.daily_universe(at, 260), ms).clean, ms)
        votes = run_agents(state, ms, only=("funding",)).filter(pl.col("symbol") == "bitcoin")
        return votes.to_dicts()[0]

    late = btc_funding(datetime(2022, 9, 1, tzinfo=UTC))
    assert late["probability"] is None
    assert late["abstain_reason"] == "no funding data after 2022-07-30 for BTC/USDT"
    assert btc_funding(datetime(2022, 7, 30, tzinfo=UTC))["abstain_reason"] is None


@dataclass
class Context:
    function_name: str = "cst-scan"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-scan"
    aws_request_id: str = "req-scan-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    env = {"POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader", "POWERTOOLS_TRACE_DISABLED": "true"}
    with moto_stack(monkeypatch, env=env) as clients:
        yield clients


def test_the_scan_lambda_publishes_agents_and_regime_and_the_api_shows_them(
    aws: AwsClients, bundle: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_DATA_SOURCE", "recorded")
    monkeypatch.setenv("CST_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CST_MODEL_DIR", str(bundle))
    from cryptosmarttrader.handlers import _common
    from cryptosmarttrader.handlers import api as api_handler
    from cryptosmarttrader.handlers import scan as scan_handler

    _common.reset_caches()
    scan_handler._service.cache_clear()
    api_handler._service.cache_clear()
    try:
        # When the scan Lambda replays the date (its exact event shape)
        out: dict[str, Any] = scan_handler.handler({"asof": ASOF, "top_n": 5}, Context())  # type: ignore[arg-type]
        # Then its report carries every agent's votes and the regime
        assert out["status"] == "ok"
        report = out["report"]
        assert all(report["agents"][name]["votes"] >= 1 for name in AGENT_NAMES)
        assert report["regime"] in {r.value for r in Regime}
        # And the API's market overview shows the regime and what it changed
        from tests.integration.test_api import api_event

        resp = api_handler.handler(api_event("GET", "/api/v1/market/overview"), Context())  # type: ignore[arg-type]
        body = json.loads(resp["body"])
        assert resp["statusCode"] == 200
        assert body["regime"] == report["regime"]
        assert body["regime_source"] == "scan report"
        assert body["regime_effect"] == report["regime_effect"]
    finally:
        _common.reset_caches()
        scan_handler._service.cache_clear()
        api_handler._service.cache_clear()


def test_the_regime_exposure_scales_new_positions(data_dir: Path) -> None:
    # Given the technical scan on a sideways day (the regime names exposure 0.75)
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    analysis = analyzer.analyze(datetime(2022, 3, 1, tzinfo=UTC), 10)
    assert analysis.regime == Regime.SIDEWAYS.value
    assert analysis.exposure == REGIME_STRATEGIES[Regime.SIDEWAYS].exposure == 0.75
    assert any(s.action.value == "buy" for s in analysis.ranked)
    settings = TradingSettings()
    cap = Decimal(str(settings.equity_usd)) * Decimal(str(settings.max_asset_fraction))
    # When its decisions are recorded (the deployed scan's stores, on their in-memory fakes)
    stores = Stores()
    report = stores.service(analyzer).execute(analysis)
    orders = stores.orders.list_orders()
    assert orders and report.orders_created == len(orders)
    # Then every new position is sized at 0.75 of the normal fraction (to the lot rounding)
    for item in orders:
        notional = Decimal(item["notional"])
        assert cap * Decimal("0.74") <= notional <= cap * Decimal("0.75"), item
    assert report.exposure == 0.75 and report.regime == "sideways"


def test_missing_or_damaged_side_data_is_an_abstention_with_its_reason(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given the recorded data without KuCoin candles and with a damaged Fear & Greed file
    root = tmp_path / "data"
    root.mkdir()
    for folder in ("coingecko_daily", "binance_spot", "binance_futures"):
        (root / folder).symlink_to(data_dir / folder, target_is_directory=True)
    (root / "sentiment").mkdir()
    (root / "sentiment" / "fear_greed_index.csv").write_text(
        "date,value,classification\n2022-02-27,25,Extreme Fear\n2022-02-28,not-a-number,Fear\n"
    )
    market = RecordedMarketData(root)
    universe = check_daily(
        market.daily_universe(datetime(2022, 3, 1, tzinfo=UTC), 260), ASOF_MS
    ).clean

    # When the agents vote as of a date inside the funding span
    state = RecordedAgentData(market).state(universe, ASOF_MS)
    votes = run_agents(state, ASOF_MS)
    btc = {r["agent"]: r for r in votes.filter(pl.col("symbol") == "bitcoin").iter_rows(named=True)}

    # Then the damaged file and the missing venue are stated, and nothing else is lost
    assert btc["sentiment"]["abstain_reason"].startswith(
        "recorded sentiment unusable: sentiment/fear_greed_index.csv line 3:"
    )
    assert btc["arbitrage"]["abstain_reason"] == (
        "no recorded quote to compare (kucoin: no 1h candles recorded for this pair)"
    )
    assert btc["funding"]["abstain_reason"] is None
    assert votes.filter(pl.col("agent") == "technical")["abstain_reason"].null_count() > 100
