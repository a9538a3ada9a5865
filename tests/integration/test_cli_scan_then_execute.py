"""`cst scan` then `cst execute`, in README order, with the defaults: every decision recorded as
an order is one the paper venue can fill and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app

pytestmark = pytest.mark.realdata
ASOF = "2022-09-28"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key in ("AWS_ENDPOINT_URL", "CST_UNIVERSE"):
        monkeypatch.delenv(key, raising=False)
    return CliRunner()


def test_default_scan_orders_only_coins_the_paper_venue_can_fill(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    state = ["--state-dir", str(tmp_path / "st"), "--data", str(data_dir)]
    # Given the default scan (no universe option, no CST_UNIVERSE)
    scanned = runner.invoke(app, ["scan", "--asof", ASOF, "--top", "20", "--json", *state])
    assert scanned.exit_code == 0, scanned.output
    ordered = [r for r in json.loads(scanned.stdout)["rows"] if r["order_status"] == "NEW"]
    assert ordered
    # When the next execution cycle sends them
    cycle = runner.invoke(app, ["execute", "--at", f"{ASOF}T02:10:00Z", "--json", *state])
    assert cycle.exit_code == 0, cycle.output
    report = json.loads(cycle.stdout)
    # Then every one is sent to the venue; none is cancelled as an unknown symbol
    assert report["cancelled_new"] == 0
    assert report["dispatched"] == len(ordered)


def test_the_research_universe_reports_untradable_buys_without_ordering_them(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    state = ["--state-dir", str(tmp_path / "st"), "--data", str(data_dir)]
    # Given the whole recorded universe, asked for explicitly
    scanned = runner.invoke(
        app, ["scan", "--asof", ASOF, "--top", "20", "--universe", "all", *state]
    )
    assert scanned.exit_code == 0, scanned.output
    # Then the output says the untradable BUYs were not recorded as orders
    assert "were not recorded as orders" in " ".join(scanned.output.split())
    rows = json.loads(
        runner.invoke(
            app, ["scan", "--asof", ASOF, "--top", "20", "--universe", "all", "--json", *state]
        ).stdout
    )["rows"]
    untradable = [r for r in rows if any("not ordered" in why for why in r["reasons"])]
    assert untradable and all(r["client_order_id"] is None for r in untradable)
    # and the execution cycle has nothing unknown to cancel
    cycle = runner.invoke(app, ["execute", "--at", f"{ASOF}T02:10:00Z", "--json", *state])
    assert json.loads(cycle.stdout)["cancelled_new"] == 0


def test_an_unknown_universe_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["scan", "--asof", ASOF, "--universe", "most", "--state-dir", str(tmp_path / "s")]
    )
    assert result.exit_code == 2
    assert "--universe must be tradable or all" in result.output
