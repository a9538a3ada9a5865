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


KRAKEN_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDx3x9Yk2bQ+7mZ8vB1xq0V3n6Xk1oQ"
    "bVd0sZcM5ZtV2QIgQm1n8WjvH0Q0o6S3l1x7yYk0e8wXH2bqQ5m6b7bWb4QqmQIIg///////////ARAAGgw"
)
MORE_LEAKS = [
    # credentials in URLs: no TLD, '$' in the password, a port, a bare host
    ("redis connect failed: redis://admin:hunter2secret@cache:6379/0", ["hunter2secret"]),
    ("GET http://trader:Pa$$w0rd-9@localhost:8080/api timed out", ["Pa$$w0rd-9", "$$w0rd"]),
    (
        "sqlalchemy: postgresql://cst:x$Y7!kq@db.internal.example.com:5432/cst refused",
        ["x$Y7!kq", "$Y7"],
    ),
    # JSON quoted inside JSON (a ccxt body inside a log record's message)
    (
        '{"message": "order failed", "body": "{\\"apiKey\\": \\"' + API_KEY + '\\", '
        '\\"secret\\": \\"s3cr3tvalue\\"}"}',
        [API_KEY, "s3cr3tvalue"],
    ),
    (
        '"{\\\\\\"signature\\\\\\": \\\\\\"' + SIGNATURE + '\\\\\\"}"',  # escaped twice
        [SIGNATURE],
    ),
    # AWS secret keys and session tokens in free text
    (f"using aws keys {AWS_KEY_ID} {AWS_SECRET} for upload", [AWS_SECRET, AWS_KEY_ID]),
    (f"credentials expired ({SESSION_TOKEN})", [SESSION_TOKEN, SESSION_TOKEN[:40]]),
    ("rotated to a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0 today", ["a1B2c3D4e5F6g7H8i9J0"]),
    # a Kraken API secret (base64 of 64 bytes) pasted anywhere
    (f"kraken secret {KRAKEN_SECRET} rejected", [KRAKEN_SECRET, KRAKEN_SECRET[:40]]),
    # provider tokens by their prefixes
    ("push with ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R", ["ghp_1a2B3c4D5e6F7g8H9i0J"]),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz012345", ["github_pat_11ABCDEF"]),
    ("slack xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx failed", ["xoxb-1234567890"]),
    ("stripe key sk_live_51H8abcDEFghiJKLmnoPQRstuVWX rejected", ["sk_live_51H8abcDEF"]),
    # key/value pairs given as tuples (requests' header lists, params lists)
    (f"params=[('symbol', 'BTCUSDT'), ('signature', '{SIGNATURE}')]", [SIGNATURE]),
    (f'headers [("X-MBX-APIKEY", "{API_KEY}")]', [API_KEY]),
]


@pytest.mark.parametrize(("leak", "secrets"), MORE_LEAKS)
def test_more_real_looking_leaks_are_masked(leak: str, secrets: list[str]) -> None:
    clean = sanitize_text(leak)
    for secret in secrets:
        assert secret not in clean, clean
    assert "[REDACTED" in clean


def test_url_credentials_keep_the_rest_of_the_url() -> None:
    clean = sanitize_text("GET http://trader:Pa$$w0rd-9@localhost:8080/api timed out")
    assert clean == f"GET http://trader:{REDACTED}@localhost:8080/api timed out"


def test_params_in_tuples_keep_the_harmless_ones() -> None:
    clean = sanitize_text(f"params=[('symbol', 'BTCUSDT'), ('signature', '{SIGNATURE}')]")
    assert clean == f"params=[('symbol', 'BTCUSDT'), ('signature', '{REDACTED}')]"


def test_structured_key_value_tuples_are_masked_by_key() -> None:
    # Given headers and params as lists of (key, value) tuples, as requests and ccxt pass them
    record = {
        "headers": [("X-MBX-APIKEY", API_KEY), ("Accept", "application/json")],
        "params": (("symbol", "BTCUSDT"), ("signature", SIGNATURE), ("recvWindow", 5000)),
    }
    clean = sanitize(record)
    assert clean == {
        "headers": [["X-MBX-APIKEY", REDACTED], ["Accept", "application/json"]],
        "params": [["symbol", "BTCUSDT"], ["signature", REDACTED], ["recvWindow", 5000]],
    }


@pytest.mark.parametrize(
    "text",
    [
        "decision 3b0f5a2c9d6e4f1a8b7c0d9e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a recorded",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 deployed",
        "the 9f2c4a1be0d34c6f8a7b5e3d2c1f0a9b order, symbol cUSDC excluded (Compound cToken)",
        "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1000",
        "BTC/USDT 1h bars rejected: NAN: 1 of 48 bars have a NaN or missing price",
        "s3://cst-lake/exchange=binance/timeframe=1h/symbol=BTC_USDT/date=2021-01-05/x.parquet",
        "skipped: sk_test is not configured",  # a word, not a token
    ],
)
def test_more_ordinary_text_is_unchanged(text: str) -> None:
    assert sanitize_text(text) == text


def test_non_finite_numbers_in_a_log_record_keep_the_line_strict_json() -> None:
    line = sanitized_json({"message": "equity unknown", "equity": float("nan"), "x": float("inf")})

    def refuse(token: str) -> object:
        raise ValueError(token)

    assert json.loads(line, parse_constant=refuse) == {
        "message": "equity unknown",
        "equity": None,
        "x": None,
    }
