"""`cst backtest` replays the scan itself: a paper run and a backtest over the same bars decide
the same."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.cli.backtest import app as backtest_app
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.types import Action
from cryptosmarttrader.services.evaluate import backtest
from cryptosmarttrader.services.scan import ScanService
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer
from tests.fakes import InMemoryOrderLedger, InMemoryPositionLedger

pytestmark = pytest.mark.realdata

START, END = date(2021, 1, 1), date(2021, 2, 26)


class _KillSwitchOff:
    on = False
    reason = "off"

    def is_on(self) -> bool:
        return False

    def status(self) -> _KillSwitchOff:
        return self


def test_paper_run_and_backtest_make_identical_decisions(data_dir: Path) -> None:
    # Given one analyzer over the real data (the object the Lambda and `cst scan` build)
    clock = FixedClock(datetime(2024, 1, 1, tzinfo=UTC))
    analyzer = recorded_analyzer(data_dir, clock, TradingSettings(equity_usd=100_000.0))
    # When the backtest replays weekly scans and a paper run scans the same days
    result = backtest(analyzer, START, END, every_days=7)
    for day in result.days:
        service = ScanService(
            analyzer,
            InMemoryOrderLedger(),
            InMemoryPositionLedger(),
            _KillSwitchOff(),
            InMemoryMetrics(),
        )
        asof = datetime(day.asof.year, day.asof.month, day.asof.day, tzinfo=UTC)
        report = service.run(asof)
        paper_buys = tuple(r.symbol for r in report.rows if r.action is Action.BUY)
        paper_ranked = [(r.symbol, r.score, r.confidence) for r in report.rows]
        # Then both decide the same coins, scores and confidences
        assert paper_buys == day.buys
        assert paper_ranked == [(s.symbol, s.score, s.confidence) for s in day.ranked]
        # and every BUY is ordered, except those the paper venue cannot trade (reported)
        assert report.orders_created + report.not_ordered_untradable == len(day.buys)
        # and both size new positions by the same regime exposure
        assert day.regime == report.regime
        assert day.exposure == (1.0 if report.exposure is None else report.exposure)
    assert len(result.days) == 9
    assert {"scan", "btc_buy_hold"} == set(result.stats)
    assert result.equity.height == 2 * ((END - START).days + 1)
    assert Decimal(str(result.stats["btc_buy_hold"]["total_return"])) > 0  # BTC rose in 2021 Q1


def test_cli_backtest_json(data_dir: Path) -> None:
    root = typer.Typer()
    root.add_typer(backtest_app, name="backtest")
    end = START + timedelta(days=14)
    result = CliRunner().invoke(
        root,
        ["backtest", "--data", str(data_dir), "--start", str(START), "--end", str(end),
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"btc_buy_hold"' in result.stdout and '"decisions"' in result.stdout


def test_backtest_sizes_each_entry_by_the_days_regime_exposure(data_dir: Path) -> None:
    # Given the May-June 2021 crash, where the regime cuts the size of new positions
    clock = FixedClock(datetime(2024, 1, 1, tzinfo=UTC))
    settings = TradingSettings(equity_usd=100_000.0)
    analyzer = recorded_analyzer(data_dir, clock, settings)
    result = backtest(analyzer, date(2021, 5, 12), date(2021, 6, 23), every_days=7, cost_rate=0.0)
    exposure = {d.asof: d.exposure for d in result.days}
    assert min(exposure.values()) < 1.0, exposure  # a reduced-size regime is exercised
    curve = dict(
        zip(
            result.equity.filter(pl.col("strategy") == "scan")["day"].to_list(),
            result.equity.filter(pl.col("strategy") == "scan")["equity"].to_list(),
            strict=True,
        )
    )
    assert result.entries
    for day, _symbol, notional in result.entries:
        # Then each entry is the paper fraction of that day's equity times its regime exposure
        equity = curve[(day - date(1970, 1, 1)).days]
        expected = settings.max_asset_fraction * exposure[day] * equity
        assert notional == pytest.approx(expected, rel=1e-9)
