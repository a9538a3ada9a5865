"""The one place that builds boto3 clients from a region and an optional endpoint.

An endpoint (``AWS_ENDPOINT_URL``) points every client at a moto server or LocalStack; without
one the clients talk to real AWS in the region. Adaptive retries absorb throttling: at most
:data:`ATTEMPTS` attempts per call, the first one included (botocore's ``total_max_attempts``;
its ``max_attempts`` would count the retries only, one attempt more).

boto3 is imported by the first client it builds; :func:`botocore_client` builds one with botocore
alone, for the function that must start fastest (the alarm → kill-switch: ``import boto3`` costs
it 0.15x ``import boto3`` more than botocore's session, its S3 transfer manager included).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

    from cryptosmarttrader.settings import AwsResources

ATTEMPTS: Final = 5  # per call, the initial request included
_CONFIG = Config(
    retries={"total_max_attempts": ATTEMPTS, "mode": "adaptive"},
    connect_timeout=5,
    read_timeout=30,
)


def _kwargs(region: str, endpoint_url: str | None) -> dict[str, object]:
    kwargs: dict[str, object] = {"region_name": region, "config": _CONFIG}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return kwargs


def dynamodb_client(region: str, endpoint_url: str | None = None) -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", **_kwargs(region, endpoint_url))  # type: ignore[call-overload,no-any-return]


def s3_client(region: str, endpoint_url: str | None = None) -> S3Client:
    import boto3

    return boto3.client("s3", **_kwargs(region, endpoint_url))  # type: ignore[call-overload,no-any-return]


def ssm_client(
    region: str, endpoint_url: str | None = None, config: Config | None = None
) -> SSMClient:
    """``config`` replaces the shared timeouts and retries (a caller with a deadline)."""
    import boto3

    kwargs = _kwargs(region, endpoint_url)
    if config is not None:
        kwargs["config"] = config
    return boto3.client("ssm", **kwargs)  # type: ignore[call-overload,no-any-return]


def sagemaker_runtime_client(region: str, endpoint_url: str | None = None) -> Any:
    """The ``sagemaker-runtime`` client (endpoint invocations): built only where one is used."""
    import boto3

    return boto3.client("sagemaker-runtime", **_kwargs(region, endpoint_url))  # type: ignore[call-overload]


@cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


def botocore_client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A ``service`` client built by botocore's session, without importing boto3: the same
    region, endpoint and retry configuration as the boto3 clients (and the same credential
    chain); for DynamoDB and SSM, the same client (boto3 adds methods to S3's only)."""
    return _botocore_session().create_client(
        service, region_name=region, endpoint_url=endpoint_url or None, config=_CONFIG
    )


class AwsClients:
    """The boto3 clients the functions need: each built at its first use, then kept for the
    process (a warm Lambda reuses them).

    A function builds only the clients its work uses: a kill-switch or risk read never pays
    for the S3 client, a lake read never for SSM's. In a fresh process the first client costs
    about 70 ms of CPU (botocore's shared endpoint data included), each further one 10 ms
    (DynamoDB) to 22 ms (S3), measured on the 2-core build machine. A client is built with the
    environment (credentials, endpoint) of the moment it is first used; two threads that first
    use one at the same time get the same client."""

    def __init__(self, resources: AwsResources) -> None:
        self.resources = resources
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}

    @classmethod
    def build(cls, resources: AwsResources) -> AwsClients:
        return cls(resources)

    def _client(self, service: str, make: Callable[[str, str | None], Any]) -> Any:
        client = self._built.get(service)
        if client is None:
            with self._lock:
                client = self._built.get(service)
                if client is None:
                    client = make(self.resources.region, self.resources.aws_endpoint_url)
                    self._built[service] = client
        return client

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb", dynamodb_client)  # type: ignore[no-any-return]

    @property
    def s3(self) -> S3Client:
        return self._client("s3", s3_client)  # type: ignore[no-any-return]

    @property
    def ssm(self) -> SSMClient:
        return self._client("ssm", ssm_client)  # type: ignore[no-any-return]

    @property
    def built(self) -> frozenset[str]:
        """The services whose client has been built so far."""
        return frozenset(self._built)
