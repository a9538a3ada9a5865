"""Binance's currency data (withdrawal fees, minimums, suspensions) is published to signed
requests only: the ingest function reads its read-only keys from their own Secrets Manager
secret (moto) and signs ``fetch_currencies``; without keys the withdrawals run records why, and
the arbitrage agent of the deployed scan abstains on Binance's routes with that reason.

The handler's withdrawals step runs as deployed (``CST_DATA_SOURCE=ccxt``, the secret's ARN in
``CST_READ_ONLY_SECRETS`` as the stack sets it); ccxt keeps its real request building and
signing, only its HTTP layer (``fetch``) serves the recorded ``/sapi/v1/capital/config/getall``
answer (tests/fixtures/exchanges/binance/capital_config_getall_link.json) and records what was
asked.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import ccxt
import polars as pl
import pytest
import time_machine
from moto import mock_aws

from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs
from cryptosmarttrader.domain.agents.arbitrage import (
    TICKER_SCHEMA,
    WITHDRAWAL_SCHEMA,
    arbitrage_votes,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.types import ms_from_utc

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "exchanges" / "binance"
NOW = datetime(2024, 3, 14, 23, 50, tzinfo=UTC)
BUCKET = "cst-lake-keys"
API_KEY = "rk7Qw2e9ReadOnlyKeyForTestsOnly0000000000000000000000000000000000"
API_SECRET = "Zt3s9ReadOnlySecretForTestsOnly111111111111111111111111111111111"
NO_KEYS = (
    "binance: no read-only keys configured: currency data is only published to signed requests"
)

READ_ONLY: dict[str, Any] = {
    "ipRestrict": False, "createTime": 1_700_000_000_000, "enableReading": True,
    "enableWithdrawals": False, "enableInternalTransfer": False, "enableMargin": False,
    "enableFutures": False, "permitsUniversalTransfer": False, "enableVanillaOptions": False,
    "enableSpotAndMarginTrading": False, "tradingAuthorityExpirationTime": 0,
}  # fmt: skip


@dataclass
class Sapi:
    """ccxt's HTTP layer for Binance: the recorded currency list, every request recorded."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # what the key may do (GET /sapi/v1/account/apiRestrictions): read only, by default
    restrictions: dict[str, Any] = field(default_factory=lambda: dict(READ_ONLY))

    def __call__(
        self, url: str, method: str = "GET", headers: Any = None, body: str | None = None
    ) -> Any:
        self.requests.append((method, url, dict(headers or {})))
        if "/sapi/v1/account/apiRestrictions" in url:
            return dict(self.restrictions)
        if "/sapi/v1/capital/config/getall" in url:
            return json.loads((FIXTURE / "capital_config_getall_link.json").read_text())
        raise ccxt.ExchangeNotAvailable(f"binance GET {url.split('?')[0]} not recorded")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CST_DATA_SOURCE": "ccxt",
        "CST_LAKE_BUCKET": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "CST_READ_ONLY_SECRETS"):
        monkeypatch.delenv(key, raising=False)
    sapi = Sapi()
    monkeypatch.setattr(ccxt.binance, "fetch", sapi)
    from cryptosmarttrader.handlers import _common, ingest

    _common.reset_caches()
    ingest._read_only_reader.cache_clear()
    ingest._ccxt_feeds.cache_clear()
    ingest._key_checks.cache_clear()
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="cst-state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        yield sapi
    _common.reset_caches()
    ingest._read_only_reader.cache_clear()
    ingest._ccxt_feeds.cache_clear()
    ingest._key_checks.cache_clear()


def _secret(value: str) -> str:
    """A read-only keys secret as the stack creates it, holding ``value``; its ARN set on the
    function as the stack sets it."""
    arn = boto3.client("secretsmanager").create_secret(
        Name="cst/binance/read-only-keys", SecretString=value
    )["ARN"]
    os.environ["CST_READ_ONLY_SECRETS"] = json.dumps({"binance": arn})
    return arn


def _withdrawals(pairs: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The universe run's withdrawals step of the deployed ingest function at ``NOW`` (the
    process clock moved there), and what it logged."""
    from cryptosmarttrader.handlers import ingest

    out = io.StringIO()
    with time_machine.travel(NOW, tick=False), redirect_stdout(out):
        report = ingest._withdrawals("binance", pairs, FixedClock(NOW))
    return report, out.getvalue()


def _lake() -> S3AgentInputs:
    return S3AgentInputs(BUCKET, boto3.client("s3"))


def test_with_read_only_keys_binance_is_asked_signed_and_its_constraints_reach_the_lake(
    aws: Sapi,
) -> None:
    # Given Binance's read-only keys in their secret
    _secret(json.dumps({"api_key": API_KEY, "secret": API_SECRET}))

    # When the universe run ingests LINK's withdrawal constraints
    report, logs = _withdrawals(("LINK/USDT",))

    # Then the key's permissions are asked first (read only), then the signed currency
    # endpoint, with the key in Binance's header
    (check, (method, url, headers)) = aws.requests
    assert "/sapi/v1/account/apiRestrictions?" in check[1] and "signature=" in check[1]
    assert method == "GET" and "/sapi/v1/capital/config/getall?" in url
    assert "signature=" in url and "timestamp=" in url
    assert headers["X-MBX-APIKEY"] == API_KEY
    # and LINK's recorded constraints are in the lake: the dearest open network's fee (ERC20,
    # the default chain: 0.55 LINK, minimum 1.1), never a cheaper chain the receiver may refuse
    assert report["status"] == "ok" and report["ingested"] == 1, report
    rows = _lake().read_withdrawals("binance", NOW - timedelta(hours=1), NOW)
    assert rows.select("symbol", "withdraw_fee", "withdraw_min").to_dicts() == [
        {"symbol": "LINK", "withdraw_fee": 0.55, "withdraw_min": 1.1}
    ]
    assert _lake().read_withdrawal_status("binance") == (ms_from_utc(NOW), None)
    # and neither key nor secret appears in the report or the function's log
    assert API_KEY not in logs + json.dumps(report) and API_SECRET not in logs + json.dumps(report)


@pytest.mark.parametrize(
    "secret",
    [
        None,  # no CST_READ_ONLY_SECRETS at all
        "absent",  # the variable names a secret that does not exist
        json.dumps({"keys": "none", "filler": "Qx81Zp0sLr"}),  # as the stack creates it
    ],
)
def test_without_read_only_keys_the_run_and_the_agent_state_why(
    aws: Sapi, secret: str | None
) -> None:
    # Given no read-only keys for Binance
    if secret == "absent":
        os.environ["CST_READ_ONLY_SECRETS"] = json.dumps(
            {"binance": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cst-missing-AbCdEf"}
        )
    elif secret is not None:
        _secret(secret)

    # When the universe run reaches the withdrawals step
    report, _ = _withdrawals(("LINK/USDT", "BTC/USDT"))

    # Then Binance is not asked, nothing is invented, and the run states why
    assert aws.requests == []
    assert report["status"] == "unavailable" and report["reason"] == NO_KEYS
    assert report["ingested"] == 0 and report["unseen"] == ["BTC", "LINK"]
    assert _lake().read_withdrawals("binance", NOW - timedelta(days=2), NOW).is_empty()
    assert _lake().read_withdrawal_status("binance") == (ms_from_utc(NOW), NO_KEYS)

    # and the deployed scan's arbitrage agent, 10 minutes later, abstains on the route into
    # Binance with that reason (KuCoin cheaper, its own constraints known)
    from cryptosmarttrader.wiring import lake_agent_data

    asof = ms_from_utc(NOW + timedelta(minutes=10))
    state = lake_agent_data(boto3.client("s3"), _resources(), "binance").state(
        pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Int64}), asof
    )
    assert state.withdrawals_missing == {"binance": NO_KEYS}
    kucoin = pl.DataFrame(
        [("kucoin", "LINK/USDT", True, True, 0.5, 1.0, asof - 60_000)],
        schema=WITHDRAWAL_SCHEMA,
        orient="row",
    )
    tickers = pl.DataFrame(
        [("binance", "LINK/USDT", 18.09, 18.09, asof), ("kucoin", "LINK/USDT", 18.0, 18.0, asof)],
        schema=TICKER_SCHEMA,
        orient="row",
    )
    votes = arbitrage_votes(
        ["LINK/USDT"], asof, tickers, withdrawals=kucoin,
        withdrawals_missing=state.withdrawals_missing,
    )  # fmt: skip
    (row,) = votes.iter_rows(named=True)
    assert row["probability"] is None
    assert (
        row["abstain_reason"]
        == f"no transfer route into binance is open (kucoin→binance: {NO_KEYS})"
    )


def test_malformed_keys_are_an_abstention_naming_the_fields_never_the_value(aws: Sapi) -> None:
    # Given a secret holding a key without its secret half
    _secret(json.dumps({"api_key": API_KEY}))

    # When the universe run reaches the withdrawals step
    report, logs = _withdrawals(("LINK/USDT",))

    # Then Binance is not asked and the reason names the missing field, not the key
    assert aws.requests == []
    assert report["status"] == "unavailable"
    assert report["reason"].startswith("binance: read-only keys malformed: fields ['secret']")
    assert API_KEY not in logs + json.dumps(report)


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("enableSpotAndMarginTrading", "spot trading enabled"),
        ("enableWithdrawals", "withdrawals enabled"),
        ("permitsUniversalTransfer", "universal transfers enabled"),
    ],
)
def test_read_only_keys_that_can_trade_or_move_funds_are_refused_and_the_agent_abstains(
    aws: Sapi, flag: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    from cryptosmarttrader.handlers import ingest

    # Given "read-only" keys that Binance says may trade (or withdraw, or transfer)
    _secret(json.dumps({"api_key": API_KEY, "secret": API_SECRET}))
    aws.restrictions[flag] = True

    # When the universe run reaches the withdrawals step
    report, logs = _withdrawals(("LINK/USDT",))

    # Then only the permissions were asked: no currency data is read with such a key, and the
    # run's status says why, without the key
    assert ["apiRestrictions" in u for _, u, _ in aws.requests] == [True]
    reason = report["reason"]
    assert report["status"] == "unavailable" and report["ingested"] == 0
    assert reason.startswith("binance: read-only key refused (") and why in reason
    assert _lake().read_withdrawal_status("binance") == (ms_from_utc(NOW), reason)
    assert "read-only keys refused" in caplog.messages  # logged as an error, and counted
    assert "ReadOnlyKeysRefused" in ingest.metrics.metric_set
    ingest.metrics.clear_metrics()
    logs += caplog.text + json.dumps(report)
    assert API_KEY not in logs and API_SECRET not in logs

    # and the deployed scan's arbitrage agent abstains on Binance's routes with that reason
    from cryptosmarttrader.wiring import lake_agent_data

    asof = ms_from_utc(NOW + timedelta(minutes=10))
    state = lake_agent_data(boto3.client("s3"), _resources(), "binance").state(
        pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Int64}), asof
    )
    assert state.withdrawals_missing == {"binance": reason}

    # and the answer is cached per key: the next run does not ask again
    _withdrawals(("LINK/USDT",))
    assert sum("apiRestrictions" in u for _, u, _ in aws.requests) == 1


def _resources() -> Any:
    from cryptosmarttrader.settings import AwsResources

    return AwsResources()
