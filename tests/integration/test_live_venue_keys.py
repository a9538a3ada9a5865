"""The execution function's venue on moto: keys from Secrets Manager, the live gate, the mode.

The wiring the execution Lambda runs (``wiring.trading_cycle``) builds the ccxt venue from
``CST_VENUE_MODE`` and the NAME of the account's secret; building a ccxt client does no I/O, so
nothing leaves the machine, except the live venue's key-permission check (Binance's
``GET /sapi/v1/account/apiRestrictions``), served here by ``cst_devtools.fake_binance``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue
from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore, DynamoStateStore
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.paper_exchange import PaperExchange
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.secrets import (
    CredentialsUnavailableError,
    SecretsManagerCredentials,
    secrets_client,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.golive import GoLiveParams, Stage
from cryptosmarttrader.services.golive import GoLiveService
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.venues import VenueKeysRefusedError, VenueRefusedError, key_checks
from cryptosmarttrader.wiring import trading_cycle
from cst_devtools.fake_binance import FakeBinance, serve
from cst_devtools.venue_redirect import binance_sandbox_served_by
from tests.support.aws import moto_stack

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET_NAME = "cst/exchange/binance-main"
KEYS = {
    "api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    "secret": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
}
RESTRICTIONS = "/sapi/v1/account/apiRestrictions"
ROTATED = {**KEYS, "api_key": "Rotated0Key0000000000000000000000000000000000000000000000000000"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for name in ("CST_VENUE_MODE", "CST_EXCHANGE_SECRET", "CST_LIVE_GOLIVE_RUN"):
        monkeypatch.delenv(name, raising=False)
    with moto_stack(monkeypatch, now=NOW) as clients:
        sm = secrets_client(clients.resources)
        sm.create_secret(Name=SECRET_NAME, SecretString=json.dumps(KEYS))
        yield clients


def _cycle(clients: AwsClients, data_dir: Path) -> object:
    return trading_cycle(
        RecordedMarketData(data_dir),
        FixedClock(NOW),
        clients,
        clients.resources,
        TradingSettings(),
        InMemoryMetrics(),
    )


def test_live_venue_keys_are_cached_and_a_rotated_key_applies_without_a_redeploy(
    aws: AwsClients,
) -> None:
    # the cache age is measured on the clock (time_machine), not on how busy the machine is
    traveller = time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False)
    clock = traveller.start()
    reader = SecretsManagerCredentials(secrets_client(aws.resources), max_age_seconds=300)
    first = reader.get(SECRET_NAME)
    assert first.ccxt_config()["apiKey"] == KEYS["api_key"]
    # the key is never printed: repr, str and the pydantic dump mask it
    for text in (repr(first), str(first), first.model_dump_json()):
        assert KEYS["api_key"] not in text and KEYS["secret"] not in text
    secrets_client(aws.resources).put_secret_value(
        SecretId=SECRET_NAME, SecretString=json.dumps(ROTATED)
    )
    clock.shift(299)
    assert reader.get(SECRET_NAME).ccxt_config()["apiKey"] == KEYS["api_key"]  # cached
    clock.shift(2)
    try:
        assert reader.get(SECRET_NAME).ccxt_config()["apiKey"] == ROTATED["api_key"]
    finally:
        traveller.stop()


def test_live_venue_missing_or_malformed_secret_is_one_line_without_the_value(
    aws: AwsClients,
) -> None:
    reader = SecretsManagerCredentials(secrets_client(aws.resources), max_age_seconds=0)
    with pytest.raises(CredentialsUnavailableError, match="unavailable"):
        reader.get("cst/exchange/none")
    secrets_client(aws.resources).put_secret_value(
        SecretId=SECRET_NAME, SecretString=json.dumps({"api_key": KEYS["api_key"]})
    )
    with pytest.raises(CredentialsUnavailableError, match="malformed") as err:
        reader.get(SECRET_NAME)
    assert KEYS["api_key"] not in str(err.value)


@pytest.mark.realdata
def test_live_venue_paper_is_the_default_mode(aws: AwsClients, data_dir: Path) -> None:
    cycle = _cycle(aws, data_dir)
    assert isinstance(cycle.execution.exchange, PaperExchange)  # type: ignore[attr-defined]
    assert cycle.execution.mode == "paper"  # type: ignore[attr-defined]


@pytest.mark.realdata
def test_testnet_mode_builds_the_sandbox_venue_with_the_secret_keys(
    aws: AwsClients, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_VENUE_MODE", "testnet")
    monkeypatch.setenv("CST_EXCHANGE_SECRET", SECRET_NAME)
    cycle = _cycle(aws, data_dir)
    venue = cycle.execution.exchange  # type: ignore[attr-defined]
    assert isinstance(venue, CcxtVenue)
    assert cycle.execution.mode == "testnet"  # type: ignore[attr-defined]
    assert venue._client.urls["api"]["private"].startswith("https://testnet.binance.vision/")
    assert venue._client.apiKey == KEYS["api_key"]
    assert all(KEYS["api_key"] not in v and KEYS["secret"] not in v for v in os.environ.values())


@pytest.mark.realdata
def test_testnet_mode_without_a_secret_name_is_refused(
    aws: AwsClients, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_VENUE_MODE", "testnet")
    with pytest.raises(VenueRefusedError, match="CST_EXCHANGE_SECRET"):
        _cycle(aws, data_dir)


@pytest.mark.realdata
def test_live_venue_live_mode_is_refused_until_golive_passed_staging_and_canary(
    aws: AwsClients, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CST_VENUE_MODE", "live")
    monkeypatch.setenv("CST_EXCHANGE_SECRET", SECRET_NAME)
    with pytest.raises(VenueRefusedError, match="none was given"):
        _cycle(aws, data_dir)
    monkeypatch.setenv("CST_LIVE_GOLIVE_RUN", "run-1")
    with pytest.raises(VenueRefusedError, match="not recorded"):
        _cycle(aws, data_dir)
    # the go-live machine's own service records the run moving through its stages
    clock = FixedClock(NOW - timedelta(days=11))
    state = DynamoStateStore(aws.resources.state_table, aws.dynamodb)
    orders = DynamoOrderStore(aws.resources.orders_table, aws.dynamodb)
    golive = GoLiveService(state, orders, kill_switch=None, clock=clock)  # type: ignore[arg-type]
    params = GoLiveParams(run_id="run-1", version="v2", previous_version="v1")
    golive.start_stage(params, Stage.STAGING, "staging started")
    with pytest.raises(VenueRefusedError, match="has not passed staging and canary"):
        _cycle(aws, data_dir)
    clock.advance(timedelta(days=7))
    golive.start_stage(params, Stage.CANARY, "staging SLOs met")
    with pytest.raises(VenueRefusedError, match="has not passed staging and canary"):
        _cycle(aws, data_dir)
    clock.advance(timedelta(days=3))
    golive.promote(params, "canary SLOs met")
    # the go-live gate passed: the key is asked what it may do (Binance's live API, served by
    # the fake exchange), and a key that may withdraw is refused before any order
    fake = FakeBinance(KEYS["api_key"], KEYS["secret"], RecordedMarketData(data_dir), lambda: NOW)
    fake.api_restrictions["enableWithdrawals"] = True
    key_checks.cache_clear()
    with serve(fake) as url, binance_sandbox_served_by(url, live=True):
        with pytest.raises(VenueKeysRefusedError, match=r"trading key refused \(withdrawals"):
            _cycle(aws, data_dir)
        assert fake.posts() == 0 and [p for _, p, _ in fake.requests] == [
            "/api/v3/time",
            RESTRICTIONS,
        ]
        fake.api_restrictions["enableWithdrawals"] = False
        key_checks.cache_clear()  # a new execution environment: asked again
        cycle = _cycle(aws, data_dir)
    key_checks.cache_clear()
    venue = cycle.execution.exchange  # type: ignore[attr-defined]
    assert isinstance(venue, CcxtVenue)
    assert venue._client.urls["api"]["private"].startswith("https://api.binance.com/")
    assert cycle.execution.mode == "live"  # type: ignore[attr-defined]
