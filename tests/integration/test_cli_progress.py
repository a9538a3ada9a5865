"""Long commands show progress on a terminal, and never pollute JSON or piped output.

The services report ``(step, done, total)`` through a callback (services/progress.py); the CLI
draws rich bars on stderr when stdout is a terminal (``CST_PROGRESS=always`` forces that here,
where the test runner is no terminal).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app

runner = CliRunner()


def _ingest(data_dir: Path, state: Path, *extra: str) -> list[str]:
    return ["ingest", "--data", str(data_dir), "--timeframe", "1d",
            "--symbols", "SOL/USDT,LINK/USDT", "--state-dir", str(state), *extra]  # fmt: skip


@pytest.mark.realdata
def test_ingest_draws_a_bar_per_series_and_keeps_json_clean(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    # Given a terminal (forced), When two series are ingested
    monkeypatch.setenv("CST_PROGRESS", "always")
    shown = runner.invoke(app, _ingest(data_dir, tmp_path))

    # Then stderr carries the bar with both series done, stdout only the report table
    assert shown.exit_code == 0, shown.output
    assert "ingest series" in shown.stderr and "2/2" in shown.stderr
    assert "ingest series" not in shown.stdout and "SOL/USDT" in shown.stdout

    # When the same is asked for as JSON (even with progress forced)
    as_json = runner.invoke(app, _ingest(data_dir, tmp_path, "--json"))

    # Then stdout is exactly the JSON report and nothing is drawn
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["timeframe"] == "1d"
    assert "ingest series" not in as_json.stderr

    # And with output that is no terminal (the default mode), nothing is drawn either
    monkeypatch.delenv("CST_PROGRESS")
    piped = runner.invoke(app, _ingest(data_dir, tmp_path))
    assert piped.exit_code == 0, piped.output
    assert "ingest series" not in piped.output
