"""The local AWS a test module runs on: moto with test credentials, no endpoint override, and the
stack's bucket, tables and kill-switch parameter created (``ensure_resources``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources


@contextmanager
def moto_stack(
    monkeypatch: pytest.MonkeyPatch,
    resources: AwsResources | None = None,
    *,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[AwsClients]:
    """The stack's resources on moto, built for ``resources`` (the defaults unless given),
    with ``env`` set beside the test credentials for the duration. No endpoint is used, not
    even one ``resources`` read from the environment before (it would bypass moto)."""
    region = resources.region if resources is not None else "us-east-1"
    base = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    for key, value in {**base, **(env or {})}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # read with the environment above; given ones lose an endpoint read before
    res = (resources or AwsResources()).model_copy(update={"aws_endpoint_url": None})
    with mock_aws():
        clients = AwsClients.build(res)
        ensure_resources(clients, now)
        yield clients
