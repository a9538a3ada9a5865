"""The ingest, scan, execution and health-probe functions: handler, runtime, env contract,
tracing, failure handling."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from cryptosmarttrader.settings import AwsResources, DeploymentSettings, TradingSettings
from infra.constructs.python_function import PythonFunction
from tests.infrastructure.conftest import Synthesized

HANDLERS = {
    "ingest": "cryptosmarttrader.handlers.ingest.handler",
    "scan": "cryptosmarttrader.handlers.scan.handler",
    "execution": "cryptosmarttrader.handlers.execute.handler",
    "health_probe": "cryptosmarttrader.handlers.health_probe.handler",
}
SERVICES = {
    "ingest": "cst-ingest",
    "scan": "cst-scan",
    "execution": "cst-execution",
    "health_probe": "cst-health-probe",
}


def _function_construct(synthesized: Synthesized, name: str) -> PythonFunction:
    stack = synthesized.stack
    return {
        "ingest": stack.ingestion.lambda_,
        "scan": stack.scan.lambda_,
        "execution": stack.execution.lambda_,
        "health_probe": stack.probe.lambda_,
    }[name]


def _function(synthesized: Synthesized, name: str) -> dict[str, Any]:
    construct = _function_construct(synthesized, name)
    resource = synthesized.resources[synthesized.logical_id(construct.function)]
    assert isinstance(resource, dict)
    return resource


def _resource_contract_env_names() -> set[str]:
    """CST_* names that AwsResources reads (fields without an explicit alias)."""
    prefix = AwsResources.ENV_PREFIX
    return {
        f"{prefix}{name}".upper()
        for name, field in AwsResources.model_fields.items()
        if field.validation_alias is None
    }


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_function_handler_runtime_architecture_and_tracing(
    synthesized: Synthesized, name: str
) -> None:
    # Given a function of the stack
    props = _function(synthesized, name)["Properties"]

    # Then it runs the named handler on python3.12 / arm64 (Graviton) with active X-Ray tracing
    assert props["Handler"] == HANDLERS[name]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_function_environment_is_the_settings_contract(synthesized: Synthesized, name: str) -> None:
    # Given a function and the application's settings models
    env = _function(synthesized, name)["Properties"]["Environment"]["Variables"]
    tables = synthesized.stack.tables

    # When its environment is compared with what AwsResources reads
    resource_env = {k for k in env if k.startswith("CST_")} - {
        "CST_DATA_SOURCE",
        "CST_EXCHANGE",
        "CST_STAGE",
        "CST_ALLOW_REPLAYS",
        "CST_VENUE_MODE",  # the execution function's venue (VenueSettings), paper by default
        "CST_ALLOW_TECHNICAL_ONLY_TRADING",
        "CST_READ_ONLY_SECRETS",  # the ingest's read-only keys secrets (ReadOnlyKeySettings)
    }

    # Then every resource name the code needs is set, and set to the right resource
    assert resource_env == _resource_contract_env_names()
    assert env["CST_LAKE_BUCKET"] == {"Ref": synthesized.logical_id(synthesized.stack.lake.bucket)}
    for env_name, table in [
        ("CST_ORDERS_TABLE", tables.orders),
        ("CST_POSITIONS_TABLE", tables.positions),
        ("CST_STATE_TABLE", tables.state),
    ]:
        assert env[env_name] == {"Ref": synthesized.logical_id(table)}
    assert env["CST_KILL_SWITCH_PARAM"] == "/cst/kill-switch"
    # and the trading settings parse (a value outside the Literal would fail the Lambda)
    trading = TradingSettings.model_validate(
        {
            "data_source": env["CST_DATA_SOURCE"],
            "exchange": env["CST_EXCHANGE"],
            "allow_technical_only_trading": env["CST_ALLOW_TECHNICAL_ONLY_TRADING"],
        }
    )
    assert trading.data_source == "ccxt"
    # and without a promoted model the default deployment's scan trades nothing (no opt-in)
    assert env["CST_ALLOW_TECHNICAL_ONLY_TRADING"] == "false"
    assert trading.allow_technical_only_trading is False
    # and the SLIs are published for the configured go-live stage (a valid one)
    deployment = DeploymentSettings.model_validate(
        {"stage": env["CST_STAGE"], "allow_replays": env["CST_ALLOW_REPLAYS"]}
    )
    assert deployment.stage == "staging"
    # and a deployed function trades on its own clock: no replayed instant is honoured
    assert deployment.allow_replays is False
    # and Powertools is configured
    assert env["POWERTOOLS_SERVICE_NAME"] == SERVICES[name]
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "CryptoSmartTrader"
    assert env["LOG_LEVEL"] == "INFO"


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_failed_async_invocations_go_to_the_function_dlq(
    synthesized: Synthesized, name: str
) -> None:
    # Given a function and its dead-letter queue
    construct = _function_construct(synthesized, name)
    function_id = synthesized.logical_id(construct.function)
    queue_id = synthesized.logical_id(construct.dead_letter_queue)

    # Then its async config retries twice, drops events older than an hour, and sends
    # failures to its own encrypted queue
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function_id},
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 3600,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
        },
    )
    queue = synthesized.resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_function_logs_to_its_own_log_group_with_retention(
    synthesized: Synthesized, name: str
) -> None:
    # Given a function and its log group
    construct = _function_construct(synthesized, name)
    log_group_id = synthesized.logical_id(construct.log_group)

    # Then logs go to that group, kept for the configured 30 days (not forever)
    props = _function(synthesized, name)["Properties"]
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}
    assert synthesized.resources[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_each_function_deploys_its_own_bundle(synthesized: Synthesized) -> None:
    # Given the two functions' code locations
    keys = {name: _function(synthesized, name)["Properties"]["Code"]["S3Key"] for name in HANDLERS}

    # Then ingest, scan, execution and the probe are distinct zips (ingest ships ccxt and polars,
    # scan polars, execution both and TA-Lib: its testnet and live venues send orders through
    # ccxt; the probe neither), built from their own lists
    assert len({keys["ingest"], keys["scan"], keys["execution"], keys["health_probe"]}) == 4
    assert all(key.endswith(".zip") for key in keys.values())
    assert {n: c.requirements.name for n, c in synthesized.stack.code.items()} == {
        "ingest": "ingest.txt",
        "scan": "scan.txt",
        "execute": "execute.txt",
    }


def test_outputs_publish_every_resource_name_under_its_env_name(template: Template) -> None:
    # Given the stack outputs
    outputs = template.to_json()["Outputs"]

    # Then each CST_* resource name is exported (for the CLI and e2e tests), plus the functions
    described = {o.get("Description") for o in outputs.values()}
    assert _resource_contract_env_names() <= described
    assert {"IngestFunctionName", "ScanFunctionName", "HealthProbeFunctionName"} <= set(outputs)


def test_execution_runs_one_cycle_at_a_time(synthesized: Synthesized) -> None:
    # the risk level machine assumes a single writer: no two cycles may overlap
    props = _function(synthesized, "execution")["Properties"]
    assert props["ReservedConcurrentExecutions"] == 1
