"""`cst golive start|status|rollback` over the embedded local AWS (state in a temp dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app

HEALTHY = {
    "ProbeSuccess": [1000],
    "ProbeFailure": [1],
    "DecisionLatency": [120, 300, 450, 800],
    "StrategyReturnBps": [10, -5, 7],
    "ReferenceReturnBps": [9, -4, 8],
    "Requests": [5000],
    "Errors": [2],
}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key in ("AWS_ENDPOINT_URL", "CST_GOLIVE_TOPIC_ARN"):
        monkeypatch.delenv(key, raising=False)
    return CliRunner()


def _start(runner: CliRunner, state: Path, metrics: dict[str, object]) -> tuple[int, dict]:
    samples = state / "samples.json"
    samples.parent.mkdir(parents=True, exist_ok=True)
    samples.write_text(json.dumps(metrics))
    result = runner.invoke(
        app,
        ["golive", "start", "--version", "v2", "--previous-version", "v1",
         "--staging-seconds", "0", "--canary-seconds", "0", "--slo-window-seconds", "600",
         "--metrics", str(samples), "--run-id", "cli-run", "--state-dir", str(state), "--json"],
    )  # fmt: skip
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_start_promotes_and_status_shows_it_in_a_later_process(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Given healthy sample metrics for both stages
    # When the local go-live runs
    code, report = _start(runner, tmp_path, {"staging": HEALTHY, "canary": HEALTHY})

    # Then it reaches production with both gates passed
    assert code == 0, report
    assert report["run"]["status"] == "SUCCEEDED"
    assert [t["to_stage"] for t in report["transitions"]] == ["staging", "canary", "production"]
    assert report["live_version"]["version"] == "v2"

    # And a later `status` (a new embedded AWS loaded from the snapshot) shows the same run
    status = runner.invoke(app, ["golive", "status", "--state-dir", str(tmp_path), "--json"])
    assert status.exit_code == 0, status.output
    shown = json.loads(status.stdout)
    assert shown["run"]["run_id"] == "cli-run"
    assert [e["passed"] for e in shown["slo_evaluations"]] == [True, True]


def test_start_without_metrics_fails_closed_and_rolls_back(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Given no metrics at all
    # When the local go-live runs
    code, report = _start(runner, tmp_path, {})

    # Then the staging gate fails for lack of data and the run is rolled back (exit 1)
    assert code == 1
    assert report["run"]["status"] == "ROLLED_BACK"
    assert "no data" in report["run"]["reason"]
    switch = runner.invoke(app, ["killswitch", "status", "--state-dir", str(tmp_path), "--json"])
    assert '"on": true' in switch.stdout


def test_manual_rollback_records_the_reason(runner: CliRunner, tmp_path: Path) -> None:
    # Given a promoted run
    _start(runner, tmp_path, {"staging": HEALTHY, "canary": HEALTHY})

    # When an operator rolls it back
    result = runner.invoke(
        app,
        ["golive", "rollback", "--run-id", "cli-run", "--reason", "fills drift",
         "--state-dir", str(tmp_path), "--json"],
    )  # fmt: skip

    # Then the run is rolled back with the reason and the previous version is live again
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["run"]["status"] == "ROLLED_BACK"
    assert "ManualRollback: fills drift" in report["run"]["reason"]
    assert report["live_version"]["version"] == "v1"
    assert report["transitions"][-1]["from_stage"] == "production"
