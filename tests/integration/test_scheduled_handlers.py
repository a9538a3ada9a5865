"""Every scheduled function on a brand-new stack, on the real clock, as EventBridge invokes it.

A scheduled invocation that cannot do its job is an error: it counts in the stage's ``Errors``
SLI and raises, so Lambda counts it too (and retries, then dead-letters it). Only a malformed or
refused *request* from a caller is a rejection (``Errors`` 0). Handlers run in-process against
moto (the deployed path: lake, tables, kill-switch parameter), with their production
``SystemClock``; no ``at`` / ``asof`` field unless the test is about one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.cli import app
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from cst_devtools.moto_shims import emf_points, emf_records


@dataclass
class Context:
    function_name: str
    aws_request_id: str = "req-scheduled"
    memory_limit_in_mb: int = 1024

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"


def _forget() -> None:
    from cryptosmarttrader.handlers import _common, drift, execute, health_probe, ingest, scan

    _common.reset_caches()
    scan._service.cache_clear()
    execute._market.cache_clear()
    ingest._source.cache_clear()
    drift._service.cache_clear()
    health_probe._service.cache_clear()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """A brand-new deployed stack (lake, tables, kill-switch), functions reading the lake."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CST_DATA_SOURCE": "ccxt",
        "CST_EXCHANGE": "binance",
        "CST_STAGE": "staging",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "CST_DATA_DIR", "CST_ALLOW_REPLAYS"):
        monkeypatch.delenv(key, raising=False)
    _forget()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        yield clients
    _forget()


def _invoke(module: str, event: dict[str, Any]) -> tuple[dict[str, Any] | Exception, list[Any]]:
    """(the handler's answer or the exception it raised, the EMF points it printed)."""
    import importlib

    handler = importlib.import_module(f"cryptosmarttrader.handlers.{module}").handler
    out = io.StringIO()
    result: dict[str, Any] | Exception
    with redirect_stdout(out):
        try:
            result = handler(event, Context(f"cst-{module}"))
        except Exception as exc:  # noqa: BLE001 - the Lambda runtime's boundary
            result = exc
    return result, emf_points(emf_records(out.getvalue()))


def _sli(points: list[Any], name: str) -> float:
    return sum(
        p["value"] for p in points if p["name"] == name and p["dimensions"] == {"Stage": "staging"}
    )


# ----------------------------------------------------------------------- execution


def test_scheduled_execution_on_a_fresh_stack_completes_and_says_it_has_no_market_data(
    stack: AwsClients,
) -> None:
    # Given a brand-new stack: no risk state, an empty lake
    # When the hourly rule delivers its constant input {} (the real clock, no `at`)
    result, points = _invoke("execute", {})

    # Then the cycle completes (never `rejected`), publishes the risk level
    assert isinstance(result, dict), result
    assert result["status"] == "ok", result
    report = result["report"]
    assert "RiskLevel" in {p["name"] for p in points}
    # and says clearly that there is no fresh market data to trade on
    assert report["market_data_fresh"] is False
    assert "no fresh market data" in report["market_data"]
    assert _sli(points, "Requests") == 1 and _sli(points, "Errors") == 0

    # And the next hour's cycle on the same stack completes too (the stored state moves forward)
    again, _ = _invoke("execute", {})
    assert isinstance(again, dict) and again["status"] == "ok", again


def test_a_replay_instant_is_refused_by_a_deployment_that_does_not_allow_replays(
    stack: AwsClients,
) -> None:
    # Given a deployed execution function (replays not allowed: the default)
    at = (datetime.now(UTC) - timedelta(days=400)).isoformat()

    # When a caller asks it to replay a past instant
    result, points = _invoke("execute", {"at": at})

    # Then it refuses with a clear reason, touches nothing and counts no error
    assert isinstance(result, dict) and result["status"] == "rejected", result
    assert "replays are not allowed" in result["error"]
    assert "CST_ALLOW_REPLAYS" in result["error"]
    assert _sli(points, "Errors") == 0
    assert "RiskLevel" not in {p["name"] for p in points}


def test_a_replay_deployment_honours_the_replay_instant(
    stack: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_ALLOW_REPLAYS", "true")
    _forget()
    at = datetime(2022, 9, 29, 2, 10, tzinfo=UTC)
    result, _ = _invoke("execute", {"at": at.isoformat()})
    assert isinstance(result, dict) and result["status"] == "ok", result
    assert result["report"]["at"].startswith("2022-09-29T02:10")


def test_cst_execute_without_at_runs_on_a_fresh_state_dir(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fresh clone's state (no risk state yet) and the recorded data (ends in 2022)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # When `cst execute` runs on the real clock
    result = CliRunner().invoke(
        app, ["execute", "--state-dir", str(tmp_path / "st"), "--data", str(data_dir)]
    )
    # Then the cycle completes and says it has no fresh market data
    assert result.exit_code == 0, result.output
    assert "no fresh market data" in result.output
    assert "risk level" in result.output


# ----------------------------------------------------------------------- scan


def test_scheduled_scan_without_market_data_is_an_error_that_says_what_it_lacks(
    stack: AwsClients,
) -> None:
    # Given an empty lake (the ingest never ran)
    # When the daily rule delivers {"top_n": 20}
    result, points = _invoke("scan", {"top_n": 20})

    # Then the invocation fails (Lambda counts it, retries, alarms), naming what is missing
    assert isinstance(result, Exception), result
    assert "no market data" in str(result)
    assert _sli(points, "Requests") == 1 and _sli(points, "Errors") == 1


def test_a_scan_request_for_a_future_date_is_a_rejection_not_an_error(stack: AwsClients) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    result, points = _invoke("scan", {"top_n": 5, "asof": future})
    assert isinstance(result, dict) and result["status"] == "rejected", result
    assert "future" in result["error"]
    assert _sli(points, "Errors") == 0


# ----------------------------------------------------------------------- ingest


def test_a_scheduled_ingest_the_deployment_cannot_serve_is_an_error(
    stack: AwsClients, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a replay deployment (recorded Binance candles) scheduled to ingest Kraken
    monkeypatch.setenv("CST_DATA_SOURCE", "recorded")
    monkeypatch.setenv("CST_DATA_DIR", str(data_dir))
    _forget()
    event = {"exchange": "kraken", "timeframe": "1h", "symbols": ["BTC/USD"]}
    result, points = _invoke("ingest", event)
    # Then the invocation fails, saying why, and counts as an error
    assert isinstance(result, Exception), result
    assert "binance and kucoin spot data only, not kraken" in str(result)
    assert _sli(points, "Requests") == 1 and _sli(points, "Errors") == 1


def test_a_replay_asof_on_a_live_ingest_is_a_rejection(stack: AwsClients) -> None:
    event = {
        "exchange": "binance",
        "timeframe": "1h",
        "symbols": ["BTC/USDT"],
        "replay_asof": "2022-01-01T00:00:00Z",
    }
    result, points = _invoke("ingest", event)
    assert isinstance(result, dict) and result["status"] == "rejected", result
    assert "CST_DATA_SOURCE=recorded" in result["error"]
    assert _sli(points, "Errors") == 0


def test_scheduled_market_caps_on_a_replay_deployment_without_data_dir_is_an_error(
    stack: AwsClients, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CST_DATA_SOURCE", "recorded")
    monkeypatch.setenv("CST_DATA_DIR", str(tmp_path / "missing"))
    _forget()
    event = {"dataset": "market_caps", "exchange": "binance", "symbols": ["BTC/USDT"]}
    result, points = _invoke("ingest", event)
    assert isinstance(result, Exception), result
    assert "missing" in str(result)
    assert _sli(points, "Errors") == 1


# ----------------------------------------------------------------------- drift, probe


def test_scheduled_drift_check_without_a_production_model_is_skipped_not_failed(
    stack: AwsClients,
) -> None:
    result, points = _invoke("drift", {})
    assert isinstance(result, dict), result
    assert result["status"] == "skipped"
    assert "no production" in result["reason"]
    assert _sli(points, "Requests") == 1 and _sli(points, "Errors") == 0


def test_a_health_probe_that_cannot_run_publishes_a_failed_probe(
    stack: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment whose settings are broken (the probe cannot even build its checks)
    monkeypatch.setenv("CST_KILL_SWITCH_PARAM", "not a parameter name")
    _forget()
    event = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "detail": {}}
    result, points = _invoke("health_probe", event)
    # Then the failed sample is published (the uptime SLI and HealthProbeFailing see it): the
    # probe is the measuring instrument, so it is not one of the stage's Requests
    assert isinstance(result, dict) and result["passed"] is False, result
    assert _sli(points, "ProbeFailure") == 1 and _sli(points, "ProbeSuccess") == 0
    assert _sli(points, "Requests") == 0
