"""The moto stack helper never lets an endpoint bypass moto."""

from __future__ import annotations

import pytest

from cryptosmarttrader.settings import AwsResources
from tests.support.aws import moto_stack


def test_resources_read_with_an_endpoint_set_still_run_on_moto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a shell pointing at a LocalStack that is not running, and resources read from it
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    resources = AwsResources(state_table="helper-state")
    assert resources.aws_endpoint_url == "http://127.0.0.1:9"
    # When the stack is built for them
    with moto_stack(monkeypatch, resources) as clients:
        # Then every client talks to moto: the stack's tables exist there
        assert clients.resources.aws_endpoint_url is None
        tables = clients.dynamodb.list_tables()["TableNames"]
        assert "helper-state" in tables
