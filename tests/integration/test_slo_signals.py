"""The go-live SLIs as the deployed functions publish them, on moto: the scheduled health probe
(uptime), a failing scan (errors), and the SLO gate reading what the probe published.

moto's CloudWatch Logs extracts no metric from EMF, so ``publish_emf`` does that step (one
``PutMetricData`` per EMF value, same namespace, name, unit and dimension set).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.cloudwatch.models import Statistics

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.cloudwatch_metric_reader import CloudWatchMetricReader
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.golive import GoLiveParams, Stage
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.services.golive import SloService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import kill_switch_default
from cst_devtools.moto_shims import emf_points, emf_records, publish_emf, statistic_with_percentiles
from tests.support.aws import moto_stack

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "cst-health-probe",
    "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "CST_DATA_SOURCE": "recorded",
    "CST_STAGE": "staging",
}


@dataclass
class Context:
    function_name: str = "cst-health-probe"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-health-probe"
    aws_request_id: str = "req-probe-1"


SCHEDULED_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "5f1c7a8e-0d6f-4c1e-9d2b-7e3f1a2b3c4d",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2024-03-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/cst-health-probe"],
    "detail": {},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """A fresh deployment's resources: tables, lake bucket, kill-switch parameter (off)."""
    with moto_stack(monkeypatch, env=ENV) as clients:
        from cryptosmarttrader.handlers import health_probe, scan

        clients.ssm.put_parameter(
            Name=AwsResources().kill_switch_param,
            Value=kill_switch_default(datetime(2024, 3, 1, tzinfo=UTC)),
            Type="String",
            Overwrite=True,
        )
        for reset in (_common.reset_caches, health_probe._service.cache_clear):
            reset()
        scan._service.cache_clear()
        yield clients
    for reset in (_common.reset_caches, health_probe._service.cache_clear):
        reset()
    scan._service.cache_clear()


def probe() -> dict[str, Any]:
    from cryptosmarttrader.handlers import health_probe

    result: dict[str, Any] = health_probe.handler(SCHEDULED_EVENT, Context())  # type: ignore[arg-type]
    return result


@pytest.fixture
def probe_log() -> Iterator[Callable[[str], dict[str, Any]]]:
    """The probe's JSON log line with a given message (exactly one), as CloudWatch Logs gets it."""
    from cryptosmarttrader.handlers import health_probe

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(health_probe.logger.registered_formatter)
    health_probe.logger.addHandler(handler)

    def line(message: str) -> dict[str, Any]:
        lines = [json.loads(raw) for raw in buffer.getvalue().splitlines()]
        (found,) = [entry for entry in lines if entry["message"] == message]
        return found

    try:
        yield line
    finally:
        health_probe.logger.removeHandler(handler)


def test_a_healthy_probe_publishes_one_success_for_the_stage(
    aws: AwsClients, capsys: pytest.CaptureFixture[str], probe_log: Callable[[str], dict[str, Any]]
) -> None:
    # When the scheduled probe runs against healthy dependencies
    result = probe()

    # Then it passed, checked DynamoDB, S3 and SSM (and reported the unused exchange)
    assert result["passed"] is True and result["failing"] == []
    assert {c["name"]: c["status"] for c in result["checks"]} == {
        "dynamodb": "ok", "s3": "ok", "ssm": "ok", "exchange": "unknown",
    }  # fmt: skip
    # and published one uptime sample for staging: ProbeSuccess 1, ProbeFailure 0
    points = emf_points(emf_records(capsys.readouterr().out))
    assert [(p["name"], p["value"], p["dimensions"]) for p in points] == [
        ("ProbeSuccess", 1.0, {"Stage": "staging"}),
        ("ProbeFailure", 0.0, {"Stage": "staging"}),
    ]
    line = probe_log("health probe passed")
    assert line["correlation_id"] == SCHEDULED_EVENT["id"] and line["stage"] == "staging"


def test_a_failing_dependency_publishes_a_failure_and_names_it(
    aws: AwsClients,
    capsys: pytest.CaptureFixture[str],
    probe_log: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the canary deployment's lake bucket is gone
    monkeypatch.setenv("CST_STAGE", "canary")
    _common.reset_caches()
    aws.s3.delete_bucket(Bucket=AwsResources().lake_bucket)

    # When the probe runs
    result = probe()

    # Then it failed, naming S3 and the AWS error, the other dependencies still ok
    assert result["passed"] is False
    (failing,) = result["failing"]
    assert failing.startswith("s3: error: ") and ("404" in failing or "NoSuchBucket" in failing)
    # and published ProbeFailure 1 for the canary, the reason in an ERROR log line
    points = emf_points(emf_records(capsys.readouterr().out))
    assert {(p["name"], p["value"]) for p in points} == {
        ("ProbeSuccess", 0.0),
        ("ProbeFailure", 1.0),
    }
    assert {tuple(p["dimensions"].items()) for p in points} == {(("Stage", "canary"),)}
    line = probe_log("health probe failed")
    assert line["level"] == "ERROR" and line["failing"] == [failing]


def test_a_probe_that_cannot_run_is_a_failed_probe_not_a_gap(
    aws: AwsClients,
    capsys: pytest.CaptureFixture[str],
    probe_log: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a deployment whose kill-switch parameter name is invalid (settings fail to parse)
    monkeypatch.setenv("CST_KILL_SWITCH_PARAM", "not-a-parameter-path")
    _common.reset_caches()

    # When the probe runs
    result = probe()

    # Then it reports and publishes a failure with why, instead of publishing nothing
    assert result["passed"] is False
    assert "ValidationError" in result["failing"][0]
    points = emf_points(emf_records(capsys.readouterr().out))
    assert {(p["name"], p["value"]) for p in points} == {
        ("ProbeSuccess", 0.0),
        ("ProbeFailure", 1.0),
    }
    assert probe_log("health probe could not run")["failing"] == result["failing"]


def test_a_scan_that_fails_counts_as_an_error_and_still_fails(
    aws: AwsClients, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the deployed scan (lake data source) whose lake bucket is gone
    monkeypatch.setenv("CST_DATA_SOURCE", "ccxt")
    _common.reset_caches()
    aws.s3.delete_bucket(Bucket=AwsResources().lake_bucket)
    from cryptosmarttrader.handlers import scan

    # When the scheduled scan runs / Then it raises (Lambda retries, then the DLQ)
    with pytest.raises(Exception, match=r"NoSuchBucket|does not exist"):
        scan.handler({"top_n": 5}, Context(function_name="cst-scan"))  # type: ignore[arg-type]

    # and the stage counted one request and one error, and no decision latency
    points = emf_points(emf_records(capsys.readouterr().out))
    slis = {p["name"]: p["value"] for p in points if p["dimensions"] == {"Stage": "staging"}}
    assert slis == {"Requests": 1.0, "Errors": 1.0}


def test_the_gate_reads_the_uptime_the_probes_published(
    aws: AwsClients, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three passing probes and one failing probe in staging, their EMF extracted to
    # CloudWatch as CloudWatch Logs would
    for _ in range(3):
        probe()
    aws.s3.delete_bucket(Bucket=AwsResources().lake_bucket)
    probe()
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    assert publish_emf(cloudwatch, emf_records(capsys.readouterr().out)) == 8
    monkeypatch.setattr(Statistics, "get_statistics_for_type", statistic_with_percentiles)

    # When the staging SLO gate evaluates the ten minutes up to a minute later (CloudWatch
    # serves a datapoint once its second is over)
    service = SloService(
        reader=CloudWatchMetricReader("CryptoSmartTrader", cloudwatch),
        store=DynamoStateStore(AwsResources().state_table, aws.dynamodb),
        clock=FixedClock(datetime.now(tz=UTC) + timedelta(minutes=1)),
    )
    params = GoLiveParams(
        run_id="slo-signals-1", version="v2", previous_version="v1", staging_seconds=600
    )
    verdict = service.evaluate(params, Stage.STAGING)

    # Then it measured uptime 3/4 from the probes' metrics (a breach of 99.5 %), and the
    # SLIs nothing published here are missing, never assumed
    assert verdict.passed is False
    reasons = verdict.reasons
    assert "uptime 75.000% breaches >= 99.50%" in reasons
    assert "p95_latency_ms: no data (no latency sample in the window)" in reasons
