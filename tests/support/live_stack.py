"""A live stack for the execution handler as deployed: the environment of a live Binance
deployment, the handler's caches forgotten, moto's AWS with the stack's resources and the
account's keys in Secrets Manager. The go-live records a test needs are its own."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.secrets import secrets_client
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources

SECRET_NAME = "cst/exchange/binance-main"


def _forget_handler_caches() -> None:
    from cryptosmarttrader import venues
    from cryptosmarttrader.handlers import _common, execute

    _common.reset_caches()
    execute._market.cache_clear()
    venues.key_checks.cache_clear()
    venues._credentials.cache_clear()


@contextmanager
def live_execution_stack(
    monkeypatch: pytest.MonkeyPatch, keys: Mapping[str, str], *, live_run: str = "run-1"
) -> Iterator[AwsClients]:
    """The execution function's live deployment (``CST_LIVE_GOLIVE_RUN=live_run``) on moto, its
    exchange keys stored under :data:`SECRET_NAME`; the handler's caches are forgotten on entry
    and on exit (a warm container of another test never leaks in)."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "CST_DATA_SOURCE": "ccxt",
        "CST_EXCHANGE": "binance",
        "CST_VENUE_MODE": "live",
        "CST_EXCHANGE_SECRET": SECRET_NAME,
        "CST_LIVE_GOLIVE_RUN": live_run,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    _forget_handler_caches()
    try:
        with mock_aws():
            clients = AwsClients.build(AwsResources())
            ensure_resources(clients)
            secrets_client(clients.resources).create_secret(
                Name=SECRET_NAME, SecretString=json.dumps(dict(keys))
            )
            yield clients
    finally:
        _forget_handler_caches()
