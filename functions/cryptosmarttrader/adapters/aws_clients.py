"""The one place that builds boto3 clients from a region and an optional endpoint.

An endpoint (``AWS_ENDPOINT_URL``) points every client at a moto server or LocalStack; without
one the clients talk to real AWS in the region. Adaptive retries absorb throttling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


def _kwargs(region: str, endpoint_url: str | None) -> dict[str, object]:
    kwargs: dict[str, object] = {"region_name": region, "config": _CONFIG}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return kwargs


def dynamodb_client(region: str, endpoint_url: str | None = None) -> DynamoDBClient:
    return boto3.client("dynamodb", **_kwargs(region, endpoint_url))  # type: ignore[call-overload,no-any-return]


def s3_client(region: str, endpoint_url: str | None = None) -> S3Client:
    return boto3.client("s3", **_kwargs(region, endpoint_url))  # type: ignore[call-overload,no-any-return]


def ssm_client(
    region: str, endpoint_url: str | None = None, config: Config | None = None
) -> SSMClient:
    """``config`` replaces the shared timeouts and retries (a caller with a deadline)."""
    kwargs = _kwargs(region, endpoint_url)
    if config is not None:
        kwargs["config"] = config
    return boto3.client("ssm", **kwargs)  # type: ignore[call-overload,no-any-return]


def sagemaker_runtime_client(region: str, endpoint_url: str | None = None) -> Any:
    """The ``sagemaker-runtime`` client (endpoint invocations): built only where one is used."""
    return boto3.client("sagemaker-runtime", **_kwargs(region, endpoint_url))  # type: ignore[call-overload]


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
            dynamodb=dynamodb_client(resources.region, resources.aws_endpoint_url),
            s3=s3_client(resources.region, resources.aws_endpoint_url),
            ssm=ssm_client(resources.region, resources.aws_endpoint_url),
        )
