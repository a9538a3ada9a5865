"""`cst golive start|status|rollback` over the embedded local AWS (state in a temp dir)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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


def test_start_with_the_design_durations_returns_at_once_and_blocks_nothing(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"AWS_ENDPOINT_URL"}}
    env.pop("CST_GOLIVE_STATE_MACHINE_ARN", None)
    cst = [sys.executable, "-c", "from cryptosmarttrader.cli import app; app()"]
    state = ["--state-dir", str(tmp_path)]
    # When go-live starts with its defaults (staging 7 days, canary 72 hours)
    started = subprocess.run(
        [*cst, "golive", "start", "--version", "v2", "--previous-version", "v1",
         "--run-id", "bg-run", "--json", *state],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    # Then it returns at once with the run id, staging running and the gate due in 7 days
    assert started.returncode == 0, started.stderr
    report = json.loads(started.stdout)
    assert report["run"]["run_id"] == "bg-run"
    assert (report["run"]["status"], report["run"]["stage"]) == ("RUNNING", "staging")
    assert report["run"]["params"]["staging_seconds"] == 7 * 24 * 3600
    assert report["run"]["params"]["canary_seconds"] == 72 * 3600
    step = report["next_step"]
    due = datetime.fromisoformat(step["due_at"])
    assert step["step"] == "staging SLO gate"
    assert timedelta(days=6, hours=23) < due - datetime.now(UTC) <= timedelta(days=7)
    # And other commands run meanwhile (no process holds the state lock)
    switch = subprocess.run(
        [*cst, "killswitch", "status", "--json", *state],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert switch.returncode == 0, switch.stderr


def test_status_runs_each_step_once_it_is_due(runner: CliRunner, tmp_path: Path) -> None:
    import time_machine

    state = ["--state-dir", str(tmp_path)]
    started = runner.invoke(
        app, ["golive", "start", "--version", "v2", "--previous-version", "v1",
              "--run-id", "due-run", "--json", *state],
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    # Given a day later: the staging gate is not due yet
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1), tick=True):
        early = json.loads(runner.invoke(app, ["golive", "status", "--json", *state]).stdout)
    assert early["run"]["stage"] == "staging" and early["slo_evaluations"] == []
    assert early["next_step"]["step"] == "staging SLO gate"
    # When `status` runs after the 7 days of staging
    with time_machine.travel(datetime.now(UTC) + timedelta(days=7, minutes=1), tick=True):
        late = json.loads(runner.invoke(app, ["golive", "status", "--json", *state]).stdout)
    # Then the gate ran (here on no measured data: it fails closed and rolls back)
    assert [e["stage"] for e in late["slo_evaluations"]] == ["staging"]
    assert late["run"]["status"] == "ROLLED_BACK"
    assert "StagingSloBreach" in late["run"]["reason"] and "no data" in late["run"]["reason"]
    assert late["next_step"] is None


def test_start_against_a_deployed_stack_starts_its_state_machine(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="GoLive",
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        monkeypatch.setenv("CST_GOLIVE_STATE_MACHINE_ARN", machine)
        result = runner.invoke(
            app, ["golive", "start", "--version", "v2", "--previous-version", "v1",
                  "--run-id", "deployed-run", "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["execution_arn"].endswith(":execution:GoLive:deployed-run")
        described = sfn.describe_execution(executionArn=report["execution_arn"])
        sent = json.loads(described["input"])
        assert sent["version"] == "v2" and sent["staging_seconds"] == 7 * 24 * 3600
        assert "run_id" not in sent  # the machine's run id is its execution name


def test_manual_rollback_of_a_run_id_no_run_can_have_is_refused_before_anything_changes(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CST_GOLIVE_STATE_MACHINE_ARN", raising=False)
    # When an operator names a run id no go-live run can have (a space, a dot)
    result = runner.invoke(
        app,
        ["golive", "rollback", "--run-id", "run 7.a", "--reason", "fills drift",
         "--state-dir", str(tmp_path)],
    )  # fmt: skip
    # Then the command refuses it by name (exit 2, no traceback), and nothing changed
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "--run-id" in result.output
    switch = runner.invoke(app, ["killswitch", "status", "--state-dir", str(tmp_path), "--json"])
    assert json.loads(switch.stdout)["kill_switch"]["on"] is False
