"""Chaos suite: each scenario injects a real fault on loopback infrastructure and checks recovery.

One lab (a moto server on 127.0.0.1) serves the module; every scenario uses fresh tables, so the
tests do not depend on their order. The memory and disk scenarios start child processes
(``cst scan`` / the scan Lambda handler under RLIMIT_AS / RLIMIT_FSIZE) and are marked slow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.cli import app
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer
from cst_devtools.chaos import (
    ScenarioResult,
    audit_orders,
    cli_scan_rows,
    control_decisions,
    scenario_database,
    scenario_disk,
    scenario_execution,
    scenario_killswitch,
    scenario_load,
    scenario_memory,
    scenario_network,
    scenario_upstream,
)
from cst_devtools.faults import LocalChaosLab
from tests.support.sdk_waits import without_retry_waits

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def lab(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalChaosLab]:
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    with LocalChaosLab(data_dir, analyzer, tmp_path_factory.mktemp("chaos")) as running:
        yield running


@pytest.fixture(scope="module")
def expected(lab: LocalChaosLab) -> set[str]:
    decisions = control_decisions(lab)
    assert decisions, "the control scan on 2021-05-01 must place orders for the checks to mean much"
    return decisions


@pytest.fixture(scope="module")
def database(lab: LocalChaosLab, expected: set[str]) -> ScenarioResult:
    # the SDK still retries every throttled or refused call, without waiting between attempts
    with pytest.MonkeyPatch.context() as patch:
        without_retry_waits(patch)
        return scenario_database(lab, expected)


def test_audit_counts_lost_and_duplicated_orders() -> None:
    # Given three approved decisions, two stored orders and one decision created twice
    expected, stored, created = {"a", "b", "c"}, {"a", "b"}, ["a", "b", "b"]

    # When the orders are audited
    lost, duplicated, details = audit_orders(expected, stored, created)

    # Then one is lost (c) and one duplicated (b)
    assert (lost, duplicated) == (1, 1)
    assert details["lost_ids"] == ["c"] and details["duplicated_ids"] == ["b"]


def test_the_disk_audit_reads_the_rows_of_cst_scan_json(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the output of `cst scan --json` (one report object, its decisions under `rows`)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    scanned = CliRunner().invoke(
        app,
        [
            "scan",
            "--data",
            str(data_dir),
            "--asof",
            "2021-05-01",
            "--top",
            "5",
            "--json",
            "--state-dir",
            str(tmp_path / "st"),
        ],
    )
    assert scanned.exit_code == 0, scanned.output

    # When the disk scenario reads the rows it audits
    rows = cli_scan_rows(scanned.stdout)

    # Then they are the report's rows, the orders it created among them
    assert rows == json.loads(scanned.stdout)["rows"]
    assert [r for r in rows if r.get("order_outcome") == "created"]


def test_network_resets_and_timeouts_are_retried_then_the_breaker_protects(
    lab: LocalChaosLab,
) -> None:
    # Given ingestion through a real ccxt client to a loopback exchange
    # When connections are reset / hang past the timeout, briefly and then persistently
    result = scenario_network(lab)

    # Then brief faults are absorbed, persistent ones open the breaker with nothing written,
    # and after the cool-down the lake holds exactly the source candles
    assert result.passed, result.details
    persistent = result.details["persistent"]
    assert persistent["breaker_states"] == ["closed", "closed", "open"]
    assert persistent["after_recovery"]["candles_missing"] == 0
    assert result.recovery_seconds is not None and result.recovery_seconds > 0


def test_upstream_5xx_429_and_malformed_payloads(lab: LocalChaosLab) -> None:
    # Given the same ingestion path
    # When the exchange answers 503/429, an invalid candle, a cut body, then 502 persistently
    result = scenario_upstream(lab)

    # Then the invalid candle is rejected with its reason, nothing is half-written, the breaker
    # opens on the 5xx streak and ingestion catches up after it
    assert result.passed, result.details
    assert result.details["negative_price"]["status"] == "exchange_error"
    assert "low must be > 0" in result.details["negative_price"]["reason"]
    assert result.details["persistent"]["skipped_reason"].startswith("circuit breaker open")


def test_load_bursts_of_concurrent_scans_order_exactly_once(
    lab: LocalChaosLab, expected: set[str]
) -> None:
    # When bursts of concurrent scans decide the same orders
    result = scenario_load(lab, expected)

    # Then each decision has exactly one order and every scan saw all of them
    assert result.passed, result.details
    assert result.details["scans"] == lab.load_threads * lab.load_bursts
    assert result.details["stored_orders"] == len(expected)
    assert (result.orders_lost, result.orders_duplicated) == (0, 0)


def test_database_throttling_is_retried_and_an_outage_before_the_run_recovers(
    database: ScenarioResult,
) -> None:
    # When DynamoDB throttles, and when it is down as the invocation starts
    result = database
    checks = result.details["checks"]

    # Then the SDK's retries absorb the throttling, and the failed invocation's retry completes
    # every decision exactly once
    assert checks["throttling: the run completed through SDK retries"]
    assert result.details["throttling"]["lost_ids"] == []
    for name in (
        "outage_before_run: the faulted invocation failed",
        "outage_before_run: the retried invocation completed",
        "outage_before_run: no decision lost or doubled",
    ):
        assert checks[name], result.details["outage_before_run"]


def test_database_outage_at_the_order_write_loses_no_order(
    database: ScenarioResult,
) -> None:
    # When DynamoDB goes down at the first order write
    result = database

    # Then the retried invocation still records every decision
    assert result.details["outage_mid_order"]["lost_ids"] == []
    assert result.passed


@pytest.mark.slow
def test_memory_pressure_fails_cleanly_then_completes_at_the_lambda_memory(
    lab: LocalChaosLab, expected: set[str]
) -> None:
    # When the scan handler runs under 3/4 of the Lambda memory, then under the Lambda memory
    result = scenario_memory(lab, expected)

    # Then the starved run dies without half-written state and the full run places every order
    assert result.passed, result.details
    assert result.details["starved"]["outcome"] != "completed"
    assert result.details["configured"]["peak_kib"]["VmPeak"] <= lab.lambda_memory_mb * 1024


def _without_second_venue_hours(data_dir: Path, into: Path) -> Path:
    """``data_dir`` as links, without KuCoin's hourly candles: the three `cst scan` children of
    the disk scenario then skip parsing them (a quarter of each child's CPU). Only the
    arbitrage agent reads them, and on the scenario's day it abstains either way (no complete
    KuCoin hour in the two days before), so the decisions and their orders are the same."""
    into.mkdir()
    for entry in data_dir.iterdir():
        if entry.name != "kucoin_spot":
            (into / entry.name).symlink_to(entry)
    (into / "kucoin_spot").mkdir()
    for entry in (data_dir / "kucoin_spot").iterdir():
        if entry.name != "1h":
            (into / "kucoin_spot" / entry.name).symlink_to(entry)
    return into


@pytest.mark.slow
def test_disk_full_never_corrupts_the_state_snapshot(
    lab: LocalChaosLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the recorded data without the hours the scenario's decisions do not read
    monkeypatch.setattr(lab, "data_dir", _without_second_venue_hours(lab.data_dir, tmp_path / "d"))

    # When `cst scan` cannot write its snapshot (RLIMIT_FSIZE below the new snapshot's size)
    result = scenario_disk(lab)

    # Then it fails with EFBIG, the last good snapshot is intact, and a rerun records everything
    assert result.passed, result.details
    assert "File too large" in result.details["faulted"]
    sizes = result.details["snapshot_bytes"]
    assert sizes["after_failure"] == sizes["before"] < sizes["after_rerun"]


def test_cli_reports_each_scenario_as_json(data_dir: Path) -> None:
    # When `cst chaos run --json` runs one scenario
    result = CliRunner().invoke(
        app, ["chaos", "run", "--json", "--scenario", "load", "--data", str(data_dir)]
    )

    # Then it exits 0 and reports the contract's fields for it
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"] is True
    (scenario,) = report["scenarios"]
    assert scenario["scenario"] == "load"
    assert {"passed", "recovery_seconds", "orders_lost", "orders_duplicated", "details"} <= set(
        scenario
    )
    assert scenario["orders_lost"] == scenario["orders_duplicated"] == 0


def test_cli_rejects_an_unknown_scenario(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["chaos", "run", "--scenario", "meteor"])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output


def test_kill_switch_and_risk_state_faults_never_lose_a_stop(lab: LocalChaosLab) -> None:
    # Given fresh resources on the lab's moto server
    # When SSM throttles the alarm function's read, then its write; the execution's switch
    # write fails during an escalation; and the risk state item is deleted
    result = scenario_killswitch(lab)

    # Then every stop is made: the alarm writes the switch despite the unknown read, a failed
    # write fails the invocation and its retry engages it, the escalation is not stored
    # without the switch and the next cycle stores both, and SHUTDOWN comes back from the log
    assert result.passed, result.details
    phases = result.details
    assert phases["alarm_read_throttled"]["action"] == "killswitch.on"
    assert "ThrottlingException" in phases["alarm_write_throttled"]["first_invocation"]
    assert phases["alarm_write_throttled"]["switch_on_between"] is False
    assert phases["escalation_switch_write_failed"]["level_after_fault"] == "NORMAL"
    assert phases["escalation_switch_write_failed"]["level"] == "SHUTDOWN"
    assert phases["risk_state_item_deleted"]["rebuilt_level"] == "SHUTDOWN"
    assert result.orders_lost == result.orders_duplicated == 0


@pytest.mark.slow
def test_execution_faults_keep_every_order_exactly_once(lab: LocalChaosLab) -> None:
    # Given the hourly execution cycle on the lab's moto server over the lake's real timing
    # When the kill-switch read is throttled, the venue fails a lookup during the kill-switch
    # sweep, its acknowledgements cannot be parsed, it shows orders only after the grace period,
    # and an EMERGENCY flatten runs while the CLOSEs wait for their bar
    result = scenario_execution(lab)

    # Then nothing is lost or doubled: nothing destroyed on an unknown switch, every cancel
    # sent, no accepted order recorded REJECTED, late fills applied once, one sell per position
    assert result.passed, result.details
    assert (result.orders_lost, result.orders_duplicated) == (0, 0)
    flatten = result.details["flatten_lake_lag"]
    assert flatten["flattened_per_cycle"][1:] == [0, 0, 0]
    assert set(flatten["sells"].values()) == {1}
