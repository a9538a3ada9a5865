"""The API, health-probe, go-live and alarm → kill-switch handlers start without polars or numpy.

Checked structurally, as Lambda starts them: a fresh interpreter imports the handler module and
lists the heavy libraries it loaded. The cold-import time itself is measured against
``import boto3`` by ``bench/bench_cold_import.py``. The bundles these handlers ship in
(``infra/lambda_requirements/``) are checked in ``tests/infrastructure/test_bundling.py``.
"""

from __future__ import annotations

import pytest

from tests.support.fresh_interpreter import run_fresh

HEAVY = ("numpy", "polars", "pyarrow", "pandas", "talib", "xgboost", "scipy", "ccxt", "moto")
LEAN_HANDLERS = (
    "cryptosmarttrader.handlers.api",
    "cryptosmarttrader.handlers.alarm_killswitch",
    "cryptosmarttrader.handlers.health_probe",
    "cryptosmarttrader.handlers.golive_steps",
    "cryptosmarttrader.handlers.golive_slo",
)
LAMBDA = {"AWS_DEFAULT_REGION": "us-east-1"}
TRACING = {**LAMBDA, "POWERTOOLS_TRACE_DISABLED": None}  # as deployed: the Tracer is on


@pytest.mark.parametrize("module", LEAN_HANDLERS)
def test_a_lean_handler_cold_starts_without_polars_or_numpy(module: str) -> None:
    started = run_fresh(
        f"import {module}", HEAVY, env={**LAMBDA, "POWERTOOLS_TRACE_DISABLED": "true"}
    )
    assert started.loaded == []


def test_the_kill_switch_starts_without_the_xray_sdk_or_pydantic_settings() -> None:
    # Given the alarm → kill-switch handler imported as Lambda starts it (tracing enabled)
    slow = ("aws_xray_sdk", "pydantic_settings")
    started = run_fresh("import cryptosmarttrader.handlers.alarm_killswitch", slow, env=TRACING)

    # Then neither of the two slowest imports of its former cold start is loaded
    assert started.loaded == []


def test_the_kill_switch_starts_without_pydantic_models_the_settings_or_the_order_store() -> None:
    # Given the alarm → kill-switch handler imported as Lambda starts it
    slow = (
        "pydantic.main",  # BaseModel: ~0.4x import boto3 before the first model is built
        "cryptosmarttrader.settings",  # its settings models
        "cryptosmarttrader.adapters.dynamodb_store",  # orders/positions, for an audit write
        "aws_lambda_powertools.utilities.parameters",  # one GetParameter
        "cryptosmarttrader.adapters.emf_metrics",  # the stage SLIs: only the namespace is read
        "boto3",  # its clients are botocore's; the audit codec encodes without boto3
        "s3transfer",  # what ``import boto3`` adds over botocore's session: 0.15x boto3
    )
    started = run_fresh("import cryptosmarttrader.handlers.alarm_killswitch", slow, env=LAMBDA)

    # Then none of them is loaded: its validation is pydantic's core, its audit write the codec
    assert started.loaded == []


def test_the_api_starts_without_the_event_handler_pydantic_models_settings_or_boto3() -> None:
    # Given the API handler imported as Lambda starts it (tracing enabled)
    slow = (
        "aws_lambda_powertools.event_handler",  # with its OpenAPI models: 1.88x import boto3
        "aws_xray_sdk",  # the Powertools Tracer's
        "pydantic.main",  # BaseModel: the services' response models, on a route's first call
        "cryptosmarttrader.settings",  # its settings models, on a route's first call
        "boto3",  # the clients, on the first call of a route that reads AWS
    )
    started = run_fresh("import cryptosmarttrader.handlers.api", slow, env=TRACING)

    # Then none of them is loaded
    assert started.loaded == []


def test_the_api_answers_liveness_without_pydantic_models_settings_or_boto3() -> None:
    # Given the API handler imported as Lambda starts it
    slow = ("pydantic.main", "cryptosmarttrader.settings", "boto3", "cryptosmarttrader.services")
    event = {
        "resource": "/health",
        "path": "/health",
        "httpMethod": "GET",
        "headers": {},
        "requestContext": {"requestId": "req-live-1", "identity": {}},
        "body": None,
    }
    code = (
        "import types\nfrom cryptosmarttrader.handlers import api\n"
        "context = types.SimpleNamespace(aws_request_id='lambda-1', function_name='cst-api', "
        "memory_limit_in_mb=512, invoked_function_arn='arn:aws:lambda:us-east-1:1:function:x')\n"
        f"response = api.handler({event!r}, context)\n"
        "answer = [response['statusCode'], response['body']]"
    )

    # When its first request is the public liveness check
    started = run_fresh(code, slow, env={**LAMBDA, "CST_STAGE": "canary"})

    # Then it answers, and counts toward the stage's SLIs, without importing any of them
    assert started.answer == [200, '{"status":"ok"}']
    assert started.loaded == []
    assert '"Stage":"canary"' in started.stdout
