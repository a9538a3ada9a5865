"""`cst tracking` on real Binance bars: paper execution tracks the backtest's fills."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli.tracking import app

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
runner = CliRunner()
ARGS = [
    "--symbols",
    "BTC/USDT,SOL/USDT",
    "--every",
    "48",
    "--start",
    "2022-05-01",
    "--end",
    "2022-05-15",
    "--json",
]


def _run(data_dir: Path, *extra: str) -> dict[str, object]:
    result = runner.invoke(app, ["--data", str(data_dir), *ARGS, *extra])
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.output)
    return payload


def test_paper_fills_track_the_backtest_within_20_bps(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # When the same decisions are filled by the paper venue and by the backtest convention
    report = _run(data_dir)
    # Then every decision filled and the tracking error is under the 20 bps target
    assert report["fills"] == 16
    assert report["rejected"] == 0
    assert 0 < float(report["p95_abs_bps"]) < 20  # type: ignore[arg-type]
    # And a backtest assuming 50 bps of slippage is reported as far off (the measure can fail)
    off = _run(data_dir, "--backtest-slippage-bps", "50")
    assert float(off["mean_abs_bps"]) > 40  # type: ignore[arg-type]


def test_bad_period_is_an_error(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["--data", str(data_dir), "--start", "2022-05-02", "--end", "2022-05-01"]
    )
    assert result.exit_code == 2
    assert "--end must be after --start" in result.output
