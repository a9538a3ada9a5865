"""Deep health probes for ``GET /api/v1/health``: DynamoDB, S3, SSM and exchange reachability.

Each probe makes one cheap call the API function is already allowed to make (a ``GetItem`` on
the state table, ``HeadBucket`` on the lake, ``GetParameter`` of the kill-switch) and reports
``ok`` or ``error`` with the AWS error code, never a stack trace. The exchange probe opens a TCP
connection to the exchange's public API host with a short timeout and reports ``unreachable``
when that fails (as on a machine without internet); when probing is disabled, as for the
recorded-data source, it reports ``unknown`` and says why.

:func:`dependency_probes` is the one list of checks, shared by the API and the scheduled probe.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.domain.health import EXCHANGE_CHECK, HealthCheck
from cryptosmarttrader.domain.sanitize import sanitize_text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

    from cryptosmarttrader.adapters.aws_clients import AwsClients
    from cryptosmarttrader.ports import HealthProbe
    from cryptosmarttrader.settings import AwsResources, TradingSettings

__all__ = [
    "EXCHANGE_API_HOSTS",
    "DynamoDbProbe",
    "ExchangeProbe",
    "S3Probe",
    "SsmProbe",
    "dependency_probes",
]

EXCHANGE_API_HOSTS: Final = {
    "binance": "api.binance.com",
    "kraken": "api.kraken.com",
    "kucoin": "api.kucoin.com",
}
HEALTH_PK: Final = "health"


def _timed(name: str, call: Callable[[], str]) -> HealthCheck:
    started = time.perf_counter()
    try:
        detail = call()
        status = "ok"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        status, detail = "error", f"{code}: {sanitize_text(str(exc))}"
    except BotoCoreError as exc:
        status, detail = "error", f"{type(exc).__name__}: {sanitize_text(str(exc))}"
    elapsed = (time.perf_counter() - started) * 1000.0
    return HealthCheck(name=name, status=status, detail=detail, latency_ms=round(elapsed, 3))


@dataclass(frozen=True)
class DynamoDbProbe:
    client: DynamoDBClient
    table: str
    name: str = "dynamodb"

    def check(self) -> HealthCheck:
        def call() -> str:
            self.client.get_item(
                TableName=self.table, Key={"pk": {"S": HEALTH_PK}, "sk": {"S": "probe"}}
            )
            return f"table {self.table} readable"

        return _timed(self.name, call)


@dataclass(frozen=True)
class S3Probe:
    client: S3Client
    bucket: str
    name: str = "s3"

    def check(self) -> HealthCheck:
        def call() -> str:
            self.client.head_bucket(Bucket=self.bucket)
            return f"bucket {self.bucket} reachable"

        return _timed(self.name, call)


@dataclass(frozen=True)
class SsmProbe:
    client: SSMClient
    parameter: str
    name: str = "ssm"

    def check(self) -> HealthCheck:
        def call() -> str:
            self.client.get_parameter(Name=self.parameter)
            return f"parameter {self.parameter} readable"

        return _timed(self.name, call)


@dataclass(frozen=True)
class ExchangeProbe:
    """TCP reachability of ``host:443``. ``enabled=False`` → ``unknown`` with ``why``."""

    exchange: str
    enabled: bool
    why_disabled: str = "exchange probing disabled"
    timeout_s: float = 1.0
    port: int = 443
    name: str = EXCHANGE_CHECK

    def check(self) -> HealthCheck:
        host = EXCHANGE_API_HOSTS.get(self.exchange)
        if not self.enabled or host is None:
            reason = self.why_disabled if host else f"no API host known for {self.exchange!r}"
            return HealthCheck(name=self.name, status="unknown", detail=reason, latency_ms=0.0)
        started = time.perf_counter()
        try:
            with socket.create_connection((host, self.port), timeout=self.timeout_s):
                status, detail = "ok", f"{self.exchange}: TCP connect to {host}:{self.port}"
        except OSError as exc:
            status = "unreachable"
            detail = f"{self.exchange}: {host}:{self.port} unreachable ({type(exc).__name__})"
        elapsed = (time.perf_counter() - started) * 1000.0
        return HealthCheck(
            name=self.name, status=status, detail=detail, latency_ms=round(elapsed, 3)
        )


def dependency_probes(
    clients: AwsClients, resources: AwsResources, settings: TradingSettings
) -> tuple[HealthProbe, ...]:
    """State table, lake bucket, kill-switch parameter, and the exchange when one is in use."""
    return (
        DynamoDbProbe(clients.dynamodb, resources.state_table),
        S3Probe(clients.s3, resources.lake_bucket),
        SsmProbe(clients.ssm, resources.kill_switch_param),
        ExchangeProbe(
            settings.exchange,
            enabled=settings.data_source == "ccxt",
            why_disabled="CST_DATA_SOURCE=recorded: this deployment uses no exchange",
        ),
    )
