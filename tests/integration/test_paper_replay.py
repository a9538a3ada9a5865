"""`cst backtest --fills paper`: the scan's decisions replayed through the deployed execution
path (scan, execution cycles, paper venue on real hourly bars) beside the vectorized backtest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app

pytestmark = pytest.mark.realdata


def test_paper_replay_trades_the_decisions_through_the_execution_path(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    args = ["backtest", "--start", "2021-01-05", "--end", "2021-01-12", "--every-days", "7"]
    result = CliRunner().invoke(app, [*args, "--fills", "paper", "--json", "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    paper = out["paper"]
    first, second = paper["days"]
    buys = {d["asof"]: set(d["buys"]) for d in out["decisions"]}
    # the first day's BUYs were decided and filled (within the RiskGuard's caps)
    assert first["decided"] >= 1 and 1 <= first["filled"] <= first["decided"]
    assert set(first["positions"]) <= buys["2021-01-05"]
    # a week later the book holds what it held (no coin doubled or halved in that week, so the
    # exit rule closed nothing, and dropping out of the selection is not an exit), held coins
    # were not bought again, and new BUYs joined it
    dropped = set(first["positions"]) - buys["2021-01-12"]
    assert dropped, "every held coin is a BUY again: the no-exit-on-dropout path is untested"
    assert set(first["positions"]) <= set(second["positions"])
    for symbol, quantity in first["positions"].items():
        assert second["positions"][symbol] == pytest.approx(quantity)
    assert set(second["positions"]) <= buys["2021-01-12"] | set(first["positions"])
    assert paper["fills"] == first["filled"] + second["filled"]
    assert second["equity"] != pytest.approx(100_000.0)  # fees and prices moved it
    assert paper["max_drawdown"] <= 0 and "scan" in out["stats"]


def test_unknown_fill_mode_is_refused() -> None:
    result = CliRunner().invoke(
        app, ["backtest", "--start", "2021-01-05", "--end", "2021-01-12", "--fills", "magic"]
    )
    assert result.exit_code == 2 and "--fills must be vectorized or paper" in result.output
