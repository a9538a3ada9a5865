"""The one place that builds boto3 clients from :class:`AwsResources` (region, endpoint).

An endpoint (``AWS_ENDPOINT_URL``) points every client at a moto server or LocalStack; without
one the clients talk to real AWS in ``resources.region``. Adaptive retries absorb throttling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

    from cryptosmarttrader.settings import AwsResources

_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30
)


class Endpoint(Protocol):
    """Where the clients talk to: :class:`AwsResources`, or a lean function's own settings."""

    @property
    def region(self) -> str: ...

    @property
    def aws_endpoint_url(self) -> str | None: ...


def _kwargs(resources: Endpoint) -> dict[str, object]:
    kwargs: dict[str, object] = {"region_name": resources.region, "config": _CONFIG}
    if resources.aws_endpoint_url:
        kwargs["endpoint_url"] = resources.aws_endpoint_url
    return kwargs


def dynamodb_client(resources: Endpoint) -> DynamoDBClient:
    return boto3.client("dynamodb", **_kwargs(resources))  # type: ignore[call-overload,no-any-return]


def s3_client(resources: Endpoint) -> S3Client:
    return boto3.client("s3", **_kwargs(resources))  # type: ignore[call-overload,no-any-return]


def ssm_client(resources: Endpoint) -> SSMClient:
    return boto3.client("ssm", **_kwargs(resources))  # type: ignore[call-overload,no-any-return]


def sagemaker_runtime_client(resources: Endpoint) -> Any:
    """The ``sagemaker-runtime`` client (endpoint invocations): built only where one is used."""
    return boto3.client("sagemaker-runtime", **_kwargs(resources))  # type: ignore[call-overload]


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the functions need, built once per process (Lambda cold start)."""

    resources: AwsResources
    dynamodb: DynamoDBClient
    s3: S3Client
    ssm: SSMClient

    @classmethod
    def build(cls, resources: AwsResources) -> AwsClients:
        return cls(
            resources=resources,
            dynamodb=dynamodb_client(resources),
            s3=s3_client(resources),
            ssm=ssm_client(resources),
        )
