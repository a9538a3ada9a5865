"""`cst ingest` end to end: recorded candles → embedded AWS lake; a rerun writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.cli.ingest import app
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import embedded_aws

runner = CliRunner()


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.mark.realdata
@pytest.mark.slow
def test_ingest_loads_the_lake_once_and_a_rerun_writes_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    args = [
        "--data",
        str(data_dir),
        "--timeframe",
        "1d",
        "--symbols",
        "SOL/USDT",
        "--state-dir",
        str(tmp_path),
        "--json",
    ]
    # Given an empty local state, When the recorded SOL/USDT daily candles are ingested
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    # Then every bar went to the lake, one object per month of daily bars
    assert report["symbols"][0]["status"] == "ok"
    assert report["ingested"] > 700
    assert report["ingested"] / 31 <= report["objects_written"] <= report["ingested"] / 28 + 1
    # When run again (a new process: state comes back from the state dir)
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    again = json.loads(second.output)
    # Then nothing new is written
    assert (again["ingested"], again["objects_written"]) == (0, 0)
    assert again["symbols"][0]["status"] == "up_to_date"
    # And the lake outlives the process
    with embedded_aws(tmp_path, AwsResources()) as aws:
        days = S3ParquetLake(aws.resources.lake_bucket, aws.s3).days("binance", "1d", "SOL/USDT")
    assert len(days) == report["ingested"]


@pytest.mark.realdata
def test_unknown_symbols_fail_with_the_available_list(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--data", str(data_dir), "--symbols", "NOPE/USDT", "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "no recorded 1d candles for NOPE/USDT" in result.output
    assert not (tmp_path / "snapshot.json").exists()


def test_bad_timeframe_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--timeframe", "2d", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--timeframe must be 1h, 4h or 1d" in result.output


@pytest.mark.realdata
def test_a_truncated_candle_file_is_named_and_nothing_of_it_is_written(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given a copy of the recorded 1d candles where ETH/USDT's file is cut mid-array
    spot = tmp_path / "data" / "binance_spot" / "1d"
    spot.mkdir(parents=True)
    for name in ("ETH_USDT-1d.json", "SOL_USDT-1d.json"):
        (spot / name).write_bytes((data_dir / "binance_spot" / "1d" / name).read_bytes())
    (spot / "ETH_USDT-1d.json").write_bytes((spot / "ETH_USDT-1d.json").read_bytes()[:3000])
    state = tmp_path / "state"
    # When both pairs are ingested
    result = runner.invoke(
        app,
        ["--data", str(tmp_path / "data"), "--timeframe", "1d", "--symbols",
         "ETH/USDT,SOL/USDT", "--state-dir", str(state), "--json"],
    )  # fmt: skip
    # Then the run exits non-zero, naming the file; SOL/USDT is in the lake, ETH/USDT is not:
    # a damaged file is a quality rejection (stored with its code), not an exchange error
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    by_symbol = {o["symbol"]: o for o in report["symbols"]}
    assert by_symbol["ETH/USDT"]["status"] == "rejected"
    assert by_symbol["ETH/USDT"]["rejected_codes"] == {"UNREADABLE": 1}
    assert "ETH_USDT-1d.json" in by_symbol["ETH/USDT"]["reason"]
    assert by_symbol["ETH/USDT"]["ingested"] == 0
    assert by_symbol["SOL/USDT"]["ingested"] > 0
    with embedded_aws(state, AwsResources()) as aws:
        lake = S3ParquetLake(AwsResources().lake_bucket, aws.s3)
        assert lake.symbols("binance", "1d") == ["SOL/USDT"]
