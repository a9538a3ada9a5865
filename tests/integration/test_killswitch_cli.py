"""`cst killswitch`: on/off/status through the embedded local AWS, state kept between runs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli.killswitch import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("CST_STATE_DIR", str(tmp_path / "state"))


def _status() -> dict[str, dict[str, object]]:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, dict[str, object]] = json.loads(result.output)
    return payload


def test_on_then_status_in_a_later_run_shows_it_with_reason_and_actor() -> None:
    # Given a fresh state: off
    assert _status()["kill_switch"]["on"] is False
    # When an operator turns it on
    result = runner.invoke(app, ["on", "--reason", "exchange incident", "--actor", "alice"])
    assert result.exit_code == 0, result.output
    assert "ON" in result.output
    # Then a later `status` (a new process, same state dir) shows who, why and the level
    status = _status()
    assert status["kill_switch"]["on"] is True
    assert (status["kill_switch"]["reason"], status["kill_switch"]["actor"]) == (
        "exchange incident",
        "alice",
    )
    assert status["risk_level"]["level"] == "NORMAL"
    # When turned off, Then off
    assert runner.invoke(app, ["off", "--reason", "resolved", "--actor", "alice"]).exit_code == 0
    assert _status()["kill_switch"]["on"] is False


def test_reason_is_required_and_nothing_changes_without_it() -> None:
    missing = runner.invoke(app, ["on"])
    empty = runner.invoke(app, ["on", "--reason", "  "])
    assert missing.exit_code != 0 and empty.exit_code == 2
    assert "reason" in empty.output
    assert _status()["kill_switch"]["on"] is False


def test_level_command_records_the_human_and_rejects_bad_levels() -> None:
    ok = runner.invoke(app, ["level", "--to", "shutdown", "--reason", "drill", "--actor", "bob"])
    assert ok.exit_code == 0, ok.output
    assert _status()["risk_level"]["level"] == "SHUTDOWN"
    bad = runner.invoke(app, ["level", "--to", "panic", "--reason", "x", "--actor", "bob"])
    assert bad.exit_code == 2 and "NORMAL" in bad.output
    # setting the level that holds is idempotent: nothing recorded, the first reason stays
    same = runner.invoke(app, ["level", "--to", "SHUTDOWN", "--reason", "x", "--actor", "bob"])
    assert same.exit_code == 0 and "already SHUTDOWN" in same.output
    assert _status()["risk_level"]["reason"] == "drill"
    back = runner.invoke(app, ["level", "--to", "DEFENSIVE", "--reason", "done", "--actor", "bob"])
    assert back.exit_code == 0
    assert _status()["risk_level"]["reason"] == "done"


def _audit_entries(state: Path) -> list[dict[str, object]]:
    from cryptosmarttrader.adapters.audit import DynamoAuditTrail
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    with embedded_aws(state, AwsResources()) as aws:
        trail = DynamoAuditTrail(aws.resources.state_table, aws.dynamodb)
        return [e.model_dump(mode="json") for e in reversed(trail.recent())]


def test_every_cli_change_is_audited_with_the_asserted_actor_and_the_os_user(
    tmp_path: Path,
) -> None:
    # When an operator turns the switch on, off, and moves the risk level
    assert runner.invoke(app, ["on", "--reason", "incident", "--actor", "alice"]).exit_code == 0
    assert runner.invoke(app, ["off", "--reason", "resolved", "--actor", "alice"]).exit_code == 0
    ok = runner.invoke(app, ["level", "--to", "DEFENSIVE", "--reason", "drill", "--actor", "bob"])
    assert ok.exit_code == 0, ok.output

    # Then each change has its own audit entry: who (as asserted), the OS user, what and why
    entries = _audit_entries(tmp_path / "state")
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("alice", "killswitch.on"),
        ("alice", "killswitch.off"),
        ("bob", "risk.override"),
    ]
    on, off, level = (e["details"] for e in entries)
    assert isinstance(on, dict) and isinstance(off, dict) and isinstance(level, dict)
    assert on["via"] == "cli" and "os_user" in on
    assert (on["reason"], on["previous_on"], on["on"]) == ("incident", False, True)
    assert (off["previous_on"], off["on"]) == (True, False)
    assert (level["from_level"], level["to_level"]) == ("NORMAL", "DEFENSIVE")


@pytest.mark.parametrize(
    "reason", ["ok\x1b[2K\rkill-switch: off", "resume \u202eNO\u202c", "two\nlines"]
)
def test_a_reason_with_control_characters_is_refused_with_nothing_changed(
    reason: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["on", "--reason", reason, "--actor", "alice"])

    assert result.exit_code == 2
    assert "--reason contains U+" in result.output
    assert "control and formatting characters are not allowed" in result.output
    assert _status()["kill_switch"]["on"] is False
    assert _audit_entries(tmp_path / "state") == []


def test_an_oversized_reason_is_refused() -> None:
    result = runner.invoke(app, ["on", "--reason", "x" * 501, "--actor", "alice"])
    assert result.exit_code == 2 and "at most 500 allowed" in result.output
    assert _status()["kill_switch"]["on"] is False


def test_status_escapes_control_characters_written_around_the_cli(tmp_path: Path) -> None:
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    # Given a value written straight to SSM (no CLI/API check) that tries to paint "off"
    hostile = {"on": True, "reason": "x\r\x1b[2Kkill-switch: off", "actor": "mallory",
               "at": "2024-03-01T12:00:00Z"}  # fmt: skip
    with embedded_aws(tmp_path / "state", AwsResources()) as aws:
        aws.ssm.put_parameter(
            Name=aws.resources.kill_switch_param, Value=json.dumps(hostile), Type="String",
            Overwrite=True,
        )  # fmt: skip

    # When an operator looks at the status
    result = runner.invoke(app, ["status"])

    # Then the line says ON and shows the control characters as escapes, not as effects
    assert result.exit_code == 0
    first = result.output.splitlines()[0]
    assert first.startswith("kill-switch: ON")
    assert "\x1b" not in result.output and "\r" not in result.output
    assert "\\r\\x1b[2Kkill-switch: off" in first


def test_status_reads_the_saved_state_exactly_as_the_embedded_aws_would(tmp_path: Path) -> None:
    from cryptosmarttrader.cli.killswitch import _saved_status_payload, _status_payload
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    state = tmp_path / "state"
    # Given a switch turned on and a level set by hand in earlier runs
    assert runner.invoke(app, ["on", "--reason", "venue down", "--actor", "al"]).exit_code == 0
    assert runner.invoke(app, ["level", "--to", "EMERGENCY", "--reason", "drill"]).exit_code == 0
    # When status is read from the saved state (no moto) and through the embedded AWS
    fast = _saved_status_payload(state, AwsResources())
    with embedded_aws(state, AwsResources(), lake=False) as aws:
        full = _status_payload(aws)
    # Then both say the same, field for field
    assert fast == full
    assert fast is not None and fast["risk_level"]["level"] == "EMERGENCY"


def test_status_waits_for_a_command_that_holds_the_state_and_shows_what_it_set(
    tmp_path: Path,
) -> None:
    import threading
    import time

    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    state = tmp_path / "state"
    assert runner.invoke(app, ["off", "--reason", "start", "--actor", "al"]).exit_code == 0
    engaged = threading.Event()

    def cycle() -> None:  # a command (e.g. an execution cycle) whose RiskGuard engages the switch
        with embedded_aws(state, AwsResources(), lake=False) as aws:
            res = aws.resources
            SsmKillSwitch(res.kill_switch_param, aws.ssm, SystemClock()).set(
                True, "RiskGuard EMERGENCY: drawdown", "system:riskguard"
            )
            engaged.set()
            time.sleep(1.5)  # still running: nothing saved yet

    holder = threading.Thread(target=cycle)
    holder.start()
    assert engaged.wait(60)
    # When status runs while that command holds the state
    result = runner.invoke(app, ["status", "--json"])
    holder.join()
    # Then it waited for it and shows the switch it set, never the stale saved OFF
    assert result.exit_code == 0, result.output
    assert "waiting" in result.stderr
    assert json.loads(result.stdout)["kill_switch"]["on"] is True


def test_status_answers_at_once_while_cst_api_serve_holds_the_state(tmp_path: Path) -> None:
    from cryptosmarttrader.adapters.local_snapshot import saves_every_write
    from cst_devtools.local_aws import _state_lock

    state = tmp_path / "state"
    assert runner.invoke(app, ["on", "--reason", "venue down", "--actor", "al"]).exit_code == 0
    # Given a holder that saves after every write (as `cst api serve` does)
    with _state_lock(state, 1.0), saves_every_write(state):
        # When status runs, Then it answers from the saved state at once
        assert _status()["kill_switch"]["on"] is True


def test_a_switch_name_the_saved_state_never_held_is_read_like_every_command_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptosmarttrader.cli.killswitch import _status_payload
    from cryptosmarttrader.settings import AwsResources
    from cst_devtools.local_aws import embedded_aws

    assert runner.invoke(app, ["on", "--reason", "venue down", "--actor", "al"]).exit_code == 0
    monkeypatch.setenv("CST_KILL_SWITCH_PARAM", "/cst/other")
    shown = _status()
    with embedded_aws(tmp_path / "state", AwsResources(), lake=False) as aws:
        full = _status_payload(aws)
    assert shown["kill_switch"] == full["kill_switch"]  # (no stored level: "since" is now)
    assert shown["risk_level"]["level"] == full["risk_level"]["level"]


def test_a_damaged_saved_state_is_a_clear_error_not_a_status(tmp_path: Path) -> None:
    assert runner.invoke(app, ["on", "--reason", "venue down", "--actor", "al"]).exit_code == 0
    snapshot = tmp_path / "state" / "snapshot.json"
    data = json.loads(snapshot.read_text(encoding="utf-8"))
    snapshot.write_text("{not json", encoding="utf-8")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "snapshot" in result.output and "ON" not in result.output
    # an entry that does not decode is the same one-line error, never a traceback
    data["tables"]["cst-state"] = [{"pk": {"S": "risk", "N": "1"}, "sk": {"S": "current"}}]
    snapshot.write_text(json.dumps(data), encoding="utf-8")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2 and "invalid entry" in result.output, result.output


def test_the_cli_cannot_write_a_go_live_rollback_switch() -> None:
    from cryptosmarttrader.adapters.killswitch_value import KillSwitchStatus
    from tests.support.killswitch import rollback_engaged_of

    # When an operator types the rollback's reason
    typed = runner.invoke(app, ["on", "--reason", "go-live r-1 rollback: by hand", "--actor", "al"])
    assert typed.exit_code == 0, typed.output
    # Then the switch is the operator's: no marker, so its sweeps cancel every order
    shown = _status()["kill_switch"]
    assert shown["golive_rollback"] is None
    status = KillSwitchStatus(on=True, reason=str(shown["reason"]), actor=str(shown["actor"]),
                              at=datetime.fromisoformat(str(shown["at"])))  # fmt: skip
    assert not rollback_engaged_of(status)
    # and the go-live steps' actor (or any system writer's) is refused, nothing written
    for actor in ("system:golive", "System:riskguard"):
        forged = runner.invoke(app, ["on", "--reason", "go-live r-1 rollback: x", "--actor", actor])
        assert forged.exit_code == 2, forged.output
        assert "system: prefix names the system's writers" in forged.output
    assert _status()["kill_switch"]["actor"] == "al"


def test_the_text_status_names_a_go_live_rollbacks_switch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cryptosmarttrader.cli.killswitch import _print

    # Given a switch the go-live rollback of run r-7 holds, and one an operator holds
    def payload(marker: str | None) -> dict[str, dict[str, object]]:
        return {
            "kill_switch": {"on": True, "reason": "go-live r-7 rollback: SLO breach",
                            "actor": "system:golive", "at": "2026-12-05T00:00:00+00:00",
                            "golive_rollback": marker},
            "risk_level": {"level": "NORMAL", "since": "2026-12-05T00:00:00+00:00", "reason": "-"},
        }  # fmt: skip

    # When the status is printed as text
    _print(payload("r-7"), as_json=False)
    marked = capsys.readouterr().out
    _print(payload(None), as_json=False)
    plain = capsys.readouterr().out
    # Then the rollback's switch says so (its sweeps keep the protective sells); the other does not
    assert "go-live rollback of run r-7: held positions keep their protective sells" in marked
    assert "go-live rollback" not in plain
