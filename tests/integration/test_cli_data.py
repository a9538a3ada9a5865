"""`cst data check` on the real shared data (typer CliRunner)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli.data import app

pytestmark = pytest.mark.realdata

runner = CliRunner()


@pytest.fixture(scope="module")
def report(data_dir: Path) -> dict[str, object]:
    result = runner.invoke(app, ["check", "--data", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


def test_json_report_covers_every_source_with_reasons(report: dict[str, object]) -> None:
    # Given the full data dir, when checked, then every source is reported
    sources = {s["source"]: s for s in report["sources"]}  # type: ignore[attr-defined]
    assert set(sources) == {
        "coingecko",
        "binance_spot_1d",
        "binance_spot_4h",
        "binance_spot_1h",
        "binance_futures_mark_8h",
        "binance_futures_1h",
        "binance_futures_1d",
    }
    assert sources["coingecko"]["series"] == 572
    assert sources["coingecko"]["rows"] == 643_222
    # and each finding carries a code, a severity and a human reason
    findings = report["findings"]
    assert isinstance(findings, list)
    assert findings
    assert all(f["reason"] and f["severity"] in {"info", "warning", "error"} for f in findings)
    totals = report["totals"]
    assert isinstance(totals, dict)
    assert sum(totals.values()) == len(findings)
    # The known properties of the CoinGecko set are found, not hidden
    cg_codes = {f["code"] for f in findings if f["source"] == "coingecko"}
    assert {"STALE", "GAP", "SPIKE", "ZERO_VOLUME", "MISALIGNED"} <= cg_codes


def test_exclusion_rate_on_full_history_is_sane(report: dict[str, object]) -> None:
    sources = {s["source"]: s for s in report["sources"]}  # type: ignore[attr-defined]
    cg = sources["coingecko"]
    # A broken series is excluded, but most of the universe survives its whole history
    assert 0 < cg["excluded"] < 0.25 * cg["series"]


def test_asof_reads_nothing_later(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["check", "--data", str(data_dir), "--json", "--asof", "2019-01-01"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert all(s["asof"].startswith("2019-01-01") for s in payload["sources"])
    assert not [f for f in payload["findings"] if f["code"] == "FUTURE_TS"]


def test_table_output_names_sources_and_codes(data_dir: Path) -> None:
    result = runner.invoke(app, ["check", "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "coingecko" in result.stdout
    assert "SHORT_HISTORY" in result.stdout


def test_missing_dir_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "--data", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "nope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreadable_file_is_a_finding_naming_it_and_the_check_goes_on(
    data_dir: Path, tmp_path: Path
) -> None:
    # Given a data dir whose only spot file is truncated
    coins = tmp_path / "coingecko_daily" / "coins"
    coins.mkdir(parents=True)
    shutil.copy(data_dir / "coingecko_daily" / "coins" / "bitcoin.csv", coins)
    spot = tmp_path / "binance_spot" / "1d"
    spot.mkdir(parents=True)
    raw = (data_dir / "binance_spot" / "1d" / "BTC_USDT-1d.json").read_bytes()
    (spot / "BTC_USDT-1d.json").write_bytes(raw[:1000])
    # When checked
    result = runner.invoke(app, ["check", "--data", str(tmp_path), "--json"])
    # Then the file is an error finding of its source naming it, and every source is reported
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (finding,) = [f for f in report["findings"] if f["source"] == "binance_spot_1d"]
    assert finding["code"] == "UNREADABLE" and finding["severity"] == "error"
    assert finding["symbol"] == "BTC/USDT"
    assert "malformed or truncated JSON" in finding["reason"]
    sources = {s["source"]: s for s in report["sources"]}
    assert sources["coingecko"]["series"] == 1 and sources["binance_spot_1d"]["excluded"] == 1
    # and the missing folders are findings too, not a stop
    missing = [f for f in report["findings"] if f["source"] == "binance_spot_4h"]
    assert missing and "missing folder" in missing[0]["reason"]


def test_bad_asof_is_refused(data_dir: Path) -> None:
    result = runner.invoke(app, ["check", "--data", str(data_dir), "--asof", "2019/01/01"])
    assert result.exit_code != 0
    assert "YYYY-MM-DD" in result.stderr
