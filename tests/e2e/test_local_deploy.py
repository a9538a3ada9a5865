"""E2E: the synthesized app deployed with cdklocal to a moto server on 127.0.0.1, then driven.

moto runs no Lambda code without Docker, fires no EventBridge schedule, takes no alarm action and
deletes nothing by TTL: the tests invoke the DEPLOYED scan and health-probe functions' handlers
(the handler string each deployed function names) in-process, with the deployed function's
environment, against the deployed tables, bucket and kill-switch parameter. The deployment is
the session's (tests/e2e/conftest.py), shared with test_scheduled_functions.

Needs npx (Node) to fetch aws-cdk@2 and aws-cdk-local: without it the test skips locally and
FAILS in CI (CI=true). Bounded: each cdklocal step times out after 10 minutes.
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.cli import app as cli_app
from cst_devtools.local_deploy import DeployResult
from tests.e2e.conftest import DEPLOY_GROUP

pytestmark = [pytest.mark.slow, pytest.mark.realdata, pytest.mark.xdist_group(DEPLOY_GROUP)]


@dataclass
class Context:
    function_name: str = "cst-scan"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-scan"
    aws_request_id: str = "req-local-deploy"


def test_deployed_scan_function_runs_against_deployed_resources(
    deployed: DeployResult, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stack deployed to the local endpoint (dummy credentials: moto checks none)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    outputs = deployed.stack_outputs
    lambda_client = boto3.client("lambda", endpoint_url=deployed.endpoint, region_name="us-east-1")
    function = lambda_client.get_function(FunctionName=outputs["ScanFunctionName"])["Configuration"]
    env: dict[str, str] = function["Environment"]["Variables"]
    assert env["CST_ORDERS_TABLE"] == outputs["CSTORDERSTABLE"]

    # When the deployed function's handler runs with its deployed environment (moto cannot
    # execute Lambda code without Docker, so it runs in-process) over the real data; the
    # registry holds no promoted model, so the deployed scan trades nothing unless the
    # deployment opts in to technical-only paper trading, as this one does explicitly
    assert env["CST_ALLOW_TECHNICAL_ONLY_TRADING"] == "false"
    for key, value in {
        **env,
        "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",
        "CST_DATA_SOURCE": "recorded",
        "CST_DATA_DIR": str(data_dir),
        "AWS_ENDPOINT_URL": deployed.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    module_name, _, attr = function["Handler"].rpartition(".")
    module = importlib.import_module(module_name)
    from cryptosmarttrader.handlers import _common

    _common.reset_caches()  # a cold start: settings and clients from this environment
    module._service.cache_clear()
    result: dict[str, Any] = getattr(module, attr)({"top_n": 10, "asof": "2021-05-01"}, Context())

    # Then the run is recorded in the deployed orders table, one order per tradable BUY (a BUY
    # on a coin the paper venue cannot trade is reported, not ordered)
    assert result["status"] == "ok", result
    dynamodb = boto3.client("dynamodb", endpoint_url=deployed.endpoint, region_name="us-east-1")
    items = dynamodb.scan(TableName=outputs["CSTORDERSTABLE"])["Items"]
    buys = [r for r in result["report"]["rows"] if r["action"] == "buy"]
    ordered = {r["client_order_id"] for r in buys if r["client_order_id"] is not None}
    assert ordered and {i["client_order_id"]["S"] for i in items} == ordered
    assert len(ordered) + result["report"]["not_ordered_untradable"] == len(buys)
    # and every row states that it trades on the technical agent by the opt-in alone
    opted = "no promoted model: technical agent only, paper trading allowed by " + (
        "CST_ALLOW_TECHNICAL_ONLY_TRADING=true"
    )
    assert all(opted in r["reasons"] for r in result["report"]["rows"])


def test_deployed_health_probe_passes_and_publishes_uptime_for_the_deployed_stage(
    deployed: DeployResult, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the deployed probe function and its environment (what its schedule would run)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    outputs = deployed.stack_outputs
    lambda_client = boto3.client("lambda", endpoint_url=deployed.endpoint, region_name="us-east-1")
    function = lambda_client.get_function(FunctionName=outputs["HealthProbeFunctionName"])[
        "Configuration"
    ]
    env: dict[str, str] = function["Environment"]["Variables"]
    assert env["CST_STAGE"] == "staging"

    # When its handler runs in-process with that environment against the deployed resources
    for key, value in {
        **env,
        "AWS_ENDPOINT_URL": deployed.endpoint,
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    module_name, _, attr = function["Handler"].rpartition(".")
    module = importlib.import_module(module_name)
    from cryptosmarttrader.handlers import _common
    from cst_devtools.moto_shims import emf_points, emf_records

    _common.reset_caches()
    module._service.cache_clear()
    capsys.readouterr()
    result: dict[str, Any] = getattr(module, attr)({"detail-type": "Scheduled Event"}, Context())
    module._service.cache_clear()

    # Then the deployed table, bucket and parameter all answered (the env names them right)
    assert result["passed"] is True, result
    assert {c["name"] for c in result["checks"] if c["status"] == "ok"} == {"dynamodb", "s3", "ssm"}
    # and one uptime sample was published for the deployed stage, dimensioned Stage only
    points = emf_points(emf_records(capsys.readouterr().out))
    assert [(p["name"], p["value"], p["dimensions"]) for p in points] == [
        ("ProbeSuccess", 1.0, {"Stage": "staging"}),
        ("ProbeFailure", 0.0, {"Stage": "staging"}),
    ]


def test_deployed_golive_machine_runs_to_production_and_a_breach_rolls_back(
    deployed: DeployResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DEPLOYED go-live state machine executed by the local server, its Lambda tasks running
    the deployed functions' handlers in-process with their deployed environment (moto runs no
    Lambda code without Docker), reading SLO metrics from the deployed CloudWatch."""
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.cloudwatch.models import Statistics

    from cryptosmarttrader.handlers import _common, golive_slo, golive_steps
    from cst_devtools.moto_shims import invoke_handler_in_process, statistic_with_percentiles
    from tests.integration.test_golive_state_machine import HEALTHY

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": deployed.endpoint,  # the handlers' clients talk to the local server
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke_handler_in_process)
    monkeypatch.setattr(Statistics, "get_statistics_for_type", statistic_with_percentiles)
    for reset in (
        _common.reset_caches,
        golive_steps._service.cache_clear,
        golive_slo._service.cache_clear,
    ):
        reset()
    outputs = deployed.stack_outputs
    client = boto3.session.Session().client
    sfn = client("stepfunctions", endpoint_url=deployed.endpoint, region_name="us-east-1")
    cloudwatch = client("cloudwatch", endpoint_url=deployed.endpoint, region_name="us-east-1")
    ssm = client("ssm", endpoint_url=deployed.endpoint, region_name="us-east-1")

    def put(stage: str, metrics: dict[str, list[float]]) -> None:
        now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
        for name, values in metrics.items():
            cloudwatch.put_metric_data(
                Namespace="CryptoSmartTrader",
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": "Stage", "Value": stage}],
                        "Timestamp": now - timedelta(minutes=2 + i),
                        "Value": v,
                    }
                    for i, v in enumerate(values)
                ],
            )

    def run(version: str) -> dict[str, Any]:
        arn = sfn.start_execution(
            stateMachineArn=outputs["GoLiveStateMachineArn"],
            name=f"golive-e2e-{uuid.uuid4().hex[:10]}",
            input=json.dumps(
                {
                    "version": version,
                    "previous_version": "v1",
                    "staging_seconds": 1,
                    "canary_seconds": 0,
                    "slo_window_seconds": 900,
                    "requested_by": "e2e",
                }
            ),
        )["executionArn"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.2)
        raise AssertionError(f"go-live execution {arn} still RUNNING after 120 s")

    # Given healthy staging and canary SLO metrics
    put("staging", HEALTHY)
    put("canary", HEALTHY)
    # When the deployed machine runs
    healthy = run("v2")
    # Then it reaches production and the kill-switch stays off
    assert healthy["status"] == "SUCCEEDED", healthy
    switch = json.loads(ssm.get_parameter(Name=outputs["CSTKILLSWITCHPARAM"])["Parameter"]["Value"])
    assert switch["on"] is False

    # Given the canary's latency now breaches the 1 s p95 SLO
    put("canary", {**HEALTHY, "DecisionLatency": [2500.0] * 40})
    # When another version goes live
    breached = run("v3")
    # Then it is rolled back automatically and the deployed kill-switch is on, saying why
    assert breached["status"] == "FAILED", breached
    assert breached.get("error") == "GoLive.RolledBack"
    switch = json.loads(ssm.get_parameter(Name=outputs["CSTKILLSWITCHPARAM"])["Parameter"]["Value"])
    assert switch["on"] is True
    assert switch["actor"] == "system:golive"


def test_the_dashboard_publishes_to_the_deployed_stack_and_the_api_allows_its_origin(
    deployed: DeployResult, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the deployed stack (its site bucket, distribution and API) and a dashboard build
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": deployed.endpoint,
        "AWS_ENDPOINT_URL_S3": deployed.endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<script type="module" src="/assets/index-e2e.js"></script>')
    (dist / "assets" / "index-e2e.js").write_text("console.log('e2e')")
    outputs = deployed.stack_outputs

    # When the user publishes it, as `make deploy` does after the deploy
    result = CliRunner().invoke(
        cli_app, ["web", "publish", "--dist", str(dist), "--region", "us-east-1"]
    )

    # Then the files are in the deployed site bucket, config.json names the deployed API ...
    assert result.exit_code == 0, result.output
    s3 = boto3.client("s3", endpoint_url=deployed.endpoint, region_name="us-east-1")
    bucket = outputs["DashboardBucketName"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"index.html", "config.json", "assets/index-e2e.js"}
    config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
    assert config == {"apiBase": outputs["ApiUrl"]}
    # ... and the deployed API function allows exactly the dashboard's origin
    lambda_client = boto3.client("lambda", endpoint_url=deployed.endpoint, region_name="us-east-1")
    functions = lambda_client.list_functions()["Functions"]
    (api,) = [f for f in functions if f["Handler"] == "cryptosmarttrader.handlers.api.handler"]
    assert api["Environment"]["Variables"]["CST_CORS_ORIGIN"] == outputs["DashboardUrl"]
    assert outputs["DashboardUrl"].startswith("https://")
