"""`cst demo` (what `make demo` runs): the whole pipeline on the embedded local AWS, real data."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app
from tests.e2e.conftest import DEMO_GROUP, DemoRun

pytestmark = [pytest.mark.realdata, pytest.mark.slow, pytest.mark.xdist_group(DEMO_GROUP)]


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """The demo configures the Lambdas through os.environ, as a Lambda runtime would: undo it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_demo_ingests_scans_dedups_and_honours_the_kill_switch(demo_run: DemoRun) -> None:
    # When the demo runs on a small ingest window (`cst demo --data <data> --state-dir <dir>
    # --top 5 --ingest-bars 20`, run once per worker: tests/e2e/conftest.py)
    state = demo_run.state
    out = demo_run.stdout
    assert demo_run.exit_code == 0, demo_run.stderr + out
    # Then candles reached the lake and the scan recorded its BUY decisions
    ingested = int(re.search(r"candles ingested: (\d+)", out).group(1))  # type: ignore[union-attr]
    assert ingested == 33 * 20
    created = int(re.search(r"orders created (\d+)", out).group(1))  # type: ignore[union-attr]
    assert created >= 1
    # on the technical agent alone (no promoted model), by the demo's explicit opt-in, as the
    # scan's decision basis states
    assert "paper trading allowed by CST_ALLOW_TECHNICAL_ONLY_TRADING=true" in " ".join(out.split())
    # the execution cycles sent them after the RiskGuard, and the paper venue filled them on
    # the next real hourly bar (the first cycle runs before that bar has opened)
    cycles = re.findall(r"cycle at \S+: sent (\d+), refused (\d+), positions (\d+)", out)
    assert len(cycles) == 2
    assert int(cycles[0][0]) + int(cycles[0][1]) == created and cycles[0][2] == "0"
    assert int(cycles[1][2]) == int(cycles[0][0])
    assert out.count("FILLED") == int(cycles[0][0])
    # the redelivered schedule ordered nothing new, and the kill-switch held every BUY
    assert f"orders created: 0   duplicates prevented: {created}" in out
    assert re.search(r"orders created 0, \d+ BUY decision\(s\) held by the\s+kill-switch", out)
    # and the state survives the process: orders and the restored kill-switch are in the snapshot
    snapshot = json.loads((state / "snapshot.json").read_text())
    orders = next(v for k, v in snapshot["tables"].items() if "orders" in k)
    assert len(orders) == created
    assert (state / "lake").is_dir()


def test_without_recorded_or_live_data_the_demo_stops_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no recorded data and no route to an exchange (a proxy on a closed loopback port,
    # so the test holds on machines with internet too)
    monkeypatch.setenv("CST_DATA_DIR", str(tmp_path / "nowhere"))
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    state = tmp_path / "demo"
    # When the demo runs with the automatic source
    result = CliRunner().invoke(app, ["demo", "--state-dir", str(state)])
    # Then it fails on one line naming both reasons, and writes nothing: no invented prices
    assert result.exit_code != 0
    assert "no recorded data" in result.stderr
    assert "no live exchange data" in result.stderr
    assert "binance" in result.stderr
    assert not state.exists()
