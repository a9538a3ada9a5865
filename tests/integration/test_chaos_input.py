"""Chaos scenario `input` through `cst chaos run`: an infinite price in a real coin file and
damaged real candle files, injected while the pipeline runs on loopback infrastructure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app
from cst_devtools.chaos import SCENARIOS

pytestmark = pytest.mark.realdata


def test_bad_input_is_rejected_with_reasons_and_loses_no_order(data_dir: Path) -> None:
    assert "input" in SCENARIOS
    # When the best-ranked coin's file gets an infinite price and candle files are damaged
    result = CliRunner().invoke(
        app, ["chaos", "run", "--json", "--scenario", "input", "--data", str(data_dir)]
    )
    assert result.exit_code == 0, result.output

    def refuse(token: str) -> object:
        raise ValueError(token)

    (scenario,) = json.loads(result.stdout, parse_constant=refuse)["scenarios"]
    details = scenario["details"]
    # Then the scan completes without that coin, its report is strict JSON, no order is lost
    # or doubled, and each damaged candle file is rejected with its reason while the intact
    # pair is ingested
    assert scenario["scenario"] == "input" and scenario["passed"], details
    assert scenario["orders_lost"] == scenario["orders_duplicated"] == 0
    scan = details["infinite_price"]
    assert scan["damaged_coin"] not in scan["ranked"]
    assert "NON_FINITE" in scan["quality_totals"]
    ingest = details["damaged_candles"]
    assert ingest["intact"]["status"] == "ok" and ingest["intact"]["ingested"] > 0
    for fault, code in (("nan_close", "NAN"), ("empty", "EMPTY"), ("off_grid", "MISALIGNED")):
        outcome = ingest[fault]
        assert outcome["status"] == "rejected" and code in outcome["codes"], (fault, outcome)
        assert outcome["lake_days"] == 0
