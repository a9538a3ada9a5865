"""`cst execute`: the hourly execution cycle over the embedded local AWS, after `cst scan`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app
from cryptosmarttrader.cli.execute import _print
from cryptosmarttrader.services.trading_cycle import CycleReport

pytestmark = pytest.mark.realdata


def test_scan_then_two_cycles_fill_the_decision_and_reruns_change_nothing(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("CST_UNIVERSE", "tradable")
    # a shell left set up for a deployment's venue: `cst execute` (--venue paper) still trades
    # the paper venue and says so
    monkeypatch.setenv("CST_VENUE_MODE", "testnet")
    state = ["--state-dir", str(tmp_path / "st"), "--data", str(data_dir)]
    runner = CliRunner()
    scanned = runner.invoke(app, ["scan", "--asof", "2022-09-29", "--top", "3", "--json", *state])
    assert scanned.exit_code == 0, scanned.output
    buys = [r for r in json.loads(scanned.stdout)["rows"] if r["order_status"] == "NEW"]
    assert buys

    def cycle(at: str) -> dict[str, object]:
        result = runner.invoke(app, ["execute", "--at", at, "--json", *state])
        assert result.exit_code == 0, result.output
        report: dict[str, object] = json.loads(result.stdout)
        return report

    sent = cycle("2022-09-29T01:10:00Z")
    assert sent["dispatched"] == len(buys) and sent["positions"] == {}
    filled = cycle("2022-09-29T02:10:00Z")
    assert set(filled["positions"]) == {b["symbol"] for b in buys}  # type: ignore[arg-type]
    again = cycle("2022-09-29T02:15:00Z")
    assert again["positions"] == filled["positions"] and again["dispatched"] == 0


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2099-01-01T00:00:00Z", "in the future"),
        ("2022-09-29T01:10:00", "needs a UTC offset"),
        ("yesterday", "ISO 8601"),
    ],
)
def test_bad_instants_are_refused_in_one_line(tmp_path: Path, at: str, message: str) -> None:
    result = CliRunner().invoke(app, ["execute", "--at", at, "--state-dir", str(tmp_path / "st")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "st").exists()


def test_a_cycle_whose_book_cannot_be_read_prints_the_cash_unknown_and_the_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a cycle report whose valuation met an order record it could not read
    record = "record 'eeee' of ETH/USDT unreadable: DomainError: fee must be a finite amount >= 0"
    report = CycleReport(
        at=datetime(2024, 3, 1, 12, 10, tzinfo=UTC), dispatched=0, cancelled_new=0, updated=0,
        expired=0, fills_applied=0, flattened=0, equity=None, cash=None, fees=1.5,
        daily_pnl_pct=None, drawdown_pct=None, risk_level="DEFENSIVE", risk_transition=None,
        positions={}, unmarked=[], unreadable_records=[record], sweep_unreadable=[record],
    )  # fmt: skip
    # When `cst execute` prints it
    _print(report, as_json=False, venue="paper")
    out = " ".join(capsys.readouterr().out.split())
    # Then neither the equity nor the cash is shown as a number, and the record is named
    assert "equity unknown USD, cash unknown, fees 1.50" in out
    assert f"stored {record}" in out
    # and, the kill-switch sweep having met it, as an order that may still rest on the venue
    assert f"kill-switch sweep could not cancel the open {record}: it may still rest" in out
