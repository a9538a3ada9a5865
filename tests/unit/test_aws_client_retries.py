"""The shared AWS clients make at most ``ATTEMPTS`` attempts per call, the first included.

botocore's ``retries["max_attempts"]`` counts the retries after the first request (5 of them
would be 6 attempts); ``total_max_attempts`` counts every attempt. A throttled call is
answered by a ``before-send`` hook, so the attempts are counted as botocore sends them (no
sleeping: the backoff is zero, and the adaptive mode's rate limiter, which throttling turns on,
reads a clock on which its token bucket has always refilled, so it never waits).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.aws_clients import (
    ATTEMPTS,
    botocore_client,
    dynamodb_client,
    s3_client,
    ssm_client,
)
from tests.support.sdk_waits import without_retry_waits


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


def test_every_shared_client_makes_five_attempts_in_all() -> None:
    assert ATTEMPTS == 5
    for client in (
        dynamodb_client("us-east-1"),
        s3_client("us-east-1"),
        ssm_client("us-east-1"),
        botocore_client("dynamodb", "us-east-1"),
    ):
        retries = client.meta.config.retries
        assert retries["total_max_attempts"] == ATTEMPTS
        assert "max_attempts" not in retries
        assert retries["mode"] == "adaptive"


def test_a_call_throttled_every_time_is_sent_five_times(monkeypatch: pytest.MonkeyPatch) -> None:
    without_retry_waits(monkeypatch)
    client = dynamodb_client("us-east-1")
    sent: list[int] = []

    def throttled(request: Any, **_: Any) -> AWSResponse:
        sent.append(1)
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        response = AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, None
        )
        response._content = body  # type: ignore[attr-defined]
        return response

    client.meta.events.register("before-send.dynamodb.ListTables", throttled)
    with pytest.raises(ClientError, match="ThrottlingException"):
        client.list_tables()
    assert len(sent) == ATTEMPTS
