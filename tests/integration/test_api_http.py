"""`cst api serve`'s HTTP bridge on 127.0.0.1: API-key gate, the same handler, and schemathesis
fuzzing of the published OpenAPI document (bounded examples, loopback only)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import missing_required_header

from cryptosmarttrader.cli.api import LOOPBACK, local_api, make_server
from cst_devtools.loopback_http import SHUTDOWN_POLL_S

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI = REPO_ROOT / "docs" / "openapi.json"
API_KEY = "local-test-key-0123456789"
SCHEMA = schemathesis.openapi.from_path(str(OPENAPI))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.setenv("AWS_REGION", "us-east-1")
        mp.setenv("CST_DATA_SOURCE", "recorded")
        with local_api(tmp_path_factory.mktemp("state")) as invoke:
            server = make_server(0, API_KEY, invoke)
            # shutdown() waits for the serving loop's next look at its flag: 0.05 s, not 0.5 s
            thread = threading.Thread(
                target=server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True
            )
            thread.start()
            host, port = server.server_address[:2]
            try:
                yield f"http://{host!s}:{port}"
            finally:
                server.shutdown()
                server.server_close()


def request(
    base_url: str, method: str, path: str, headers: dict[str, str], body: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_server_binds_to_loopback_only(base_url: str) -> None:
    assert base_url.startswith(f"http://{LOOPBACK}:")


@pytest.mark.parametrize("key", [None, "", "wrong-key-0123456789"])
def test_calls_without_the_api_key_are_refused_before_the_handler(
    base_url: str, key: str | None
) -> None:
    headers = {} if key is None else {"x-api-key": key}

    status, _, body = request(base_url, "POST", "/api/v1/killswitch", headers,
                              json.dumps({"on": True, "reason": "intruder"}))  # fmt: skip

    assert status == 403 and json.loads(body) == {"message": "Forbidden"}
    status, _, _ = request(base_url, "GET", "/api/v1/risk", {"x-api-key": API_KEY})
    assert status == 200


def test_the_bridge_runs_the_lambda_handler_with_correlation_ids(base_url: str) -> None:
    status, headers, body = request(
        base_url,
        "GET",
        "/api/v1/health",
        {"x-api-key": API_KEY, "X-Correlation-Id": "corr-http-1"},
    )

    assert status == 200
    assert headers["X-Correlation-Id"] == "corr-http-1"
    checks = {c["name"]: c["status"] for c in json.loads(body)["checks"]}
    assert checks == {"dynamodb": "ok", "s3": "ok", "ssm": "ok", "exchange": "unknown"}


@pytest.mark.parametrize("path", ["/health", "/openapi.json"])
def test_the_public_routes_answer_without_a_key(base_url: str, path: str) -> None:
    status, _, body = request(base_url, "GET", path, {})
    assert status == 200
    document = json.loads(body)
    if path == "/health":
        assert document == {"status": "ok"}
    else:
        assert "/api/v1/killswitch" in document["paths"]


def test_the_deep_health_check_needs_the_key(base_url: str) -> None:
    status, _, body = request(base_url, "GET", "/api/v1/health", {})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})


def test_unsigned_kill_switch_call_is_refused_like_api_gateway(base_url: str) -> None:
    status, _, body = request(
        base_url, "POST", "/api/v1/killswitch",
        {"x-api-key": API_KEY, "Content-Type": "application/json"},
        json.dumps({"on": True, "reason": "no signature"}),
    )  # fmt: skip
    assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}


def test_kill_switch_round_trip_over_http(base_url: str) -> None:
    headers = {
        "x-api-key": API_KEY,
        "Content-Type": "application/json",
        "Authorization": "AWS4-HMAC-SHA256 Credential=local (not verified locally)",
    }
    on = request(base_url, "POST", "/api/v1/killswitch", headers,
                 json.dumps({"on": True, "reason": "http drill"}))  # fmt: skip
    off = request(base_url, "POST", "/api/v1/killswitch", headers,
                  json.dumps({"on": False, "reason": "http drill over"}))  # fmt: skip

    assert on[0] == off[0] == 200
    assert json.loads(on[2])["kill_switch"]["actor"] == "apikey:local-api-key"
    assert json.loads(off[2])["kill_switch"]["on"] is False


def test_published_openapi_document_is_the_generated_one() -> None:
    from cryptosmarttrader.handlers.api import openapi_json

    assert json.loads(OPENAPI.read_text()) == json.loads(openapi_json())


@SCHEMA.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests_never_cause_a_server_error_and_match_the_schema(
    case: schemathesis.Case, base_url: str
) -> None:
    # Given generated (valid and invalid) requests from the published OpenAPI document
    # When each is sent with a valid API key
    # Then no request causes a 5xx, and every response conforms to the documented schema
    # (API Gateway answers an unsigned call of the IAM method with 403, not the 401 this
    # schemathesis check expects; the 403 is documented in the spec)
    case.call_and_validate(
        base_url=base_url,
        headers={"x-api-key": API_KEY},
        timeout=10,
        excluded_checks=[missing_required_header],
    )
