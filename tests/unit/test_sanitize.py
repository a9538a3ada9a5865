"""The log/error sanitizer masks credentials and e-mails in real-looking leaks, and only those."""

from __future__ import annotations

import io
import json
import logging

import pytest

from cryptosmarttrader.domain.sanitize import (
    REDACTED,
    is_sensitive_key,
    sanitize,
    sanitize_text,
    sanitized_json,
)

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SIGNATURE = "3b0f5a2c9d6e4f1a8b7c0d9e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# Shapes taken from real ccxt error strings: the exchange id, the failing URL with its query
# string, then the response body; AuthenticationError bodies quote the request headers.
LEAKS = [
    (
        "binance GET https://api.binance.com/api/v3/account?timestamp=1699999999999"
        f"&recvWindow=10000&signature={SIGNATURE} 401 Unauthorized "
        '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}',
        [SIGNATURE],
    ),
    (
        f"binance {{'X-MBX-APIKEY': '{API_KEY}', 'Content-Type': 'application/json'}}",
        [API_KEY],
    ),
    (
        f'kucoin POST https://api.kucoin.com/api/v1/orders {{"KC-API-KEY": "{API_KEY[:24]}", '
        f'"KC-API-SIGN": "{SIGNATURE[:44]}=", "KC-API-PASSPHRASE": "hunter2-pass"}}',
        [API_KEY[:24], SIGNATURE[:44], "hunter2-pass"],
    ),
    (
        f"kraken {{'API-Key': '{API_KEY}', 'API-Sign': 'ZmFrZXNpZ25hdHVyZWJhc2U2NA=='}} "
        '{"error":["EAPI:Invalid key"]}',
        [API_KEY, "ZmFrZXNpZ25hdHVyZWJhc2U2NA=="],
    ),
    (f"exchange(apiKey={API_KEY}, secret={AWS_SECRET})", [API_KEY, AWS_SECRET]),
    (f"GET /api/v1/risk Authorization: Bearer {JWT}", [JWT, "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"]),
    (f"token {JWT} rejected", [JWT]),
    ("headers={'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", ["dXNlcjpwYXNzd29yZA=="]),
    (
        f"boto3 credentials {AWS_KEY_ID} / aws_secret_access_key={AWS_SECRET}",
        [AWS_KEY_ID, AWS_SECRET],
    ),
    ("login failed for trader.jane+alerts@example-mail.co.uk, retry", ["trader.jane+alerts"]),
    ("password: 's3cr3t!pw' user=admin", ["s3cr3t!pw"]),
    (
        "https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101"
        "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr&X-Amz-Signature=abcdef0123456789",
        ["IQoJb3JpZ2luX2VjEJr", "abcdef0123456789", "AKIAIOSFODNN7EXAMPLE"],
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
        ["MIIEowIBAAKCAQEA7"],
    ),
]


@pytest.mark.parametrize(("leak", "secrets"), LEAKS)
def test_real_looking_leaks_are_masked(leak: str, secrets: list[str]) -> None:
    # Given an error string that leaks credentials or personal data
    # When it is sanitized
    clean = sanitize_text(leak)

    # Then none of the secrets survives, and the masking is visible
    for secret in secrets:
        assert secret not in clean, clean
    assert "[REDACTED" in clean


def test_context_is_kept_so_errors_stay_useful() -> None:
    # Given a ccxt authentication error with a signed URL
    leak = LEAKS[0][0]

    # When sanitized
    clean = sanitize_text(leak)

    # Then the exchange, endpoint, non-secret parameters and exchange message remain
    assert clean.startswith(
        "binance GET https://api.binance.com/api/v3/account?timestamp=1699999999999"
    )
    assert f"signature={REDACTED}" in clean
    assert "Invalid API-key, IP, or permissions for action." in clean


@pytest.mark.parametrize(
    "text",
    [
        "scan complete: universe 312, orders_created 4, duplicates_prevented 0",
        "rejected by RiskGuard rule kill_switch: kill-switch is on (alarm cst-critical-drawdown)",
        "Invalid API-key, IP, or permissions for action.",
        "BTC/USDT 1h: signal confidence 0.83 >= gate 0.8; client order id 9f2c4a1be0d34c6f8a7b5e3d2c1f0a9b",
        "arn:aws:dynamodb:us-east-1:123456789012:table/cst-state",
    ],
)
def test_ordinary_operational_text_is_unchanged(text: str) -> None:
    assert sanitize_text(text) == text


def test_structured_records_mask_by_key_and_by_pattern() -> None:
    # Given a log record with sensitive keys at several depths and a leak inside a value
    record = {
        "message": "order failed",
        "exchange": {"apiKey": API_KEY, "secret": AWS_SECRET, "id": "binance"},
        "headers": {"Authorization": "Bearer abc", "Accept": "application/json"},
        "attempts": [{"password": "pw", "n": 1}, f"signature={SIGNATURE}"],
        "client_order_id": "9f2c4a1be0d34c6f8a7b5e3d2c1f0a9b",
        "quantity": 0.25,
        "ok": False,
    }

    # When sanitized
    clean = sanitize(record)

    # Then every credential is masked and everything else is kept as it was
    assert clean == {
        "message": "order failed",
        "exchange": {"apiKey": REDACTED, "secret": REDACTED, "id": "binance"},
        "headers": {"Authorization": REDACTED, "Accept": "application/json"},
        "attempts": [{"password": REDACTED, "n": 1}, f"signature={REDACTED}"],
        "client_order_id": "9f2c4a1be0d34c6f8a7b5e3d2c1f0a9b",
        "quantity": 0.25,
        "ok": False,
    }
    assert record["exchange"]["apiKey"] == API_KEY  # type: ignore[index]  # input untouched


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("apiKey", True),
        ("X-MBX-APIKEY", True),
        ("KC-API-PASSPHRASE", True),
        ("aws_session_token", True),
        ("sign", True),
        ("signal", False),
        ("symbol", False),
        ("reason", False),
        ("correlation_id", False),
    ],
)
def test_sensitive_key_names(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_powertools_logger_with_the_sanitizing_serializer_prints_no_secret() -> None:
    # Given a Powertools Logger built the way every handler builds it, writing to a buffer
    from aws_lambda_powertools import Logger

    buffer = io.StringIO()
    logger = Logger(
        service="sanitize-test",
        json_serializer=sanitized_json,
        logger_handler=logging.StreamHandler(buffer),
    )

    # When a leak is logged in the message, in extra keys and in an exception
    try:
        raise RuntimeError(f"binance {{'X-MBX-APIKEY': '{API_KEY}'}} contact ops@example.com")
    except RuntimeError:
        logger.exception(
            "exchange call failed for %s",
            "jane@example.com",
            extra={"request": {"apiKey": API_KEY}, "url": f"/order?signature={SIGNATURE}"},
        )

    # Then the printed JSON line carries none of them, and is still valid JSON
    (line,) = [ln for ln in buffer.getvalue().splitlines() if "exchange call failed" in ln]
    parsed = json.loads(line)
    for secret in (API_KEY, SIGNATURE, "jane@example.com", "ops@example.com"):
        assert secret not in line
    assert parsed["request"] == {"apiKey": REDACTED}
    assert "RuntimeError" in parsed["exception"]
