"""`cst killswitch`: on/off/status through the embedded local AWS, state kept between runs."""

from __future__ import annotations

import json
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
